"""Claim history: provider profiles at each level, peer distributions, beneficiary queries."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from gateway.domain import InMemoryHistory, MetricDistribution, SuspicionTouch, provider_ids

from .factories import AM, CPAM, FINESS, MUT_A, OTHER_TOKEN, RPPS, TOKEN, rec

D = date(2026, 1, 10)
START, END = date(2025, 1, 1), date(2026, 3, 1)


def test_provider_ids_cover_person_site_and_establishment() -> None:
    assert provider_ids(rec(CPAM).line) == [("rpps", RPPS), ("am_number", AM), ("finess", FINESS)]
    assert provider_ids(rec(CPAM, provider_rpps="", provider_finess="").line) == [("am_number", AM)]


def test_profile_counts_items_not_sides() -> None:
    records = [
        rec(CPAM), rec(MUT_A),  # one item, both sides
        rec(CPAM, member_reference="L2", laterality="left"),  # other eye same day: bilateral
        rec(CPAM, "frame", member_reference="L3", product_class="A", unit_price_cents=3000),
        rec(CPAM, member_reference="L4", beneficiary_token=OTHER_TOKEN, birth_year=2010,
            care_date=D + timedelta(days=1)),
    ]  # fmt: skip
    hist = InMemoryHistory(records)
    for level, pid in (("rpps", RPPS), ("am_number", AM), ("finess", FINESS)):
        p = hist.provider_profile(level, pid, "optique", START, END)  # type: ignore[arg-type]
        assert p is not None
        assert (p.items, p.active_days, p.lines_per_day) == (4, 2, 2.0)
        assert p.share_100_sante == pytest.approx(1 / 4)
        assert p.young_share == pytest.approx(1 / 4)
        assert p.bilateral_share == pytest.approx(2 / 3)
        assert p.class_mix == {"B": 3, "A": 1}


def test_profile_is_none_without_activity_in_the_window() -> None:
    hist = InMemoryHistory([rec(CPAM)])
    assert hist.provider_profile("am_number", AM, "optique", D + timedelta(1), END) is None
    assert hist.provider_profile("am_number", AM, "audio", START, END) is None


def test_peer_distribution_keeps_providers_with_enough_items() -> None:
    records = [rec(CPAM, member_reference=f"A{i}", provider_am_number=f"75000000{i}",
                   care_date=D - timedelta(days=i)) for i in range(5)]  # fmt: skip
    records += [rec(CPAM, member_reference="B", provider_am_number="750000000",
                    care_date=D - timedelta(days=9), laterality="left")]  # fmt: skip
    peers = InMemoryHistory(records).peer_distribution("am_number", "optique", START, END, 2)
    assert peers.providers == 1
    assert InMemoryHistory(records).peer_distribution("am_number", "optique", START, END, 1
                                                      ).providers == 5  # fmt: skip


@pytest.mark.parametrize(
    ("values", "median", "scale"),
    [
        ([1.0, 2.0, 3.0, 4.0, 100.0], 3.0, 1.4826),
        ([2.0, 2.0, 2.0, 2.0, 12.0], 2.0, 1.2533 * 2.0),  # MAD 0: mean absolute deviation
        ([5.0, 5.0, 5.0], 5.0, 0.0),
        ([], 0.0, 0.0),
    ],
)
def test_robust_distribution(values: list[float], median: float, scale: float) -> None:
    dist = MetricDistribution.of(values)
    assert (dist.median, dist.count) == (median, len(values))
    assert dist.scale == pytest.approx(scale)
    if scale:
        assert dist.robust_z(median + scale) == pytest.approx(1.0)
    else:
        assert dist.robust_z(99.0) is None


def test_beneficiary_lines_filter_by_beneficiary_sector_and_dates() -> None:
    inside, before = rec(CPAM), rec(CPAM, member_reference="OLD", care_date=date(2024, 1, 1))
    other, audio = rec(CPAM, beneficiary_token=OTHER_TOKEN), rec(CPAM, "aid")
    hist = InMemoryHistory([inside, before, other, audio])
    assert list(hist.beneficiary_lines(TOKEN, "optique", START, END)) == [inside]


def test_open_suspicions_count_beneficiary_and_providers() -> None:
    hist = InMemoryHistory(suspected_beneficiaries=[TOKEN], suspected_providers=[AM, FINESS])
    line = rec(CPAM).line
    assert hist.open_suspicions(TOKEN, provider_ids(line)) == SuspicionTouch(1, 2)
    assert hist.open_suspicions(OTHER_TOKEN, [("rpps", RPPS)]) == SuspicionTouch(0, 0)

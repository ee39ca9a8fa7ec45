"""AMO-AMC matching: exact, within window, out of window, ambiguous, unmatched, cross-AMC."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest

from gateway.domain import CrossAmcSignal, MatchResult, match_claims
from gateway.domain.matching import AMOUNT_BILLED_DIFFERS, PAID_EXCEEDS_BILLED, find_counterparts
from gateway.ids import MemberId

from .factories import CPAM, MUT_A, MUT_B, MUT_C, OTHER_AM, OTHER_TOKEN, rec

D = date(2026, 1, 10)


def test_exact_match_pairs_both_sides() -> None:
    amo, amc = rec(CPAM), rec(MUT_A, member_reference="M1")
    result = match_claims([amo, amc])
    assert len(result.pairs) == 1
    pair = result.pairs[0]
    assert (pair.amo, pair.amc, pair.date_distance_days, pair.amount_issues) == (amo, amc, 0, ())
    assert result.unmatched_amo == result.unmatched_amc == ()
    assert result.ambiguous == ()
    assert result.cross_amc == ()


@pytest.mark.parametrize("days", [1, 3, -3])
def test_match_within_window(days: int) -> None:
    result = match_claims([rec(CPAM), rec(MUT_A, care_date=D + timedelta(days=days))])
    assert len(result.pairs) == 1
    assert result.pairs[0].date_distance_days == abs(days)


@pytest.mark.parametrize("days", [4, -4])
def test_out_of_window_stays_unmatched(days: int) -> None:
    amo, amc = rec(CPAM), rec(MUT_A, care_date=D + timedelta(days=days))
    result = match_claims([amo, amc])
    assert result.pairs == ()
    assert result.unmatched_amo == (amo,)
    assert result.unmatched_amc == (amc,)


def test_window_is_configurable() -> None:
    records = [rec(CPAM), rec(MUT_A, care_date=D + timedelta(days=5))]
    assert len(match_claims(records, window_days=5).pairs) == 1
    assert match_claims(records, window_days=0).pairs == ()
    with pytest.raises(ValueError):
        match_claims(records, window_days=-1)


@pytest.mark.parametrize(
    "different",
    [
        {"beneficiary_token": OTHER_TOKEN},
        {"provider_am_number": OTHER_AM},
        {"laterality": "left"},
        {"grouping_code": "VERRE_COMPLEXE"},
    ],
)
def test_different_key_never_matches(different: dict[str, Any]) -> None:
    result = match_claims([rec(CPAM), rec(MUT_A, **different)])
    assert result.pairs == ()
    assert len(result.unmatched_amc) == 1


def test_different_tooth_never_matches() -> None:
    result = match_claims([rec(CPAM, "crown", tooth=16), rec(MUT_A, "crown", tooth=26)])
    assert result.pairs == ()


def test_unmatched_amc_is_a_phantom_complement_candidate() -> None:
    amc = rec(MUT_A)
    result = match_claims([amc])
    assert result.unmatched_amc == (amc,)
    assert result.pairs == ()


def test_ambiguous_candidates_choose_the_closest_date() -> None:
    near = rec(CPAM, member_reference="A-near", care_date=D + timedelta(days=1))
    far = rec(CPAM, member_reference="A-far", care_date=D - timedelta(days=2))
    amc = rec(MUT_A)
    result = match_claims([far, near, amc])
    assert result.pairs[0].amo == near
    assert result.unmatched_amo == (far,)
    (amb,) = result.ambiguous
    assert (amb.line, amb.candidates, amb.chosen, amb.reason) == (amc, 2, near, "closest care date")


def test_ambiguous_candidates_then_choose_the_closest_amount() -> None:
    same = rec(CPAM, member_reference="A-same")
    other = rec(CPAM, member_reference="A-other", unit_price_cents=13000)
    amc = rec(MUT_A)
    result = match_claims([other, same, amc])
    assert result.pairs[0].amo == same
    assert result.ambiguous[0].reason == "same care-date distance; closest billed amount"


def test_fully_tied_candidates_choose_deterministically() -> None:
    a, b = rec(CPAM, member_reference="A-1"), rec(CPAM, member_reference="A-2")
    amc = rec(MUT_A)
    for order in ([a, b, amc], [amc, b, a]):
        result = match_claims(order)
        assert result.pairs[0].amo == a
        reason = result.ambiguous[0].reason
        assert reason == "equal on care date and amount; lowest member reference"


def test_greedy_choice_reports_a_taken_candidate() -> None:
    amo1 = rec(CPAM, member_reference="A-1")
    amo2 = rec(CPAM, member_reference="A-2", care_date=D + timedelta(days=2))
    amc1 = rec(MUT_A, member_reference="M-1")
    amc2 = rec(MUT_A, member_reference="M-2", care_date=D + timedelta(days=1))
    result = match_claims([amo1, amo2, amc1, amc2])
    chosen = {p.amc.line.member_reference: p.amo.line.member_reference for p in result.pairs}
    assert chosen == {"M-1": "A-1", "M-2": "A-2"}
    reasons = {a.line.line.member_reference: a.reason for a in result.ambiguous}
    assert reasons["M-2"] == "closer candidates were already matched to other lines"


def test_amounts_that_differ_are_reported_on_the_pair() -> None:
    result = match_claims([rec(CPAM), rec(MUT_A, unit_price_cents=15000)])
    assert result.pairs[0].amount_issues == (AMOUNT_BILLED_DIFFERS, PAID_EXCEEDS_BILLED)


def test_payments_exceeding_the_bill_are_reported() -> None:
    result = match_claims([rec(CPAM), rec(MUT_A, amc_paid_cents=11998)])
    assert result.pairs[0].amount_issues == (PAID_EXCEEDS_BILLED,)
    assert match_claims([rec(CPAM), rec(MUT_A, amc_paid_cents=11997)]).pairs[0].amount_issues == ()


def test_same_amc_twice_leaves_one_unmatched() -> None:
    amo = rec(CPAM)
    first, second = rec(MUT_A, member_reference="M-1"), rec(MUT_A, member_reference="M-2")
    result = match_claims([amo, first, second])
    assert [p.amc for p in result.pairs] == [first]
    assert result.unmatched_amc == (second,)
    (amb,) = result.ambiguous
    assert amb.line == amo and amb.candidates == 2 and amb.chosen == first


def test_find_counterparts_orders_best_first() -> None:
    amc = rec(MUT_A)
    near, far = rec(CPAM, care_date=D + timedelta(days=1)), rec(CPAM, care_date=D + timedelta(3))
    out_of_window = rec(CPAM, care_date=D + timedelta(days=4))
    assert find_counterparts(amc, [far, out_of_window, near, amc]) == [near, far]


# -- cross-AMC: same item from several AMCs, never revealing which --------------------------


def _strings(value: object) -> list[str]:
    """Every string reachable from a result (dataclass fields, tuples), recursively."""
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [s for f in dataclasses.fields(value) for s in _strings(getattr(value, f.name))]
    if isinstance(value, (tuple, list)):
        return [s for v in value for s in _strings(v)]
    if hasattr(value, "model_dump"):
        return [s for v in value.model_dump().values() for s in _strings(v)]
    return [str(value)]


def test_same_item_from_two_amcs_is_signalled_to_each_as_a_count() -> None:
    amo = rec(CPAM)
    a = rec(MUT_A, member_reference="REF-ALPHA", amc_reference="DRE-ALPHA")
    b = rec(MUT_B, member_reference="REF-BETA", amc_reference="DRE-BETA",
            care_date=D + timedelta(days=2))  # fmt: skip
    result = match_claims([amo, a, b])
    assert len(result.pairs) == 2  # each AMC's complement has its AMO side: not phantom
    assert set(result.cross_amc) == {
        CrossAmcSignal(MUT_A, "REF-ALPHA", 1),
        CrossAmcSignal(MUT_B, "REF-BETA", 1),
    }
    assert result.cross_amc[0].explanation == ("also claimed from 1 other complementary insurer(s)")


def test_cross_amc_counts_distinct_other_insurers() -> None:
    records = [rec(CPAM), rec(MUT_A), rec(MUT_B), rec(MUT_C), rec(MUT_C, member_reference="L2")]
    signals = match_claims(records).cross_amc
    counts = {(s.member, s.member_reference): s.other_amc_count for s in signals}
    assert counts == {(MUT_A, "L1"): 2, (MUT_B, "L1"): 2, (MUT_C, "L1"): 2, (MUT_C, "L2"): 2}


def test_cross_amc_outside_window_is_not_signalled() -> None:
    records = [rec(MUT_A), rec(MUT_B, care_date=D + timedelta(days=4))]
    assert match_claims(records).cross_amc == ()


@pytest.mark.parametrize("viewer", [MUT_A, MUT_B])
def test_an_amc_view_never_exposes_the_other_amc(viewer: MemberId) -> None:
    other = MUT_B if viewer == MUT_A else MUT_A
    secrets = {
        MUT_A: ["mut-alpha", "REF-ALPHA", "DRE-ALPHA"],
        MUT_B: ["mut-beta", "REF-BETA", "DRE-BETA"],
    }
    amo = rec(CPAM)
    a = rec(MUT_A, member_reference="REF-ALPHA", amc_reference="DRE-ALPHA")
    b = rec(MUT_B, member_reference="REF-BETA", amc_reference="DRE-BETA")
    extra = rec(MUT_B, member_reference="REF-BETA-2", amc_reference="DRE-BETA",
                care_date=D + timedelta(days=1))  # fmt: skip
    full = match_claims([amo, a, b, extra])
    view = full.visible_to(viewer)
    assert isinstance(view, MatchResult)
    assert view.cross_amc and all(s.other_amc_count == 1 for s in view.cross_amc)
    reachable = " ".join(_strings(view))
    for secret in secrets[other]:
        assert secret not in reachable
    # and every field of each signal is the viewer's own or a bare count
    for signal in view.cross_amc:
        assert signal.member == viewer
        assert signal.member_reference.startswith(secrets[viewer][1])
        assert "mut-" not in signal.explanation and "REF" not in signal.explanation

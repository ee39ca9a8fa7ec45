"""Each scoring rule: a case that fires and a near miss at the boundary that must not."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest

from gateway.domain import ClaimRecord, InMemoryHistory, default_ruleset, score_claim
from gateway.domain._identifiers import make_am_number, make_rpps, make_token
from gateway.ids import MemberId

from .factories import AM, CPAM, MUT_A, MUT_B, RPPS, TODAY, TOKEN, line, rec

D = date(2026, 1, 10)
RULESET = default_ruleset()


def codes(
    target: ClaimRecord,
    others: list[ClaimRecord] = (),  # type: ignore[assignment]
    today: date = TODAY,
    **history: Any,
) -> set[str]:
    hist = InMemoryHistory([target, *others], **history)
    score = score_claim(target.line, hist, RULESET, today, member=target.member)
    return {r.code for r in score.reasons}


def fires(code: str, target: ClaimRecord, others: list[ClaimRecord] = (), **kw: Any) -> bool:  # type: ignore[assignment]
    return code in codes(target, list(others), **kw)


# -- early renewal (optique: 1 y from 6 to 15, 2 y from 16; audio: 4 y per ear) -------------


@pytest.mark.parametrize(
    ("birth_year", "previous", "expected"),
    [
        (1980, date(2024, 1, 10), False),  # exactly 2 years: allowed
        (1980, date(2024, 1, 11), True),  # one day short of 2 years
        (1980, date(2024, 7, 10), True),  # 18 months, adult
        (2010, date(2024, 7, 10), True),  # 18 months at age 16: adult period applies
        (2011, date(2024, 7, 10), False),  # 18 months at age 15: 1-year period
        (2011, date(2025, 1, 10), False),  # exactly 1 year at 15
        (2011, date(2025, 1, 11), True),  # one day short of 1 year at 15
    ],
)
def test_early_renewal_optique_by_age(birth_year: int, previous: date, expected: bool) -> None:
    old = rec(CPAM, member_reference="OLD", care_date=previous, birth_year=birth_year,
              prescription_date=previous)  # fmt: skip
    new = rec(CPAM, birth_year=birth_year)
    assert fires("EARLY_RENEWAL", new, [old]) is expected


@pytest.mark.parametrize(
    ("previous", "laterality", "expected"),
    [
        (date(2022, 1, 10), "left", False),  # exactly 4 years
        (date(2022, 1, 11), "left", True),
        (date(2023, 1, 10), "right", False),  # the other ear
    ],
)
def test_early_renewal_audio_per_ear(previous: date, laterality: str, expected: bool) -> None:
    old = rec(CPAM, "aid", member_reference="OLD", care_date=previous, laterality=laterality,
              prescription_date=previous)  # fmt: skip
    assert fires("EARLY_RENEWAL", rec(CPAM, "aid"), [old]) is expected


def test_other_side_of_the_same_event_is_not_a_previous_equipment() -> None:
    same_event = rec(MUT_A, care_date=D - timedelta(days=3))
    assert not fires("EARLY_RENEWAL", rec(CPAM), [same_event])


def test_a_frame_does_not_renew_a_lens() -> None:
    old_frame = rec(CPAM, "frame", member_reference="OLD", care_date=date(2025, 6, 1))
    assert not fires("EARLY_RENEWAL", rec(CPAM), [old_frame])


# -- prescription validity (optique 1 y < 16, 5 y 16-42, 3 y > 42; audio 1 y) ----------------


@pytest.mark.parametrize(
    ("birth_year", "prescribed", "expected"),
    [
        (1980, date(2023, 1, 10), False),  # 43 at prescription: exactly 3 years
        (1980, date(2023, 1, 9), True),
        (1990, date(2021, 1, 10), False),  # 31: exactly 5 years
        (1990, date(2021, 1, 9), True),
        (2012, date(2025, 1, 10), False),  # 13: exactly 1 year
        (2012, date(2025, 1, 9), True),
        (1980, D, False),  # same day as delivery
        (1980, D + timedelta(days=1), True),  # dated after delivery
    ],
)
def test_prescription_validity_optique(birth_year: int, prescribed: date, expected: bool) -> None:
    target = rec(CPAM, birth_year=birth_year, prescription_date=prescribed)
    assert fires("PRESCRIPTION_INVALID", target) is expected


def test_prescription_after_delivery_explains_why() -> None:
    target = rec(CPAM, prescription_date=D + timedelta(days=1))
    hist = InMemoryHistory([target])
    score = score_claim(target.line, hist, RULESET, TODAY, member=CPAM)
    assert score.reasons[0].explanation == "Prescription dated after the delivery"


@pytest.mark.parametrize(("prescribed", "expected"), [(date(2025, 1, 10), False),
                                                      (date(2025, 1, 9), True)])  # fmt: skip
def test_prescription_validity_audio(prescribed: date, expected: bool) -> None:
    assert fires("PRESCRIPTION_INVALID", rec(CPAM, "aid", prescription_date=prescribed)) is expected


# -- legal price caps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "overrides", "expected"),
    [
        ("frame", {"product_class": "A", "unit_price_cents": 3000}, False),  # exactly 30 EUR
        ("frame", {"product_class": "A", "unit_price_cents": 3001}, True),
        ("frame", {"product_class": "B", "unit_price_cents": 50000}, False),  # free price
        ("aid", {"product_class": "I", "unit_price_cents": 95000}, False),
        ("aid", {"product_class": "I", "unit_price_cents": 95001}, True),
        ("aid", {"product_class": "I", "unit_price_cents": 140000, "birth_year": 2007}, False),
        ("aid", {"product_class": "I", "unit_price_cents": 140001, "birth_year": 2007}, True),
        ("aid", {"product_class": "I", "unit_price_cents": 95001, "birth_year": 2006}, True),
        ("aid", {"product_class": "II", "unit_price_cents": 250000}, False),
        ("crown", {"product_class": "100_SANTE", "unit_price_cents": 50000}, False),
        ("crown", {"product_class": "100_SANTE", "unit_price_cents": 50001}, True),
        ("crown", {"product_class": "LIBRE", "unit_price_cents": 90000}, False),
    ],
)
def test_price_above_legal_cap(kind: str, overrides: dict[str, Any], expected: bool) -> None:
    assert fires("PRICE_ABOVE_CAP", rec(CPAM, kind, **overrides)) is expected


# -- AMO/AMC consistency ---------------------------------------------------------------------


@pytest.mark.parametrize(("days", "expected"), [(3, False), (4, True)])
def test_phantom_complement(days: int, expected: bool) -> None:
    amo = rec(CPAM, care_date=D - timedelta(days=days))
    assert fires("PHANTOM_COMPLEMENT", rec(MUT_A), [amo]) is expected


def test_phantom_complement_without_any_amo_line() -> None:
    assert fires("PHANTOM_COMPLEMENT", rec(MUT_A))
    assert not fires("PHANTOM_COMPLEMENT", rec(CPAM))  # an AMO line alone is no signal


@pytest.mark.parametrize(
    ("amc_overrides", "expected"),
    [
        ({}, False),
        ({"unit_price_cents": 12100, "amc_paid_cents": 100}, True),  # billed differs
        ({"amc_paid_cents": 11997}, False),  # 3 + 11997 = 12000: exactly the bill
        ({"amc_paid_cents": 11998}, True),  # paid together exceed the bill
        ({"amc_paid_cents": 12001}, True),  # AMC alone exceeds its own bill
    ],
)
def test_amount_mismatch(amc_overrides: dict[str, Any], expected: bool) -> None:
    target = rec(MUT_A, **amc_overrides)
    assert fires("AMOUNT_MISMATCH", target, [rec(CPAM)]) is expected
    if "amc_paid_cents" not in amc_overrides or amc_overrides["amc_paid_cents"] <= 12000:
        assert fires("AMOUNT_MISMATCH", rec(CPAM), [target]) is expected  # seen from the AMO


# -- same item several times -------------------------------------------------------------------


@pytest.mark.parametrize(("days", "expected"), [(3, True), (4, False)])
def test_double_billing_across_amcs(days: int, expected: bool) -> None:
    other = rec(MUT_B, member_reference="SECRET-REF", care_date=D + timedelta(days=days))
    target = rec(MUT_A)
    assert fires("DOUBLE_BILLING_AMC", target, [rec(CPAM), other]) is expected


def test_double_billing_explanation_never_names_the_other_amc() -> None:
    target = rec(MUT_A)
    other = rec(MUT_B, member_reference="SECRET-REF", amc_reference="SECRET-DRE")
    hist = InMemoryHistory([target, other, rec(CPAM)])
    score = score_claim(target.line, hist, RULESET, TODAY, member=MUT_A)
    (reason,) = [r for r in score.reasons if r.code == "DOUBLE_BILLING_AMC"]
    assert reason.explanation == "Same item also claimed from another complementary insurer"
    for r in score.reasons:
        for secret in (MUT_B, "SECRET-REF", "SECRET-DRE"):
            assert secret not in r.explanation and secret not in r.code


def test_same_amc_twice_is_a_duplicate_not_double_billing() -> None:
    again = rec(MUT_A, member_reference="L2")
    assert codes(rec(MUT_A), [rec(CPAM), again]) >= {"DUPLICATE_ITEM"}
    assert not fires("DOUBLE_BILLING_AMC", rec(MUT_A), [rec(CPAM), again])


@pytest.mark.parametrize(
    ("kind", "overrides", "expected"),
    [
        ("lens", {"care_date": D + timedelta(days=3)}, True),
        ("lens", {"care_date": D + timedelta(days=4)}, False),
        ("lens", {"laterality": "left"}, False),  # the other eye
        ("crown", {}, True),
        ("crown", {"tooth": 17}, False),  # another tooth
        ("aid", {}, True),
        ("aid", {"laterality": "right"}, False),
    ],
)
def test_duplicate_item_same_eye_ear_tooth(
    kind: str, overrides: dict[str, Any], expected: bool
) -> None:
    twin = rec(CPAM, kind, **{"member_reference": "L2", **overrides})
    assert fires("DUPLICATE_ITEM", rec(CPAM, kind), [twin]) is expected


# -- hearing-aid follow-up -------------------------------------------------------------------

FITTED = date(2024, 12, 1)


@pytest.mark.parametrize(
    ("today", "followup", "expected"),
    [
        (date(2025, 12, 1), None, False),  # exactly 12 months: the window is not over yet
        (date(2025, 12, 2), None, True),
        (date(2025, 12, 2), {"care_date": date(2025, 6, 1)}, False),
        (date(2025, 12, 2), {"care_date": date(2025, 12, 1)}, False),  # on the last day
        (date(2025, 12, 2), {"care_date": date(2025, 6, 1), "laterality": ""}, False),
        (date(2025, 12, 2), {"care_date": date(2025, 6, 1), "laterality": "right"}, True),
        (date(2026, 1, 2), {"care_date": date(2025, 12, 2)}, True),  # too late
    ],
)
def test_hearing_aid_without_followup(
    today: date, followup: dict[str, Any] | None, expected: bool
) -> None:
    aid = rec(CPAM, "aid", care_date=FITTED, prescription_date=FITTED)
    others = [rec(CPAM, "followup", **{"member_reference": "S1", **followup})] if followup else []
    assert fires("NO_FOLLOWUP", aid, others, today=today) is expected


# -- implausible demography --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "overrides", "expected"),
    [
        ("aid", {"birth_year": 1997}, True),  # 29
        ("aid", {"birth_year": 1996}, False),  # 30
        ("lens", {"grouping_code": "VERRE_COMPLEXE", "birth_year": 2021}, True),  # 5
        ("lens", {"grouping_code": "VERRE_TRES_COMPLEXE", "birth_year": 2021}, True),
        ("lens", {"grouping_code": "VERRE_COMPLEXE", "birth_year": 2020}, False),  # 6
        ("lens", {"grouping_code": "VERRE_SIMPLE", "birth_year": 2021}, False),
    ],
)
def test_implausible_demography(kind: str, overrides: dict[str, Any], expected: bool) -> None:
    assert fires("IMPLAUSIBLE_DEMOGRAPHY", rec(CPAM, kind, **overrides)) is expected


# -- open suspicions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ({"suspected_beneficiaries": [TOKEN]}, True),
        ({"suspected_providers": [AM]}, True),
        ({"suspected_providers": [RPPS]}, True),
        ({"suspected_beneficiaries": ["other"], "suspected_providers": ["999999999"]}, False),
    ],
)
def test_claim_touching_an_open_suspicion(history: dict[str, Any], expected: bool) -> None:
    assert fires("OPEN_SUSPICION", rec(CPAM), **history) is expected


# -- provider outliers against peers -------------------------------------------------------------


def _provider_lines(
    rng: random.Random, am: str, rpps: str, per_day: int, days: int, class_a_every: int = 5,
    kind: str = "frame", birth_year: int = 1970,
) -> list[ClaimRecord]:  # fmt: skip
    out = []
    for d in range(days):
        for i in range(per_day):
            klass = "A" if (d * per_day + i) % class_a_every == 0 else "B"
            if kind == "aid":
                klass = "I" if klass == "A" else "II"
            out.append(
                ClaimRecord(
                    MemberId("cpam-75"),
                    line(kind, "AMO", member_reference=f"{am}-{d}-{i}", provider_am_number=am,
                         provider_rpps=rpps, provider_finess="", beneficiary_token=make_token(rng),
                         care_date=TODAY - timedelta(days=1 + 3 * d), product_class=klass,
                         unit_price_cents=2500, birth_year=birth_year,
                         prescription_date=TODAY - timedelta(days=1 + 3 * d)),
                )
            )  # fmt: skip
    return out


def _peers(rng: random.Random, kind: str = "frame") -> list[ClaimRecord]:
    peers: list[ClaimRecord] = []
    for p in range(9):
        peers += _provider_lines(rng, make_am_number(rng), make_rpps(rng), per_day=2 + p % 3,
                                 days=12, class_a_every=4 + p % 3, kind=kind)  # fmt: skip
    return peers


@pytest.mark.parametrize(("per_day", "expected"), [(20, True), (4, False)])
def test_provider_volume_outlier(per_day: int, expected: bool) -> None:
    rng = random.Random(5)
    suspect = _provider_lines(rng, "750000001", make_rpps(rng), per_day=per_day, days=12)
    assert fires("PROVIDER_VOLUME_OUTLIER", suspect[0], suspect[1:] + _peers(rng)) is expected


@pytest.mark.parametrize(("every", "expected"), [(1, True), (5, False)])
def test_provider_class_mix_outlier(every: int, expected: bool) -> None:
    rng = random.Random(6)
    suspect = _provider_lines(rng, "750000002", make_rpps(rng), per_day=3, days=12,
                              class_a_every=every)  # fmt: skip
    assert fires("CLASS_MIX_OUTLIER", suspect[0], suspect[1:] + _peers(rng)) is expected


@pytest.mark.parametrize(("birth_year", "expected"), [(2002, True), (1950, False)])
def test_provider_age_mix_outlier_in_audiology(birth_year: int, expected: bool) -> None:
    rng = random.Random(7)
    suspect = _provider_lines(rng, "750000003", make_rpps(rng), per_day=3, days=12, kind="aid",
                              birth_year=birth_year)  # fmt: skip
    peers: list[ClaimRecord] = []
    for p in range(9):
        peers += _provider_lines(rng, make_am_number(rng), make_rpps(rng), per_day=3, days=12,
                                 kind="aid", birth_year=1940 + 2 * p)  # fmt: skip
    # one young-ish patient in some peers gives the peers a spread
    peers += _provider_lines(rng, peers[0].line.provider_am_number, peers[0].line.provider_rpps,
                             per_day=1, days=3, kind="aid", birth_year=1999)  # fmt: skip
    assert fires("PROVIDER_AGE_MIX_OUTLIER", suspect[0], suspect[1:] + peers) is expected


def test_provider_too_small_to_compare_is_not_an_outlier() -> None:
    rng = random.Random(8)
    suspect = _provider_lines(rng, "750000004", make_rpps(rng), per_day=19, days=1)
    assert not fires("PROVIDER_VOLUME_OUTLIER", suspect[0], suspect[1:] + _peers(rng))


# -- an honest line ------------------------------------------------------------------------------


def test_an_honest_matched_line_scores_zero() -> None:
    target = rec(MUT_A)
    hist = InMemoryHistory([target, rec(CPAM)])
    score = score_claim(target.line, hist, RULESET, TODAY, member=MUT_A)
    assert (score.score, score.level, score.reasons) == (0, "none", ())
    assert score.ruleset_version == RULESET.version and score.ruleset_hash == RULESET.sha256


def test_the_stored_copy_of_the_scored_line_is_ignored() -> None:
    target = rec(CPAM)
    assert codes(target) == set()  # not a duplicate of itself

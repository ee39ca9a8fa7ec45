"""What the scoring of one member's line may learn from other members' lines (pure domain).

Named inference attacks: an AMC must not learn, from whether a rule fires or from what its
explanation says, that another AMC holds a line about the same beneficiary -- except through the
one reason built for it, "same item also claimed from another complementary insurer", which
carries no count. And an AMO's score says when it was built from AMC data (the policy hides
such alerts from AMOs: ``common-no-amc-data-in-amo-alerts``).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from gateway.domain import ClaimRecord, InMemoryHistory, Score, default_ruleset, score_claim
from tests.domain.factories import CPAM, MUT_A, MUT_B, MUT_C, TODAY, rec

RULESET = default_ruleset()
D = date(2026, 1, 10)


def _score(target: ClaimRecord, others: list[ClaimRecord], today: date = TODAY) -> Score:
    return score_claim(target.line, InMemoryHistory([target, *others]), RULESET, today,
                       member=target.member)  # fmt: skip


def _codes(target: ClaimRecord, others: list[ClaimRecord], today: date = TODAY) -> set[str]:
    return {r.code for r in _score(target, others, today).reasons}


def test_attack_early_renewal_reveals_another_amcs_previous_equipment() -> None:
    # The previous glasses were paid by another AMC only (no AMO side): an AMC must not learn
    # from an EARLY_RENEWAL reason that another insurer paid for them.
    other_amc_only = rec(MUT_B, member_reference="OLD", care_date=date(2025, 3, 1),
                         prescription_date=date(2025, 3, 1))  # fmt: skip
    target = rec(MUT_A, care_date=D)
    assert "EARLY_RENEWAL" not in _codes(target, [rec(CPAM), other_amc_only])
    # Near miss: the same previous equipment on the AMO side is the AMC's to know.
    amo_side = rec(CPAM, member_reference="OLD", care_date=date(2025, 3, 1),
                   prescription_date=date(2025, 3, 1))  # fmt: skip
    assert "EARLY_RENEWAL" in _codes(target, [rec(CPAM), amo_side])
    # And its own previous equipment, of course.
    own = rec(MUT_A, member_reference="OLD", care_date=date(2025, 3, 1),
              prescription_date=date(2025, 3, 1))  # fmt: skip
    assert "EARLY_RENEWAL" in _codes(target, [rec(CPAM), own])


def test_attack_missing_follow_up_that_does_not_fire_reveals_another_amc() -> None:
    # A follow-up billed to another AMC only must not silence NO_FOLLOWUP for this AMC: the
    # silence itself would tell it that another insurer covers the beneficiary.
    fitted = date(2024, 12, 1)
    aid = rec(MUT_A, "aid", care_date=fitted, prescription_date=fitted)
    amo_aid = rec(CPAM, "aid", care_date=fitted, prescription_date=fitted)
    elsewhere = rec(MUT_B, "followup", member_reference="S1", care_date=date(2025, 6, 1))
    today = date(2025, 12, 2)
    assert "NO_FOLLOWUP" in _codes(aid, [amo_aid], today)
    assert "NO_FOLLOWUP" in _codes(aid, [amo_aid, elsewhere], today)
    amo_follow_up = rec(CPAM, "followup", member_reference="S1", care_date=date(2025, 6, 1))
    assert "NO_FOLLOWUP" not in _codes(aid, [amo_aid, amo_follow_up], today)


@pytest.mark.parametrize("other_amcs", [[MUT_B], [MUT_B, MUT_C]])
def test_attack_double_billing_explanation_counts_the_other_amcs(other_amcs: list[str]) -> None:
    others = [rec(m, member_reference=f"R-{m}") for m in other_amcs]  # type: ignore[arg-type]
    score = _score(rec(MUT_A), [rec(CPAM), *others])
    [reason] = [r for r in score.reasons if r.code == "DOUBLE_BILLING_AMC"]
    assert reason.explanation == "Same item also claimed from another complementary insurer"
    for r in score.reasons:
        assert not any(ch.isdigit() for ch in r.explanation), r.explanation


def test_attack_score_differs_with_another_amcs_unrelated_line() -> None:
    # Another AMC's line for the same beneficiary, a different item: nothing may change.
    target = rec(MUT_A)
    unrelated = rec(MUT_B, "frame", member_reference="F", care_date=D - timedelta(days=200))
    assert _score(target, [rec(CPAM)]) == _score(target, [rec(CPAM), unrelated])


def test_amo_scores_say_when_they_used_amc_data() -> None:
    amo = rec(CPAM)
    assert not _score(amo, []).derived_from_amc_data("AMO")
    mismatched = rec(MUT_A, unit_price_cents=12100, amc_paid_cents=100)
    score = _score(amo, [mismatched])
    assert "AMOUNT_MISMATCH" in {r.code for r in score.reasons}
    assert score.derived_from_amc_data("AMO")
    # Evidence from the AMO's own data only: not derived from AMC data.
    expensive = rec(CPAM, "frame", product_class="A", unit_price_cents=3001)
    price = _score(expensive, [])
    assert {r.code for r in price.reasons} == {"PRICE_ABOVE_CAP"}
    assert not price.derived_from_amc_data("AMO")
    # An AMC's own alert is AMC data by construction.
    assert _score(rec(MUT_A), []).derived_from_amc_data("AMC")

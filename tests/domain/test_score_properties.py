"""Invariants of the score: bounded, monotonic in the amount at stake and in added evidence."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import ClaimRecord, InMemoryHistory, default_ruleset, score_claim
from gateway.domain.scoring import alert_level, combine

from .factories import CPAM, MUT_A, MUT_B, TODAY, TOKEN, rec

RULESET = default_ruleset()
HARM = RULESET.harm
evidence_st = st.lists(st.floats(0.0, 1.0, allow_nan=False), max_size=12)
amount_st = st.integers(0, 10**9)


@given(evidence_st, amount_st)
def test_score_is_always_within_0_and_100(evidence: list[float], amount: int) -> None:
    assert 0 <= combine(evidence, amount, HARM) <= 100


@given(amount_st)
def test_no_evidence_scores_zero(amount: int) -> None:
    assert combine([], amount, HARM) == 0


@given(evidence_st, amount_st, amount_st)
def test_score_is_monotonic_in_the_amount_at_stake(evidence: list[float], a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert combine(evidence, low, HARM) <= combine(evidence, high, HARM)


@given(evidence_st, st.floats(0.0, 1.0), amount_st, st.integers(0, 12))
def test_score_is_monotonic_in_added_evidence(
    evidence: list[float], extra: float, amount: int, position: int
) -> None:
    more = list(evidence)
    more.insert(min(position, len(more)), extra)
    assert combine(evidence, amount, HARM) <= combine(more, amount, HARM)


@given(evidence_st.filter(bool), st.data(), amount_st)
def test_score_is_monotonic_in_each_evidence_strength(
    evidence: list[float], data: st.DataObject, amount: int
) -> None:
    i = data.draw(st.integers(0, len(evidence) - 1))
    stronger = list(evidence)
    stronger[i] = data.draw(st.floats(evidence[i], 1.0))
    assert combine(evidence, amount, HARM) <= combine(stronger, amount, HARM)


@given(st.integers(0, 100))
def test_alert_level_follows_the_rule_set_thresholds(score: int) -> None:
    levels = RULESET.alert_levels
    expected = (
        "high" if score >= levels.high else "medium" if score >= levels.medium
        else "low" if score >= levels.low else "none"
    )  # fmt: skip
    assert alert_level(score, levels) == expected


# -- the same properties through score_claim ---------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 500_000), st.integers(0, 500_000))
def test_score_claim_is_monotonic_in_the_amount_at_stake(a: int, b: int) -> None:
    def score(price: int) -> int:
        target = rec(MUT_A, unit_price_cents=price)  # phantom complement: no AMO side
        return score_claim(target.line, InMemoryHistory([target]), RULESET, TODAY,
                           member=MUT_A).score  # fmt: skip

    low, high = sorted((a, b))
    assert score(low) <= score(high)


def _extras(flags: frozenset[str]) -> tuple[list[ClaimRecord], dict[str, list[str]]]:
    records: list[ClaimRecord] = []
    history: dict[str, list[str]] = {}
    if "twin" in flags:  # same item twice, same member
        records.append(rec(MUT_A, member_reference="TWIN"))
    if "other_amc" in flags:  # the same item from another AMC
        records.append(rec(MUT_B, member_reference="OTHER"))
    if "old" in flags:  # a previous lens for the same eye 10 months ago
        old = TODAY - timedelta(days=300)
        records.append(rec(CPAM, member_reference="OLD", care_date=old, prescription_date=old))
    if "suspicion" in flags:
        history["suspected_beneficiaries"] = [TOKEN]
    return records, history


FLAGS = ["twin", "other_amc", "old", "suspicion"]


@settings(max_examples=60, deadline=None)
@given(st.frozensets(st.sampled_from(FLAGS)), st.frozensets(st.sampled_from(FLAGS)),
       st.booleans())  # fmt: skip
def test_score_claim_is_monotonic_in_added_evidence(
    a: frozenset[str], b: frozenset[str], with_amo: bool
) -> None:
    target = rec(MUT_A)
    base = [target, rec(CPAM)] if with_amo else [target]

    def score(flags: frozenset[str]) -> int:
        records, history = _extras(flags)
        hist = InMemoryHistory(base + records, **history)
        result = score_claim(target.line, hist, RULESET, TODAY, member=MUT_A)
        assert sum(r.contribution for r in result.reasons) == result.score
        return result.score

    assert score(a) <= score(a | b)

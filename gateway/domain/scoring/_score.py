"""Combine rule findings into a 0-100 score weighted by the potential financial harm.

Scores prioritise work for human agents; they decide nothing about anyone (GDPR art. 22). Every
score carries the reasons that produced it and the version and SHA-256 of the rule set.

Formula (ADR 0004), computed in exact integer arithmetic so that it is monotonic to the last
unit, not merely up to floating-point rounding:

1. each finding's evidence ``e = weight * strength`` is quantised to thousandths, at most 0.999;
2. ``evidence = 1 - prod(1 - e_i)`` (noisy-OR: each added finding can only raise it);
3. ``harm = floor + (1 - floor) * stake / (stake + half_saturation)`` in ten-thousandths
   (saturating in euros at stake, never zero so strong evidence on a small amount still shows);
4. ``score = round(100 * evidence * harm)``; the level comes from the rule set's thresholds;
5. the score is shared among the reasons in proportion to ``-ln(1 - e_i)`` (each reason's share
   of the noisy-OR), largest remainder first, so contributions add up to the score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from gateway.domain._claims import ClaimLine, ClaimRecord
from gateway.domain._history import ClaimHistory
from gateway.domain.scoring._rules import Context, evaluate_rules, history_span
from gateway.domain.scoring._ruleset import AlertLevels, HarmConfig, RuleSet
from gateway.ids import MemberId

__all__ = [
    "AlertLevel",
    "Reason",
    "Score",
    "alert_level",
    "amount_at_stake",
    "combine",
    "score_claim",
]

AlertLevel = Literal["none", "low", "medium", "high"]

_E = 1000  # evidence quantum (thousandths)
_H = 10000  # harm quantum (ten-thousandths)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a score is what it is: reason code, English explanation, strength, score points.

    ``amc_data``: the reason was built from a line an AMC uploaded (policy attribute
    ``derived_from_amc_data`` of an AMO's alert).
    """

    code: str
    explanation: str
    strength: float
    contribution: int
    amc_data: bool = False


@dataclass(frozen=True, slots=True)
class Score:
    """A claim's priority for human review (0-100); it decides nothing (GDPR art. 22)."""

    score: int
    level: AlertLevel
    reasons: tuple[Reason, ...]
    ruleset_version: str
    ruleset_hash: str
    amount_at_stake_cents: int

    def derived_from_amc_data(self, side: str) -> bool:
        """Whether the score of a line of ``side`` used data an AMC uploaded (policy attribute)."""
        return side == "AMC" or any(r.amc_data for r in self.reasons)


def _quantise(evidence: float) -> int:
    return min(_E - 1, max(0, int(evidence * _E + 0.5)))


def _harm(amount_cents: int, harm: HarmConfig) -> int:
    floor = min(_H, max(0, int(harm.floor * _H + 0.5)))
    stake = max(0, amount_cents)
    return floor + (_H - floor) * stake // (stake + harm.half_saturation_cents)


def combine(evidence: Sequence[float], amount_at_stake_cents: int, harm: HarmConfig) -> int:
    """Score 0-100 from per-finding evidence (``weight * strength`` each) and the stake.

    Non-decreasing in every evidence value, in the number of findings and in the amount at
    stake; 0 when there is no evidence.
    """
    quanta = [_quantise(e) for e in evidence]
    denominator = miss = 1
    for q in quanta:
        denominator *= _E
        miss *= _E - q
    numerator = 100 * (denominator - miss) * _harm(amount_at_stake_cents, harm)
    den = denominator * _H
    return min(100, (2 * numerator + den) // (2 * den))


def _shares(score: int, evidence: Sequence[float]) -> list[int]:
    logs = [-math.log1p(-_quantise(e) / _E) for e in evidence]
    total = sum(logs)
    if score == 0 or total <= 0:
        return [0] * len(evidence)
    exact = [score * w / total for w in logs]
    parts = [int(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (parts[i] - exact[i], i))
    for i in order[: score - sum(parts)]:
        parts[i] += 1
    return parts


def alert_level(score: int, levels: AlertLevels) -> AlertLevel:
    """The alert level of ``score`` under the rule set's thresholds (inclusive)."""
    if score >= levels.high:
        return "high"
    if score >= levels.medium:
        return "medium"
    if score >= levels.low:
        return "low"
    return "none"


def amount_at_stake(line: ClaimLine) -> int:
    """Euro cents at stake for the line: the amount billed, or more if a side paid more."""
    return max(line.amount_billed_cents, line.amo_paid_cents, line.amc_paid_cents)


def score_claim(
    line: ClaimLine,
    history: ClaimHistory,
    ruleset: RuleSet,
    today: date,
    *,
    member: MemberId,
) -> Score:
    """Score one claim line against the shared history, to prioritise human review.

    The score ranks claims for agents by evidence and potential financial harm; it is not a
    decision and triggers none (GDPR art. 22). The line may or may not already be stored: the
    stored copy (same member and member reference) is ignored. An AMC's line is judged on the
    AMC's own lines and the AMO side; other AMCs' lines only tell whether the same item was
    claimed elsewhere (see :mod:`gateway.domain.scoring._rules`).

    Args:
        line: the line to score (uploaded or sent for the pre-payment check).
        history: the shared past (both sides, all members).
        ruleset: the agreed rule set; its version and hash are copied into the score.
        today: the scoring day (rules that wait for time to pass use it).
        member: the member that holds ``line`` (to tell its own lines from others').

    Returns:
        The score, its alert level and its reasons, most contributing first.

    Raises:
        UnavailableError: the history's store is unreachable (from the implementation).
    """
    record = ClaimRecord(member, line)
    start, end = history_span(line, ruleset)
    ref = line.member_reference
    everyone = [
        r
        for r in history.beneficiary_lines(line.beneficiary_token, line.sector, start, end)
        if not (r.member == member and r.line.member_reference == ref)
    ]
    visible = everyone
    if line.side == "AMC":  # own lines and the AMO side only (rules module docstring, step 1)
        visible = [r for r in everyone if r.member == member or r.line.side == "AMO"]
    findings = evaluate_rules(Context(record, visible, history, ruleset, today, everyone))
    evidence = [f.weight * f.strength for f in findings]
    stake = amount_at_stake(line)
    score = combine(evidence, stake, ruleset.harm)
    reasons = [
        Reason(f.code, f.explanation, round(f.strength, 3), c, f.amc_data)
        for f, c in zip(findings, _shares(score, evidence), strict=True)
    ]
    reasons.sort(key=lambda r: (-r.contribution, -r.strength, r.code))
    return Score(
        score=score,
        level=alert_level(score, ruleset.alert_levels),
        reasons=tuple(reasons),
        ruleset_version=ruleset.version,
        ruleset_hash=ruleset.sha256,
        amount_at_stake_cents=stake,
    )

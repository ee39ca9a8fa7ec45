"""How well the shared scoring finds the injected fraud: metrics from ground truth (pure).

Inputs: the ground truth of ``vigie synth`` (one row per claim line), which lines were billed by
an honest provider (role ``regular`` in ``population.json``), and the alerts each member could
read back through ``ListAlerts`` (its own lines, minimised by the policy). Definitions:

- **recall(p)**: among the lines of pattern ``p`` that cost money (``amount_at_stake_cents >
  0``; companion lines of a scheme, such as the honest side of an amount mismatch, are not
  fraud by themselves), the share that got an alert;
- **precision(p)**: among the alerted lines carrying a reason whose rule targets ``p`` (the rule
  set's ``fraud_pattern``), the share tagged ``p`` in the ground truth (companions included: an
  alert on one line of a scheme is a true lead). Patterns no rule targets have none;
- **precision at k**: among the ``k`` highest-scored alerts (ties: member, reference), the share
  on lines tagged with any pattern;
- **fraudulent euros in the top 1 %**: the stake of the lines among the top 1 % of all lines by
  score, over the total stake of the ground truth. Lines without an alert scored below the rule
  set's lowest threshold and are not visible to members: when alerts are fewer than 1 % of the
  lines, the empty places capture nothing (a lower bound);
- **false-alert rate on honest providers**: the share of honest lines (no pattern) billed by
  regular providers that got an alert.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.synth._config import FRAUD_PATTERNS

__all__ = ["AlertSeen", "Metrics", "PatternMetrics", "TruthRow", "compute_metrics"]

LineKey = tuple[str, str]  # (member, member_reference)


@dataclass(frozen=True, slots=True)
class TruthRow:
    """One ground-truth row of ``vigie synth``."""

    member: str
    member_reference: str
    fraud_pattern: str
    amount_at_stake_cents: int


@dataclass(frozen=True, slots=True)
class AlertSeen:
    """An alert as its member read it back."""

    member: str
    member_reference: str
    score: int
    reason_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PatternMetrics:
    fraud_lines: int
    detected: int
    attributed_alerts: int
    attributed_true: int

    @property
    def recall(self) -> float | None:
        return self.detected / self.fraud_lines if self.fraud_lines else None

    @property
    def precision(self) -> float | None:
        return self.attributed_true / self.attributed_alerts if self.attributed_alerts else None


@dataclass(frozen=True, slots=True)
class Metrics:
    lines: int
    alerts: int
    per_pattern: Mapping[str, PatternMetrics]
    precision_overall: float | None
    recall_overall: float | None
    top_k: int
    precision_at_k: float | None
    top_share: float
    top_lines: int
    fraud_stake_cents: int
    captured_stake_cents: int
    honest_lines: int
    honest_alerted: int
    unknown_alerts: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def captured_share(self) -> float | None:
        return (
            self.captured_stake_cents / self.fraud_stake_cents if self.fraud_stake_cents else None
        )

    @property
    def false_alert_rate(self) -> float | None:
        return self.honest_alerted / self.honest_lines if self.honest_lines else None

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary (``vigie evaluate --json``)."""
        return {
            "lines": self.lines,
            "alerts": self.alerts,
            "per_pattern": {
                p: {
                    "fraud_lines": m.fraud_lines,
                    "detected": m.detected,
                    "recall": m.recall,
                    "attributed_alerts": m.attributed_alerts,
                    "precision": m.precision,
                }
                for p, m in self.per_pattern.items()
            },
            "precision_overall": self.precision_overall,
            "recall_overall": self.recall_overall,
            "precision_at_k": {"k": self.top_k, "value": self.precision_at_k},
            "fraud_euros_in_top_share": {
                "share_of_lines": self.top_share,
                "lines": self.top_lines,
                "fraud_stake_cents": self.fraud_stake_cents,
                "captured_stake_cents": self.captured_stake_cents,
                "captured": self.captured_share,
            },
            "false_alert_rate_honest_providers": {
                "honest_lines": self.honest_lines,
                "alerted": self.honest_alerted,
                "rate": self.false_alert_rate,
            },
            "unknown_alerts": self.unknown_alerts,
        }


def compute_metrics(
    truth: Iterable[TruthRow],
    alerts: Sequence[AlertSeen],
    *,
    honest_provider_lines: frozenset[LineKey] | set[LineKey],
    rule_patterns: Mapping[str, str],
    top_k: int = 100,
    top_share: float = 0.01,
) -> Metrics:
    """Compare the alerts with the ground truth (see the module docstring for definitions).

    Args:
        truth: every ground-truth row (one per claim line).
        alerts: the alerts read back, at most one per line.
        honest_provider_lines: the (member, reference) of lines billed by regular providers.
        rule_patterns: reason code -> fraud pattern (``RuleSet.fraud_patterns()``).
        top_k: ``k`` of the precision at k.
        top_share: share of all lines whose stake is counted (0.01: the top 1 %).

    Raises:
        ValueError: ``top_k`` < 1 or ``top_share`` not in (0, 1].
    """
    if top_k < 1 or not 0 < top_share <= 1:
        raise ValueError("top_k must be >= 1 and top_share in (0, 1]")
    by_line = {(a.member, a.member_reference): a for a in alerts}
    pattern_of: dict[LineKey, str] = {}
    stake_of: dict[LineKey, int] = {}
    fraud_lines = dict.fromkeys(FRAUD_PATTERNS, 0)
    detected = dict.fromkeys(FRAUD_PATTERNS, 0)
    honest = honest_alerted = lines = 0
    for row in truth:
        key = (row.member, row.member_reference)
        lines += 1
        pattern_of[key], stake_of[key] = row.fraud_pattern, row.amount_at_stake_cents
        if row.fraud_pattern and row.amount_at_stake_cents > 0:
            fraud_lines[row.fraud_pattern] = fraud_lines.get(row.fraud_pattern, 0) + 1
            if key in by_line:
                detected[row.fraud_pattern] = detected.get(row.fraud_pattern, 0) + 1
        elif not row.fraud_pattern and key in honest_provider_lines:
            honest += 1
            honest_alerted += key in by_line
    attributed = dict.fromkeys(FRAUD_PATTERNS, 0)
    attributed_true = dict.fromkeys(FRAUD_PATTERNS, 0)
    unknown = 0
    for key, alert in by_line.items():
        if key not in pattern_of:
            unknown += 1
            continue
        for p in {rule_patterns.get(code, "") for code in alert.reason_codes} - {""}:
            attributed[p] = attributed.get(p, 0) + 1
            attributed_true[p] = attributed_true.get(p, 0) + (pattern_of[key] == p)
    known = [a for k, a in by_line.items() if k in pattern_of]
    ranked = sorted(known, key=lambda a: (-a.score, a.member, a.member_reference))
    top = ranked[:top_k]
    n_top = max(1, math.ceil(lines * top_share)) if lines else 0
    captured = sum(stake_of[(a.member, a.member_reference)] for a in ranked[:n_top])
    tagged = sum(1 for a in known if pattern_of[(a.member, a.member_reference)])
    all_fraud = sum(fraud_lines.values())
    return Metrics(
        lines=lines,
        alerts=len(known),
        per_pattern={
            p: PatternMetrics(fraud_lines[p], detected[p], attributed[p], attributed_true[p])
            for p in fraud_lines
        },
        precision_overall=tagged / len(known) if known else None,
        recall_overall=sum(detected.values()) / all_fraud if all_fraud else None,
        top_k=top_k,
        precision_at_k=(
            sum(1 for a in top if pattern_of[(a.member, a.member_reference)]) / len(top)
            if top
            else None
        ),
        top_share=top_share,
        top_lines=n_top,
        fraud_stake_cents=sum(stake_of.values()),
        captured_stake_cents=captured,
        honest_lines=honest,
        honest_alerted=honest_alerted,
        unknown_alerts=unknown,
        notes=(
            ("fewer alerts than the top share of lines: the rest captures nothing",)
            if len(ranked) < n_top
            else ()
        ),
    )

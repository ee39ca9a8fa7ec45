"""What the gateway derives about a suspicion: its alert level and when it will be purged (pure).

- **Alert level** (``Suspicion.alert_level`` in the API): a suspicion is a human finding, so its
  evidence counts as certain; its level is the shared rule set's score with that evidence and
  the estimated amount at stake (``score = round(100 * evidence * harm)``, ADR 0004), placed
  against the same thresholds as claim alerts. It prioritises work; it decides nothing
  (GDPR art. 22). Being a function of the amount, it is disclosed only to readers whose view
  includes ``estimated_amount_cents``.
- **Expiry** (``expire_time``, AIP-214): when :func:`gateway.domain.retention.run_retention`
  will delete the suspicion under the bundle's retention periods, or ``None`` while the action
  goes on (qualified, or confirmed and still open).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from gateway.domain._suspicion_model import Suspicion
from gateway.domain.scoring import AlertLevel, RuleSet, alert_level, combine, default_ruleset
from policy import PolicyEngine

__all__ = ["ALERT_LEVEL_ORDER", "suspicion_alert_level", "suspicion_expiry"]

ALERT_LEVEL_ORDER: Final[tuple[AlertLevel, ...]] = ("none", "low", "medium", "high")
"""Alert levels from lowest to highest (a list filter keeps a level and those above it)."""

_HUMAN_FINDING_EVIDENCE: Final = 1.0


def suspicion_alert_level(
    estimated_amount_cents: int, ruleset: RuleSet | None = None
) -> AlertLevel:
    """The alert level of a suspicion with this estimated amount at stake.

    Args:
        estimated_amount_cents: the suspicion's estimated amount (euro cents, >= 0).
        ruleset: the scoring rule set whose harm factor and thresholds apply (default: the
            shipped one).
    """
    rules = ruleset or default_ruleset()
    score = combine([_HUMAN_FINDING_EVIDENCE], estimated_amount_cents, rules.harm)
    return alert_level(score, rules.alert_levels)


def suspicion_expiry(suspicion: Suspicion, engine: PolicyEngine) -> datetime | None:
    """When the retention purge deletes ``suspicion`` (``None``: kept while the action goes on).

    Mirrors the rules of :mod:`gateway.domain.retention` (categories of the bundle):

    1. still ``submitted``: ``alert_not_qualified`` after its creation;
    2. cleared: ``not_relevant_or_cleared`` after the clearance (the payload is already gone);
    3. dismissed: ``closed_without_action`` after the dismissal;
    4. confirmed and closed: ``final_decision`` after the closing.

    Raises:
        EvaluationError: the bundle lacks a retention category (a broken bundle).
    """
    if suspicion.status == "submitted":
        return suspicion.created_at + engine.retention("alert_not_qualified")
    if suspicion.cleared_at is not None:
        return suspicion.cleared_at + engine.retention("not_relevant_or_cleared")
    if suspicion.outcome == "dismissed" and suspicion.decided_at is not None:
        return suspicion.decided_at + engine.retention("closed_without_action")
    if suspicion.outcome == "confirmed" and suspicion.closed_at is not None:
        return suspicion.closed_at + engine.retention("final_decision")
    return None

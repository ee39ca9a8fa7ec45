"""The shared scoring: a versioned rule set, the rules, and the evidence x harm score.

Scores prioritise work for human agents; they decide nothing (GDPR art. 22). See ADR 0004.
"""

from gateway.domain.scoring._rules import add_months
from gateway.domain.scoring._ruleset import (
    AlertLevels,
    HarmConfig,
    RuleSet,
    default_ruleset,
    load_ruleset,
    load_ruleset_file,
)
from gateway.domain.scoring._score import (
    AlertLevel,
    Reason,
    Score,
    alert_level,
    amount_at_stake,
    combine,
    score_claim,
)

__all__ = [
    "AlertLevel",
    "AlertLevels",
    "HarmConfig",
    "Reason",
    "RuleSet",
    "Score",
    "add_months",
    "alert_level",
    "amount_at_stake",
    "combine",
    "default_ruleset",
    "load_ruleset",
    "load_ruleset_file",
    "score_claim",
]

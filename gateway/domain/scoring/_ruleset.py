"""The versioned rule set: a declarative YAML file parsed into frozen models.

The file's exact bytes are hashed (SHA-256) and the hash travels with every score, so anyone can
tell which agreed rule set produced it (ADR 0004). Weights, thresholds, legal caps and alert
levels are configuration; code only knows how each rule reasons.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.domain._claims import Sector
from gateway.errors import InvalidArgumentError

__all__ = [
    "AgeBand",
    "AlertLevels",
    "HarmConfig",
    "PriceCap",
    "RuleSet",
    "default_ruleset",
    "load_ruleset",
    "load_ruleset_file",
]

Weight = float


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class _Rule(_Model):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    fraud_pattern: str
    weight: float = Field(ge=0.0, le=1.0)


class AgeBand(_Model):
    """A duration (months) applying to ages ``min_age..max_age`` (inclusive) in one sector."""

    sector: Sector
    min_age: int = Field(ge=0)
    max_age: int = Field(ge=0)
    months: int = Field(ge=0)


class PriceCap(_Model):
    """A legal maximum unit price for a sector, grouping code, class and age range."""

    sector: Sector
    grouping_code: str
    product_class: str
    min_age: int = Field(ge=0)
    max_age: int = Field(ge=0)
    max_cents: int = Field(ge=0)


class DemographyCase(_Model):
    sector: Sector
    grouping_codes: tuple[str, ...]
    below_age: int = Field(ge=0)
    strength: float = Field(ge=0.0, le=1.0)


class OutlierMetric(_Model):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    fraud_pattern: str
    metric: Literal["lines_per_day", "share_100_sante", "young_share", "bilateral_share"]
    direction: Literal["high", "low", "both"]
    weight: float = Field(ge=0.0, le=1.0)
    sectors: tuple[Sector, ...]


class PhantomComplementRule(_Rule):
    grace_days: int = Field(ge=0)


class AmountMismatchRule(_Rule):
    tolerance_cents: int = Field(ge=0)


class EarlyRenewalRule(_Rule):
    periods: tuple[AgeBand, ...]


class PrescriptionRule(_Rule):
    validity: tuple[AgeBand, ...]


class PriceCapRule(_Rule):
    caps: tuple[PriceCap, ...]


class DuplicateItemRule(_Rule):
    window_days: dict[Sector, int]


class NoFollowupRule(_Rule):
    months: int = Field(ge=1)


class DemographyRule(_Rule):
    cases: tuple[DemographyCase, ...]


class ProviderOutlierRule(_Model):
    window_days: int = Field(ge=1)
    min_items: int = Field(ge=1)
    min_peers: int = Field(ge=2)
    z_threshold: float = Field(gt=0.0)
    metrics: tuple[OutlierMetric, ...]


class OpenSuspicionRule(_Rule):
    beneficiary_strength: float = Field(ge=0.0, le=1.0)
    provider_strength: float = Field(ge=0.0, le=1.0)


class Rules(_Model):
    phantom_complement: PhantomComplementRule
    amount_mismatch: AmountMismatchRule
    early_renewal: EarlyRenewalRule
    prescription_invalid: PrescriptionRule
    price_above_cap: PriceCapRule
    double_billing_amc: _Rule
    duplicate_item: DuplicateItemRule
    no_followup: NoFollowupRule
    implausible_demography: DemographyRule
    provider_outlier: ProviderOutlierRule
    open_suspicion: OpenSuspicionRule


class HarmConfig(_Model):
    """``harm = floor + (1 - floor) * stake / (stake + half_saturation_cents)``."""

    floor: float = Field(ge=0.0, le=1.0)
    half_saturation_cents: int = Field(ge=1)


class AlertLevels(_Model):
    """Score thresholds (inclusive) of each alert level; below ``low`` the level is ``none``."""

    low: int = Field(ge=0, le=100)
    medium: int = Field(ge=0, le=100)
    high: int = Field(ge=0, le=100)


class RuleSet(_Model):
    """A parsed rule set and the SHA-256 (hex) of the bytes it was parsed from."""

    version: str = Field(min_length=1, max_length=32)
    language: Literal["en"]
    harm: HarmConfig
    alert_levels: AlertLevels
    matching_window_days: int = Field(ge=0, le=31)
    rules: Rules
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    def fraud_patterns(self) -> dict[str, str]:
        """Reason code -> fraud pattern (for evaluation against synthetic ground truth)."""
        out: dict[str, str] = {}
        for name in Rules.model_fields:
            rule = getattr(self.rules, name)
            if isinstance(rule, _Rule):
                out[rule.code] = rule.fraud_pattern
        for m in self.rules.provider_outlier.metrics:
            out[m.code] = m.fraud_pattern
        return out


def load_ruleset(data: bytes) -> RuleSet:
    """Parse a rule set from the bytes of its YAML file; the hash covers exactly these bytes.

    Raises:
        InvalidArgumentError: the YAML is malformed or breaks the rule-set schema (the
            violation names the path of the bad setting).
    """
    digest = hashlib.sha256(data).hexdigest()
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as e:
        raise InvalidArgumentError.for_field("ruleset", "must be valid YAML") from e
    if not isinstance(raw, dict):
        raise InvalidArgumentError.for_field("ruleset", "must be a YAML mapping")
    try:
        # JSON mode: strict types, but YAML sequences may fill tuple fields.
        ruleset = RuleSet.model_validate_json(json.dumps({**raw, "sha256": digest}))
    except (ValidationError, TypeError) as e:
        if not isinstance(e, ValidationError):
            raise InvalidArgumentError.for_field("ruleset", "must hold only YAML scalars") from e
        first = e.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise InvalidArgumentError.for_field(f"ruleset.{path}", first["msg"]) from e
    levels = ruleset.alert_levels
    if not levels.low <= levels.medium <= levels.high:
        raise InvalidArgumentError.for_field(
            "ruleset.alert_levels", "must be low <= medium <= high"
        )
    return ruleset


def load_ruleset_file(path: Path) -> RuleSet:
    """Read and parse a rule-set file (see :func:`load_ruleset`).

    Raises:
        InvalidArgumentError: as :func:`load_ruleset`.
        OSError: the file cannot be read.
    """
    return load_ruleset(path.read_bytes())


@functools.cache
def default_ruleset() -> RuleSet:
    """The rule set shipped with this release (``rulesets/v1.yaml``).

    Raises:
        InvalidArgumentError: the shipped file is invalid (a packaging error).
    """
    data = resources.files("gateway.domain.scoring").joinpath("rulesets/v1.yaml").read_bytes()
    return load_ruleset(data)

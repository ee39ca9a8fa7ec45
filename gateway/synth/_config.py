"""What ``vigie synth`` generates (:class:`SynthConfig`) and reports (:class:`SynthSummary`).

Fraud rates: each pattern's rate is the probability that one *eligible unit* receives the
pattern. The unit differs by pattern, because the patterns differ in nature:

=========================  ======================================================================
pattern                    eligible unit
=========================  ======================================================================
phantom_complement         covered beneficiary with a sector free of honest care in the window
amount_mismatch            care event with an AMC side
early_renewal              beneficiary with an honest optical or audio equipment in the window
prescription_invalid       optical or audio equipment event
price_above_cap            event holding a 100 % Santé item (class A, class I, 100_SANTE)
double_billing_amc         care event of a covered beneficiary (needs at least 2 AMCs)
duplicate_item             equipment event (lens, hearing aid, prosthesis)
no_followup                hearing-aid fitting at least 12 months before the end of the window
implausible_demography     beneficiary aged 18-29 without hearing aids, or under 6 without glasses
provider_volume_outlier    provider: share of each sector's providers billing 4x their peers [#]_
class_shift                class B optical equipment event
identity_theft             beneficiary with a sector free of honest care in the window
fictitious_billing         adult beneficiary with a sector free of honest care in the window
=========================  ======================================================================

.. [#] ``int(rate * providers)`` outliers per sector (at least one audiologist when the rate is
   above 0); each draws 4 times a peer's patients and rotates 4 billing sites (AM numbers) by
   quarter. Every line an outlier bills is tagged.

A pattern missing from ``fraud_rates`` is not injected (rate 0); start from
:data:`DEFAULT_FRAUD_RATES` to change a few.
"""

from __future__ import annotations

from datetime import date
from types import MappingProxyType
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.domain._suspicion_model import FRAUD_TYPES

__all__ = [
    "AMC_NAMES",
    "AMO_MEMBER",
    "DEFAULT_FRAUD_RATES",
    "FRAUD_PATTERNS",
    "OutputFormat",
    "SynthConfig",
    "SynthSummary",
]

FRAUD_PATTERNS: Final[tuple[str, ...]] = FRAUD_TYPES
"""The closed list of fraud patterns (claim-line specification; also the suspicion fraud types)."""

DEFAULT_FRAUD_RATES: Final = MappingProxyType(
    {
        "phantom_complement": 0.004,
        "amount_mismatch": 0.004,
        "early_renewal": 0.01,
        "prescription_invalid": 0.005,
        "price_above_cap": 0.01,
        "double_billing_amc": 0.003,
        "duplicate_item": 0.003,
        "no_followup": 0.05,
        "implausible_demography": 0.005,
        "provider_volume_outlier": 0.01,
        "class_shift": 0.01,
        "identity_theft": 0.001,
        "fictitious_billing": 0.002,
    }
)
"""Modest rates (DOMAIN.md §4: from <0.1 % to a few % of claims are fraudulent)."""

AMO_MEMBER: Final = "cpam-75"
AMC_NAMES: Final = (
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "pi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "chi",
    "psi",
    "omega",
)
"""AMC member ids are ``mut-<name>`` in this order."""

OutputFormat = Literal["jsonl", "csv"]


class SynthConfig(BaseModel):
    """Everything that determines a generated data set: same config, byte-identical files.

    ``shared_key`` is the members' first-level key (HMAC-SHA-256 of the NIR, as the SDK does);
    it is never written to any output and is hidden from ``repr``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    seed: int = 0
    beneficiaries: int = Field(default=1000, ge=1, le=50_000_000)
    amcs: int = Field(default=3, ge=1, le=len(AMC_NAMES))
    opticians: int = Field(default=20, ge=1, le=100_000)
    audiologists: int = Field(default=10, ge=1, le=100_000)
    dentists: int = Field(default=30, ge=1, le=100_000)
    prescribers: int = Field(default=40, ge=3, le=100_000)
    start_date: date = date(2023, 1, 1)
    years: int = Field(default=3, ge=1, le=3)
    fraud_rates: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_FRAUD_RATES))
    shared_key: bytes = Field(min_length=32, repr=False)
    output_format: OutputFormat = "jsonl"

    @model_validator(mode="after")
    def _check(self) -> SynthConfig:
        unknown = sorted(set(self.fraud_rates) - set(FRAUD_PATTERNS))
        if unknown:
            raise ValueError(f"fraud_rates: unknown pattern(s) {unknown}")
        for pattern, rate in self.fraud_rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fraud_rates.{pattern}: must be between 0 and 1")
        if self.rate("double_billing_amc") > 0 and self.amcs < 2:
            raise ValueError("fraud_rates.double_billing_amc: needs at least 2 AMCs")
        if self.end_date > date.today():
            raise ValueError("start_date, years: the window must end by today (no future care)")
        return self

    @property
    def end_date(self) -> date:
        """Last day of the window (inclusive)."""
        start = self.start_date
        try:
            after = start.replace(year=start.year + self.years)
        except ValueError:  # 29 February
            after = start.replace(year=start.year + self.years, day=28)
        return date.fromordinal(after.toordinal() - 1)

    @property
    def amc_members(self) -> tuple[str, ...]:
        """AMC member ids: ``mut-alpha``, ``mut-beta``, ..."""
        return tuple(f"mut-{name}" for name in AMC_NAMES[: self.amcs])

    @property
    def members(self) -> tuple[str, ...]:
        """Every member, the AMO first."""
        return (AMO_MEMBER, *self.amc_members)

    def rate(self, pattern: str) -> float:
        """The configured rate of ``pattern`` (0 when absent)."""
        return self.fraud_rates.get(pattern, 0.0)


class SynthSummary(BaseModel):
    """What one run wrote (also the ``counts`` part of ``population.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    beneficiaries: int
    window_start: date
    window_end: date
    lines_total: int
    lines_by_member: dict[str, int]
    fraud_lines_by_pattern: dict[str, int]
    amount_at_stake_by_pattern: dict[str, int]
    files: tuple[str, ...]

"""In-flight care events and their lines, before they are numbered and written.

One :class:`Event` is one visit to one provider; each billed item gives one AMO line and, for a
covered beneficiary, one AMC line with the same item fields. Fraud injection edits, adds or
removes lines and tags them with their pattern, scheme and amount at stake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from gateway.synth._people import Prescriber, Provider

__all__ = ["Event", "Line"]


@dataclass(slots=True)
class Line:
    """One side of one billed item."""

    side: str  # "AMO" or "AMC"
    member: str
    grouping: str
    klass: str
    act_code: str
    laterality: str
    tooth: int
    unit_price: int
    quantity: int = 1
    amo_base: int = 0
    amo_paid: int = 0
    amc_paid: int = 0
    pattern: str = ""
    scheme_id: str = ""
    stake: int = 0

    @property
    def billed(self) -> int:
        """Amount billed: quantity times unit price."""
        return self.quantity * self.unit_price

    @property
    def paid(self) -> int:
        """What this line's payer paid."""
        return self.amo_paid if self.side == "AMO" else self.amc_paid

    def tag(self, pattern: str, scheme_id: str, stake: int | None = None) -> None:
        """Mark the line as part of a fraud; the stake defaults to what its payer paid."""
        self.pattern, self.scheme_id = pattern, scheme_id
        self.stake = self.paid if stake is None else max(stake, 0)

    def copy(self) -> Line:
        """An independent copy."""
        return Line(
            self.side, self.member, self.grouping, self.klass, self.act_code, self.laterality,
            self.tooth, self.unit_price, self.quantity, self.amo_base, self.amo_paid,
            self.amc_paid, self.pattern, self.scheme_id, self.stake,
        )  # fmt: skip


@dataclass(slots=True)
class Event:
    """One care event: a visit, its provider, prescription and billed lines."""

    sector: str
    care_date: date
    provider: Provider
    birth_year: int
    prescriber: Prescriber | None = None
    prescription_date: date | None = None
    lines: list[Line] = field(default_factory=list)
    followups: list[Event] = field(default_factory=list)  # audio: SUI visits of this fitting
    honest: bool = True  # False for events injected as fraud (not part of the honest timeline)

    @property
    def is_equipment(self) -> bool:
        """Optical equipment, hearing aid or dental prosthesis."""
        return any(ln.grouping not in ("SUIVI", "CONSULTATION", "DETARTRAGE") for ln in self.lines)

    def tag_all(self, pattern: str, scheme_id: str) -> None:
        """Tag every line; each line's stake is what its payer paid."""
        for line in self.lines:
            line.tag(pattern, scheme_id)

    @property
    def tagged(self) -> bool:
        """Whether any line already carries a fraud pattern."""
        return any(line.pattern for line in self.lines)

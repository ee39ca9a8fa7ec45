"""Streamed writers: one claims file per member, the ground truth, and ``population.json``.

Lines are formatted and written as soon as one beneficiary's care is generated; nothing but
per-member counters is kept. JSONL objects and CSV columns carry exactly the claim-line
specification's field names, in its order; both are byte-identical for one configuration.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Final

from gateway.synth._config import OutputFormat
from gateway.synth._model import Event

__all__ = ["CLAIM_FIELDS", "GROUND_TRUTH_FIELDS", "Sink", "claims_file_name"]

CLAIM_FIELDS: Final = (
    "member_reference",
    "side",
    "sector",
    "beneficiary_token",
    "birth_year",
    "provider_rpps",
    "provider_am_number",
    "provider_finess",
    "prescriber_rpps",
    "prescriber_specialty",
    "prescription_date",
    "care_date",
    "act_code",
    "grouping_code",
    "product_class",
    "laterality",
    "tooth",
    "quantity",
    "unit_price_cents",
    "amount_billed_cents",
    "amo_base_cents",
    "amo_paid_cents",
    "amo_claim_number",
    "amc_paid_cents",
    "amc_reference",
)
"""Claim-line field names, in the specification's order."""

GROUND_TRUTH_FIELDS: Final = (
    "member",
    "member_reference",
    "fraud_pattern",
    "scheme_id",
    "amount_at_stake_cents",
)

_BUFFER: Final = 1 << 20
_INT_FIELDS: Final = frozenset(
    {"birth_year", "tooth", "quantity", "unit_price_cents", "amount_billed_cents",
     "amo_base_cents", "amo_paid_cents", "amc_paid_cents", "amount_at_stake_cents"}
)  # fmt: skip


def _json_template(fields: Sequence[str]) -> str:
    """A ``%``-template of one JSON object with ``fields`` in order.

    Every string the generator writes is made of ``[A-Za-z0-9_.:-]`` (codes, identifiers,
    dates, base64url tokens), so it needs no escaping; the tests parse every line back.
    """
    parts = [f'"{f}":%d' if f in _INT_FIELDS else f'"{f}":"%s"' for f in fields]
    return "{" + ",".join(parts) + "}\n"


def claims_file_name(member: str, fmt: OutputFormat) -> str:
    """``claims-<member>.<jsonl|csv>``."""
    return f"claims-{member}.{fmt}"


class _Table:
    """One output file in JSONL or CSV."""

    def __init__(self, path: Path, fields: Sequence[str], fmt: OutputFormat) -> None:
        self._file: IO[str] = path.open("w", encoding="utf-8", newline="", buffering=_BUFFER)
        self._fields = tuple(fields)
        self._csv = csv.writer(self._file, lineterminator="\n") if fmt == "csv" else None
        self._template = _json_template(self._fields)
        if self._csv is not None:
            self._csv.writerow(self._fields)

    def write(self, row: Sequence[Any]) -> None:
        if self._csv is not None:
            self._csv.writerow(row)
        else:
            self._file.write(self._template % tuple(row))

    def close(self) -> None:
        self._file.close()


class Sink:
    """Numbers lines per member, writes them and their ground truth, counts what was written."""

    def __init__(self, out_dir: Path, members: Sequence[str], fmt: OutputFormat) -> None:
        self.files = (*(claims_file_name(m, fmt) for m in members), f"ground_truth.{fmt}")
        self._claims = {
            m: _Table(out_dir / name, CLAIM_FIELDS, fmt)
            for m, name in zip(members, self.files, strict=False)
        }
        self._truth = _Table(out_dir / self.files[-1], GROUND_TRUTH_FIELDS, fmt)
        self._amc_index = {m: i for i, m in enumerate(members)}
        self.lines_by_member = dict.fromkeys(members, 0)
        self.fraud_lines: dict[str, int] = {}
        self.stake: dict[str, int] = {}
        self._events = 0

    def write_event(self, event: Event, token: str) -> None:
        """Write every line of ``event`` to its member's file and to the ground truth."""
        self._events += 1
        n = self._events
        prescriber = event.prescriber
        head = (
            event.sector,
            token,
            event.birth_year,
            event.provider.rpps,
            event.provider.am_number_on(event.care_date),
            event.provider.finess,
            prescriber.rpps if prescriber else "",
            prescriber.specialty if prescriber else "",
            event.prescription_date.isoformat() if event.prescription_date else "",
            event.care_date.isoformat(),
        )
        for ln in event.lines:
            member = ln.member
            count = self.lines_by_member[member] + 1
            self.lines_by_member[member] = count
            reference = f"L-{count:010d}"
            if ln.side == "AMO":
                amo_number, amc_reference = f"FSE-{n:010d}", ""
            else:
                amo_number, amc_reference = "", f"DRE-{n:010d}-{self._amc_index[member]}"
            self._claims[member].write(
                (
                    reference,
                    ln.side,
                    *head,
                    ln.act_code,
                    ln.grouping,
                    ln.klass,
                    ln.laterality,
                    ln.tooth,
                    ln.quantity,
                    ln.unit_price,
                    ln.billed,
                    ln.amo_base,
                    ln.amo_paid,
                    amo_number,
                    ln.amc_paid,
                    amc_reference,
                )
            )
            self._truth.write((member, reference, ln.pattern, ln.scheme_id, ln.stake))
            if ln.pattern:
                self.fraud_lines[ln.pattern] = self.fraud_lines.get(ln.pattern, 0) + 1
                self.stake[ln.pattern] = self.stake.get(ln.pattern, 0) + ln.stake

    def close(self) -> None:
        """Flush and close every file."""
        for table in self._claims.values():
            table.close()
        self._truth.close()

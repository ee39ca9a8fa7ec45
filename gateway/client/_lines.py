"""Claim lines from mappings, CSV and JSONL files, streamed one at a time.

Field names are the shared claim record's: exactly the fields of the proto message
``vigie.v1.ClaimLine`` (and of ``gateway.domain.claims.CLAIM_FIELDS`` and ``vigie synth``'s
files). Values may be typed (JSON numbers, ``datetime.date``) or text (CSV). The SDK only
converts types here; the business rules (codes, amounts, sides) are the gateway's, which
reports each refused line with its index and field violations.

A row may carry the beneficiary as ``nir`` (+ ``nir_birth_date``, ``nir_rank``) instead of
``beneficiary_token``: the :class:`~gateway.client.Pseudonymiser` replaces it before the line is
built, so a NIR is never put in a message. Without a pseudonymiser such a row is refused.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from google.protobuf.descriptor import FieldDescriptor
from google.type import date_pb2  # type: ignore[import-untyped]  # no stubs shipped

from gateway._proto.vigie.v1 import claims_pb2, common_pb2
from gateway.client._errors import ClientConfigError, FieldViolation, LocalValidationError
from gateway.client._pseudonymise import Pseudonymiser

__all__ = [
    "CLAIM_LINE_FIELDS",
    "NIR_FIELDS",
    "FileFormat",
    "UnreadableRow",
    "claim_line_from_mapping",
    "detect_format",
    "read_claim_rows",
]

FileFormat = Literal["csv", "jsonl"]

_DESCRIPTOR: Final = claims_pb2.ClaimLine.DESCRIPTOR
CLAIM_LINE_FIELDS: Final = tuple(f.name for f in _DESCRIPTOR.fields)
"""The shared claim record's field names, in the specification's order."""
NIR_FIELDS: Final = ("nir", "nir_birth_date", "nir_rank")
"""Optional columns the SDK pseudonymises locally (never sent)."""

_SIDES: Final = {"AMO": claims_pb2.CLAIM_SIDE_AMO, "AMC": claims_pb2.CLAIM_SIDE_AMC}
_SECTORS: Final = {
    "optique": common_pb2.SECTOR_OPTIQUE,
    "audio": common_pb2.SECTOR_AUDIO,
    "dentaire": common_pb2.SECTOR_DENTAIRE,
}
_INT_TEXT: Final = re.compile(r"-?[0-9]{1,19}")
_DATE_TEXT: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT64_MAX: Final = 2**63 - 1
_INT32_MAX: Final = 2**31 - 1
_SUFFIXES: Final[dict[str, FileFormat]] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True, slots=True)
class UnreadableRow:
    """A row that could not even be read as an object (bad JSON, wrong CSV column count)."""

    description: str


def _prefix(index: int | None) -> str:
    return f"lines[{index}]." if index is not None else ""


def _int(raw: object, bits: int) -> tuple[int, str | None]:
    if raw is None or raw == "":
        return 0, None
    if isinstance(raw, bool):
        return 0, "must be an integer"
    if isinstance(raw, str):
        if not _INT_TEXT.fullmatch(raw.strip()):
            return 0, "must be an integer"
        raw = int(raw.strip())
    if not isinstance(raw, int):
        return 0, "must be an integer"
    limit = _INT32_MAX if bits == 32 else _INT64_MAX
    if not -limit - 1 <= raw <= limit:
        return 0, f"must fit in {bits} bits"
    return raw, None


def _date(raw: object) -> tuple[date_pb2.Date | None, str | None]:
    if raw is None or raw == "":
        return None, None
    if isinstance(raw, dt.datetime):
        return None, "must be an ISO date YYYY-MM-DD"
    if isinstance(raw, dt.date):
        return date_pb2.Date(year=raw.year, month=raw.month, day=raw.day), None
    if isinstance(raw, str) and _DATE_TEXT.fullmatch(raw):
        try:
            d = dt.date.fromisoformat(raw)
        except ValueError:
            return None, "must be a real date YYYY-MM-DD"
        return date_pb2.Date(year=d.year, month=d.month, day=d.day), None
    return None, "must be an ISO date YYYY-MM-DD"


def _enum(raw: object, names: Mapping[str, int], rule: str) -> tuple[int, str | None]:
    if raw is None or raw == "":
        return 0, None
    if isinstance(raw, str) and raw in names:
        return names[raw], None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw in names.values():
        return raw, None
    return 0, rule


def claim_line_from_mapping(
    row: Mapping[str, Any],
    *,
    index: int | None = None,
    pseudonymiser: Pseudonymiser | None = None,
) -> claims_pb2.ClaimLine:
    """Build a ``ClaimLine`` message from a row of the shared claim record.

    Args:
        row: Field name to value (typed or text). Empty text means "absent".
        index: The row's position, named in errors (``lines[3].quantity``).
        pseudonymiser: Turns a ``nir`` column into ``beneficiary_token`` locally.

    Returns:
        The message (not validated against the business rules: the gateway does that).

    Raises:
        LocalValidationError: An unknown field, a value of the wrong type, or a NIR without a
            pseudonymiser (one violation per bad field; nothing was sent).
    """
    prefix = _prefix(index)
    values = dict(row)
    if "nir" in values:
        if pseudonymiser is None:
            raise LocalValidationError(
                f"invalid {prefix}nir: a NIR needs the members' key file to be pseudonymised "
                "locally (not sent)",
                field_violations=[FieldViolation(f"{prefix}nir", "no pseudonymisation key")],
            )
        values = pseudonymiser.tokenise_row(values, index=index)
    problems: list[tuple[str, str]] = [
        (str(k), "unknown field") for k in values if k not in CLAIM_LINE_FIELDS
    ]
    fields: dict[str, Any] = {}
    for f in _DESCRIPTOR.fields:
        raw = values.get(f.name)
        rule: str | None
        if f.name == "side":
            fields[f.name], rule = _enum(raw, _SIDES, "must be AMO or AMC")
        elif f.name == "sector":
            fields[f.name], rule = _enum(raw, _SECTORS, "must be one of optique, audio, dentaire")
        elif f.type == FieldDescriptor.TYPE_MESSAGE:
            date, rule = _date(raw)
            if date is not None:
                fields[f.name] = date
        elif f.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
            bits = 32 if f.type == FieldDescriptor.TYPE_INT32 else 64
            fields[f.name], rule = _int(raw, bits)
        elif raw is None:
            fields[f.name], rule = "", None
        elif isinstance(raw, str):
            fields[f.name], rule = raw, None
        else:
            rule = "must be a string"
        if rule is not None:
            problems.append((f.name, rule))
    if problems:
        violations = [FieldViolation(prefix + name, rule) for name, rule in problems]
        names = ", ".join(dict.fromkeys(v.field for v in violations))
        raise LocalValidationError(
            f"invalid claim line: {names} (not sent)",
            field_violations=violations,
            reason="LOCAL_VALIDATION",
        )
    return claims_pb2.ClaimLine(**fields)


def detect_format(path: Path, explicit: FileFormat | None = None) -> FileFormat:
    """The file's format: ``explicit``, else from its suffix (``.csv``, ``.jsonl``, ``.ndjson``).

    Raises:
        ClientConfigError: The suffix is not one of those and no format was given.
    """
    if explicit is not None:
        return explicit
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ClientConfigError(f"{path}: unknown format (use a .csv or .jsonl file)")
    return fmt


def _check_columns(path: Path, header: list[str] | None) -> None:
    if not header:
        raise ClientConfigError(f"{path}: empty CSV file (no header row)")
    unknown = [h for h in header if h not in CLAIM_LINE_FIELDS and h not in NIR_FIELDS]
    if unknown:
        raise ClientConfigError(f"{path}: unknown CSV columns: {', '.join(unknown[:5])}")
    if "member_reference" not in header:
        raise ClientConfigError(f"{path}: the header has no member_reference column")


def read_claim_rows(
    path: str | Path, fmt: FileFormat | None = None
) -> Iterator[dict[str, Any] | UnreadableRow]:
    """Stream a claims file row by row (bounded memory: one row at a time).

    CSV has a header row of field names; JSONL has one JSON object per line (blank lines are
    skipped). A row that cannot be read is yielded as :class:`UnreadableRow` so the upload can
    report it at its index.

    Raises:
        ClientConfigError: Missing or unreadable file, unknown format, bad CSV header.
    """
    file = Path(path)
    kind = detect_format(file, fmt)
    try:
        handle = file.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise ClientConfigError(f"{file}: file not found") from None
    except OSError as e:
        raise ClientConfigError(f"{file}: cannot read ({e.strerror})") from None
    with handle:
        try:
            if kind == "csv":
                reader = csv.DictReader(handle, strict=True)
                _check_columns(file, list(reader.fieldnames or []))
                for record in reader:
                    if None in record or any(v is None for v in record.values()):
                        yield UnreadableRow("CSV row: wrong number of columns")
                    else:
                        yield dict(record)
                return
            for text in handle:
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError:
                    yield UnreadableRow("JSONL line: not valid JSON")
                    continue
                yield obj if isinstance(obj, dict) else UnreadableRow("JSONL line: not an object")
        except UnicodeDecodeError:
            raise ClientConfigError(f"{file}: not UTF-8 text") from None
        except csv.Error as e:
            raise ClientConfigError(f"{file}: malformed CSV ({e})") from None

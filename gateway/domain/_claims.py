"""The claim line: one side (AMO or AMC) of one billed item, validated at the trust boundary.

Vocabulary, the frozen :class:`ClaimLine` model and :func:`parse_claim_line`, which turns a
mapping read from a proto message, a JSONL object or a CSV row into a ``ClaimLine`` or raises
:class:`~gateway.errors.InvalidArgumentError` listing every bad field (``lines[3].tooth``) with
the rule it broke, never the value. Field names are those of the claim-line specification
shared by the proto message ``vigie.v1.ClaimLine``, the SDK and ``vigie synth`` files; benefit
vocabulary: DOMAIN.md §3.

Two checks need context and so live only in :func:`parse_claim_line`: dates not in the future
(needs ``today``) and the first-level token form (the store replaces the token by the gateway's
second-level pseudonym, so a line read back from storage carries a pseudonym in
``beneficiary_token``; matching and scoring only compare it for equality).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from gateway.crypto import contains_nir
from gateway.domain._identifiers import (
    FOLLOW_UP_ACT_CODE,
    is_ccam_code,
    is_valid_am_number,
    is_valid_finess,
    is_valid_lpp,
    is_valid_rpps,
    is_valid_token,
)
from gateway.errors import FieldViolation, InvalidArgumentError
from gateway.ids import MemberId

__all__ = [
    "CLAIM_FIELDS",
    "EQUIPMENT_GROUPING_CODES",
    "GROUPING_CODES",
    "HUNDRED_PERCENT_CLASS",
    "LATERAL_GROUPING_CODES",
    "MAX_AMOUNT_CENTS",
    "PRESCRIBER_SPECIALTIES",
    "PRODUCT_CLASSES",
    "SECTORS",
    "TOOTH_GROUPING_CODES",
    "ClaimLine",
    "ClaimRecord",
    "Laterality",
    "Sector",
    "Side",
    "age_in_year",
    "claim_violations",
    "parse_claim_line",
]

Side = Literal["AMO", "AMC"]
Sector = Literal["optique", "audio", "dentaire"]
Laterality = Literal["left", "right", ""]

SECTORS: Final = ("optique", "audio", "dentaire")

GROUPING_CODES: Final[Mapping[str, frozenset[str]]] = {
    "optique": frozenset({"MONTURE", "VERRE_SIMPLE", "VERRE_COMPLEXE", "VERRE_TRES_COMPLEXE"}),
    "audio": frozenset({"AIDE_AUDITIVE", "SUIVI"}),
    "dentaire": frozenset({"COURONNE", "BRIDGE", "INLAY_CORE", "CONSULTATION", "DETARTRAGE"}),
}
"""Grouping codes allowed per sector: the nature of the act, never a pathology (bill art. 5)."""

EQUIPMENT_GROUPING_CODES: Final = frozenset(
    {"MONTURE", "VERRE_SIMPLE", "VERRE_COMPLEXE", "VERRE_TRES_COMPLEXE", "AIDE_AUDITIVE",
     "COURONNE", "BRIDGE", "INLAY_CORE"}
)  # fmt: skip
"""Equipment and prostheses: they carry a product class; the others carry ``""``."""

LATERAL_GROUPING_CODES: Final = frozenset(
    {"VERRE_SIMPLE", "VERRE_COMPLEXE", "VERRE_TRES_COMPLEXE", "AIDE_AUDITIVE"}
)
"""Billed per eye or per ear: laterality ``left``/``right`` is required."""

TOOTH_GROUPING_CODES: Final = frozenset({"COURONNE", "BRIDGE", "INLAY_CORE"})
"""Dental prostheses: an FDI tooth number is required."""

PRODUCT_CLASSES: Final[Mapping[str, frozenset[str]]] = {
    "optique": frozenset({"A", "B"}),
    "audio": frozenset({"I", "II"}),
    "dentaire": frozenset({"100_SANTE", "MAITRISE", "LIBRE"}),
}

HUNDRED_PERCENT_CLASS: Final[Mapping[str, str]] = {
    "optique": "A",
    "audio": "I",
    "dentaire": "100_SANTE",
}
"""The "100 % Santé" class (capped price, zero out-of-pocket) of each sector."""

PRESCRIBER_SPECIALTIES: Final = frozenset({"ophtalmologie", "orl", "generaliste", "dentiste", ""})

MAX_AMOUNT_CENTS: Final = 1_000_000_000
"""Sanity bound on any amount (10 M€), far above any real line."""

_TOKEN_RULE = "must be a 43-character base64url first-level token"  # noqa: S105 (a rule text)
_REFERENCE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SIDE_REFERENCE = re.compile(r"[\x21-\x7e]{1,32}")
_STORED_KEY = re.compile(r"[\x21-\x7e]{1,128}")
_INT_TEXT = re.compile(r"-?[0-9]{1,12}")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ClaimLine(BaseModel):
    """One side of one billed item, as uploaded by a member (claim-line specification).

    Building one checks every rule that needs no context; :func:`parse_claim_line` adds the
    date-in-the-future and token-form checks. Amounts are integer euro cents.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    member_reference: str
    side: Side
    sector: Sector
    beneficiary_token: str
    birth_year: int
    provider_rpps: str = ""
    provider_am_number: str
    provider_finess: str = ""
    prescriber_rpps: str = ""
    prescriber_specialty: str = ""
    prescription_date: date | None = None
    care_date: date
    act_code: str
    grouping_code: str
    product_class: str = ""
    laterality: Laterality = ""
    tooth: int = 0
    quantity: int
    unit_price_cents: int
    amount_billed_cents: int
    amo_base_cents: int = 0
    amo_paid_cents: int = 0
    amo_claim_number: str = ""
    amc_paid_cents: int = 0
    amc_reference: str = ""

    @model_validator(mode="after")
    def _check_rules(self) -> ClaimLine:
        problems = claim_violations(self.__dict__, today=None)
        if problems:
            raise ValueError("; ".join(f"{f}: {rule}" for f, rule in problems))
        return self


CLAIM_FIELDS: Final = tuple(ClaimLine.model_fields)
_FIELD_SET: Final = frozenset(CLAIM_FIELDS)

_INT_FIELDS: Final = frozenset(n for n, f in ClaimLine.model_fields.items() if f.annotation is int)
_DATE_FIELDS: Final = frozenset({"care_date", "prescription_date"})
_OPTIONAL: Final = frozenset(n for n, f in ClaimLine.model_fields.items() if not f.is_required())


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """A stored claim line with the member that uploaded it (the member is never a line field)."""

    member: MemberId
    line: ClaimLine


def age_in_year(birth_year: int, on: date) -> int:
    """Age reached during the calendar year of ``on`` (only the birth year is known)."""
    return on.year - birth_year


def _check_identifiers(v: Mapping[str, Any], out: list[tuple[str, str]]) -> None:
    ref = v.get("member_reference")
    if isinstance(ref, str) and _REFERENCE.fullmatch(ref) is None:
        out.append(("member_reference", "must be 1..64 characters of [A-Za-z0-9._:-]"))
    # Free identifiers are stored in clear: a NIR there would defeat the pseudonymisation.
    for name in ("member_reference", "amo_claim_number", "amc_reference"):
        text = v.get(name)
        if isinstance(text, str) and contains_nir(text):
            out.append((name, "must not contain a NIR (send the beneficiary token)"))
    token = v.get("beneficiary_token")
    if isinstance(token, str) and _STORED_KEY.fullmatch(token) is None:
        out.append(("beneficiary_token", _TOKEN_RULE))
    for name in ("provider_rpps", "prescriber_rpps"):
        value = v.get(name)
        if isinstance(value, str) and value and not is_valid_rpps(value):
            out.append((name, "must be 11 digits with a valid Luhn check digit"))
    am = v.get("provider_am_number")
    if isinstance(am, str) and not is_valid_am_number(am):
        out.append(("provider_am_number", "must be 9 digits"))
    finess = v.get("provider_finess")
    if isinstance(finess, str) and finess and not is_valid_finess(finess):
        out.append(
            ("provider_finess", "must be 9 characters (digits, 2A/2B prefix) with a Luhn check")
        )
    specialty = v.get("prescriber_specialty")
    if isinstance(specialty, str) and specialty not in PRESCRIBER_SPECIALTIES:
        out.append(("prescriber_specialty", "must be one of the prescriber specialties"))


def _check_codes(v: Mapping[str, Any], out: list[tuple[str, str]]) -> None:
    sector, code = v.get("sector"), v.get("grouping_code")
    if not isinstance(sector, str) or sector not in GROUPING_CODES:
        if "sector" in v:
            out.append(("sector", "must be one of optique, audio, dentaire"))
        return
    if isinstance(code, str) and code not in GROUPING_CODES[sector]:
        out.append(("grouping_code", "must be in the sector's closed list of grouping codes"))
        code = None
    act = v.get("act_code")
    if isinstance(act, str):
        if code == "SUIVI" or act == FOLLOW_UP_ACT_CODE:
            if not (code == "SUIVI" and act == FOLLOW_UP_ACT_CODE):
                out.append(("act_code", "SUI is the act code of, and only of, audio SUIVI lines"))
        elif sector == "dentaire" and not is_ccam_code(act):
            out.append(("act_code", "must be a CCAM code (4 uppercase letters, 3 digits)"))
        elif sector != "dentaire" and not is_valid_lpp(act):
            out.append(("act_code", "must be a 7-digit LPP code"))
    klass = v.get("product_class")
    if isinstance(klass, str) and isinstance(code, str):
        if code in EQUIPMENT_GROUPING_CODES and klass not in PRODUCT_CLASSES[sector]:
            out.append(("product_class", "must be a product class of the sector"))
        elif code not in EQUIPMENT_GROUPING_CODES and klass:
            out.append(("product_class", "must be empty for a non-equipment grouping code"))
    side_of_body = v.get("laterality")
    if isinstance(side_of_body, str):
        if side_of_body not in ("left", "right", ""):
            out.append(("laterality", "must be left, right or empty"))
        elif code in LATERAL_GROUPING_CODES and not side_of_body:
            out.append(("laterality", "required (left or right) for this grouping code"))
        elif side_of_body and (sector == "dentaire" or code == "MONTURE"):
            out.append(("laterality", "must be empty for this grouping code"))
    tooth = v.get("tooth")
    if isinstance(tooth, int) and not isinstance(tooth, bool):
        if tooth != 0 and not (1 <= tooth // 10 <= 4 and 1 <= tooth % 10 <= 8):
            out.append(("tooth", "must be 0 or an FDI permanent tooth number 11..48"))
        elif code in TOOTH_GROUPING_CODES and tooth == 0:
            out.append(("tooth", "required for a dental prosthesis"))
        elif sector != "dentaire" and tooth != 0:
            out.append(("tooth", "must be 0 outside dentaire"))
    if sector in ("optique", "audio") and code != "SUIVI" and v.get("prescriber_rpps") == "":
        out.append(("prescriber_rpps", "required for optique and audio equipment"))


def _check_amounts(v: Mapping[str, Any], out: list[tuple[str, str]]) -> None:
    ints = {n: v[n] for n in _INT_FIELDS if isinstance(v.get(n), int)}
    by = ints.get("birth_year")
    if by is not None and by < 1900:
        out.append(("birth_year", "must be between 1900 and the current year"))
    q = ints.get("quantity")
    if q is not None and not 1 <= q <= 99:
        out.append(("quantity", "must be between 1 and 99"))
        q = None
    for name in ("unit_price_cents", "amount_billed_cents", "amo_base_cents", "amo_paid_cents",
                 "amc_paid_cents"):  # fmt: skip
        value = ints.get(name)
        if value is not None and not 0 <= value <= MAX_AMOUNT_CENTS:
            out.append((name, f"must be an integer number of cents in 0..{MAX_AMOUNT_CENTS}"))
            ints.pop(name)
    price, billed = ints.get("unit_price_cents"), ints.get("amount_billed_cents")
    if q is not None and price is not None and billed is not None and billed != q * price:
        out.append(("amount_billed_cents", "must equal quantity * unit_price_cents"))
    side = v.get("side")
    if side not in ("AMO", "AMC"):
        if "side" in v:
            out.append(("side", "must be AMO or AMC"))
        return
    own, other = ("amo", "amc") if side == "AMO" else ("amc", "amo")
    number = "amo_claim_number" if side == "AMO" else "amc_reference"
    value = v.get(number)
    if isinstance(value, str) and _SIDE_REFERENCE.fullmatch(value) is None:
        out.append((number, f"required on the {side} side: 1..32 printable ASCII characters"))
    other_fields = ("amo_base_cents", "amo_paid_cents") if other == "amo" else ("amc_paid_cents",)
    for name in other_fields:
        if ints.get(name, 0) != 0:
            out.append((name, f"must be 0 on the {side} side"))
    other_ref = "amc_reference" if own == "amo" else "amo_claim_number"
    if v.get(other_ref, "") != "":
        out.append((other_ref, f"must be empty on the {side} side"))


def claim_violations(values: Mapping[str, Any], *, today: date | None) -> list[tuple[str, str]]:
    """List ``(field, rule)`` for every rule the (typed) values break; ``[]`` if none.

    With ``today`` given, also checks dates not in the future, birth year not after this year
    and the first-level token form (the upload boundary).
    """
    out: list[tuple[str, str]] = []
    _check_identifiers(values, out)
    _check_codes(values, out)
    _check_amounts(values, out)
    if today is not None:
        token = values.get("beneficiary_token")
        if isinstance(token, str) and not is_valid_token(token):
            if not any(f == "beneficiary_token" for f, _ in out):
                out.append(("beneficiary_token", _TOKEN_RULE))
        by = values.get("birth_year")
        if isinstance(by, int) and by > today.year and not any(f == "birth_year" for f, _ in out):
            out.append(("birth_year", "must be between 1900 and the current year"))
        for name in ("care_date", "prescription_date"):
            d = values.get(name)
            if isinstance(d, date) and d > today:
                out.append((name, "must not be in the future"))
    return out


def _coerce(name: str, raw: object) -> tuple[object, str | None]:
    """Coerce one raw value (proto, JSON or CSV text) to the field's type, or name the rule."""
    if name in _DATE_FIELDS:
        if raw is None or raw == "":
            return (None, None) if name in _OPTIONAL else (None, "required")
        if isinstance(raw, date) and type(raw) is date:
            return raw, None
        if isinstance(raw, str) and _DATE_TEXT.fullmatch(raw):
            try:
                return date.fromisoformat(raw), None
            except ValueError:
                pass
        return None, "must be an ISO date YYYY-MM-DD"
    if name in _INT_FIELDS:
        if raw is None or raw == "":
            return (0, None) if name in _OPTIONAL else (None, "required")
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw, None
        if isinstance(raw, str) and _INT_TEXT.fullmatch(raw):
            return int(raw), None
        return None, "must be an integer"
    if raw is None:
        return ("", None) if name in _OPTIONAL else (None, "required")
    if not isinstance(raw, str):
        return None, "must be a string"
    if raw == "" and name not in _OPTIONAL:
        return None, "required"
    return raw, None


def parse_claim_line(
    mapping: Mapping[str, object], *, today: date, index: int | None = None
) -> ClaimLine:
    """Validate one raw claim line and build the :class:`ClaimLine`.

    Args:
        mapping: field name -> value; values may be typed (proto, JSON) or text (CSV). Absent or
            empty optional fields take their default.
        today: the reference date for "not in the future" rules.
        index: position in the batch; violations are then named ``lines[<index>].<field>``.

    Returns:
        The validated, frozen line.

    Raises:
        InvalidArgumentError: one :class:`~gateway.errors.FieldViolation` per broken rule, naming
            the field path and the rule, never the value.
    """
    prefix = f"lines[{index}]." if index is not None else ""
    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for key in mapping:
        if key not in _FIELD_SET:
            problems.append((str(key) if isinstance(key, str) else "?", "unknown field"))
    for name in CLAIM_FIELDS:
        value, rule = _coerce(name, mapping.get(name))
        if rule is not None:
            problems.append((name, rule))
        else:
            values[name] = value
    problems.extend(claim_violations(values, today=today))
    if problems:
        violations = [FieldViolation(prefix + f, rule) for f, rule in problems]
        fields = ", ".join(dict.fromkeys(v.field for v in violations))
        raise InvalidArgumentError(f"invalid claim line: {fields}", violations)
    # Every rule of the model was checked above (plus the contextual ones): skip re-validation.
    return ClaimLine.model_construct(**values)

"""The suspicion record: its vocabulary, the validated draft and the lifecycle (pure, no I/O).

A member submits a :class:`SuspicionDraft` (built by :func:`parse_suspicion_draft`, which lists
every bad field with the rule it broke and never the value). The gateway stores it as a
:class:`Suspicion`: the beneficiary's first-level token replaced by the gateway's second-level
pseudonym, free text sealed (AES-GCM). :func:`transition` moves a suspicion along the lifecycle
(common brief; issue 4)::

    submitted -> qualified | dismissed | cleared
    qualified -> confirmed | dismissed | cleared
    confirmed -> closed;  dismissed -> closed;  cleared -> closed

Which member may move it is the policy's decision (action ``TransitionSuspicion``); this module
enforces only the state machine and records who, when and why.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from gateway.crypto import contains_nir
from gateway.domain._claims import GROUPING_CODES, SECTORS
from gateway.domain._identifiers import (
    FOLLOW_UP_ACT_CODE,
    is_ccam_code,
    is_valid_am_number,
    is_valid_finess,
    is_valid_lpp,
    is_valid_rpps,
    is_valid_token,
)
from gateway.errors import FailedPreconditionError, FieldViolation, InvalidArgumentError

__all__ = [
    "ERASED_STATUSES",
    "FRAUD_TYPES",
    "MAX_ESTIMATED_AMOUNT_CENTS",
    "OPEN_STATUSES",
    "RETRACTING_STATUSES",
    "SUSPICION_STATUSES",
    "TRANSITIONS",
    "FraudType",
    "MemberKind",
    "Suspicion",
    "SuspicionDraft",
    "SuspicionStatus",
    "SuspicionSubject",
    "Transition",
    "check_case_reference",
    "new_opaque_id",
    "parse_suspicion_draft",
    "transition",
]

MemberKind = Literal["AMO", "AMC"]
SuspicionStatus = Literal["submitted", "qualified", "confirmed", "dismissed", "cleared", "closed"]
SUSPICION_STATUSES: Final = (
    "submitted",
    "qualified",
    "confirmed",
    "dismissed",
    "cleared",
    "closed",
)

TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    "submitted": frozenset({"qualified", "dismissed", "cleared"}),
    "qualified": frozenset({"confirmed", "dismissed", "cleared"}),
    "confirmed": frozenset({"closed"}),
    "dismissed": frozenset({"closed"}),
    "cleared": frozenset({"closed"}),
    "closed": frozenset(),
}
"""Allowed lifecycle moves (common brief): anything else is refused."""

OPEN_STATUSES: Final = frozenset({"submitted", "qualified", "confirmed"})
"""A procedure is under way: the suspicion may still be distributed."""
RETRACTING_STATUSES: Final = frozenset({"dismissed", "cleared"})
"""Reaching these sends a retraction to every recipient (DESIGN flow 6)."""
ERASED_STATUSES: Final = frozenset({"cleared"})
"""Reaching these deletes the payload at once (draft L.114-9-1; CNIL AU-039)."""

FraudType = Literal[
    "phantom_complement",
    "amount_mismatch",
    "early_renewal",
    "prescription_invalid",
    "price_above_cap",
    "double_billing_amc",
    "duplicate_item",
    "no_followup",
    "implausible_demography",
    "provider_volume_outlier",
    "class_shift",
    "identity_theft",
    "fictitious_billing",
]
FRAUD_TYPES: Final[tuple[str, ...]] = get_args(FraudType)
"""The closed list of fraud patterns (claim-line specification, from DOMAIN.md §4)."""

MAX_ESTIMATED_AMOUNT_CENTS: Final = 100_000_000_000
MAX_FACTS_CHARS: Final = 4000
MAX_EVIDENCE_REFS: Final = 20
MAX_EVIDENCE_REF_CHARS: Final = 128
MAX_ACT_CODES: Final = 50
MAX_REASON_CHARS: Final = 1000

_CASE_REFERENCE = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
# Printable text: no control characters except tab, line feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_FROZEN = ConfigDict(frozen=True, extra="forbid", strict=True)


def new_opaque_id(prefix: str) -> str:
    """A random opaque identifier ``<prefix>_<26 base32 characters>`` (128 random bits)."""
    raw = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    return f"{prefix}_{raw}"


class SuspicionSubject(BaseModel):
    """Who the suspicion is about: a beneficiary (first-level token) and/or a provider.

    Provider identifiers come from public directories and stay in clear (DOMAIN.md §2); the
    beneficiary token never reaches storage (the gateway re-keys it first).
    """

    model_config = _FROZEN

    beneficiary_token: str | None = None
    provider_rpps: str | None = None
    provider_am_number: str | None = None
    provider_finess: str | None = None


class SuspicionDraft(BaseModel):
    """A submitted suspicion, every field checked (build it with :func:`parse_suspicion_draft`)."""

    model_config = _FROZEN

    subject: SuspicionSubject
    sector: Literal["optique", "audio", "dentaire"]
    fraud_type: FraudType
    facts_summary: str = Field(min_length=1, max_length=MAX_FACTS_CHARS)
    estimated_amount_cents: int = Field(ge=0, le=MAX_ESTIMATED_AMOUNT_CENTS)
    evidence_refs: tuple[str, ...] = ()
    case_reference: str
    act_grouping_codes: tuple[str, ...] = ()
    act_codes: tuple[str, ...] = ()

    def __repr__(self) -> str:  # free text and the token never reach logs
        return f"SuspicionDraft(sector={self.sector!r}, fraud_type={self.fraud_type!r})"

    __str__ = __repr__


def _text_list(
    name: str, raw: object, out: list[FieldViolation], *, max_items: int
) -> list[str] | None:
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        out.append(FieldViolation(name, "must be a list of strings"))
        return None
    if len(raw) > max_items:
        out.append(FieldViolation(name, f"at most {max_items} items"))
        return None
    items: list[str] = []
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            out.append(FieldViolation(f"{name}[{i}]", "must be a string"))
        else:
            items.append(item)
    return items if len(items) == len(raw) else None


def _check_subject(raw: object, out: list[FieldViolation]) -> dict[str, str | None]:
    subject: dict[str, str | None] = {}
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        out.append(FieldViolation("subject", "must be an object"))
        return subject
    rules = {
        "beneficiary_token": (is_valid_token, "must be a 43-character base64url first-level token"),
        "provider_rpps": (is_valid_rpps, "must be 11 digits with a valid Luhn check digit"),
        "provider_am_number": (is_valid_am_number, "must be 9 digits"),
        "provider_finess": (
            is_valid_finess,
            "must be 9 characters (digits, 2A/2B prefix) with a Luhn check",
        ),
    }
    for key in raw:
        if key not in rules:
            out.append(FieldViolation(f"subject.{key}", "unknown field"))
    for name, (valid, rule) in rules.items():
        value = raw.get(name)
        if value is None or value == "":
            subject[name] = None
        elif not isinstance(value, str) or not valid(value):
            out.append(FieldViolation(f"subject.{name}", rule))
        else:
            subject[name] = value
    if all(raw.get(n) in (None, "") for n in rules):
        out.append(
            FieldViolation(
                "subject",
                "at least one of beneficiary_token, provider_rpps, "
                "provider_am_number, provider_finess is required",
            )
        )
    return subject


def _check_free_text(name: str, value: str, max_chars: int, out: list[FieldViolation]) -> None:
    if not 1 <= len(value) <= max_chars:
        out.append(FieldViolation(name, f"must be 1..{max_chars} characters"))
    elif not value.strip():
        out.append(FieldViolation(name, "must not be blank"))
    elif _CONTROL.search(value):
        out.append(FieldViolation(name, "must not contain control characters"))
    elif contains_nir(value):
        out.append(FieldViolation(name, "must not contain a NIR (send the beneficiary token)"))


def _check_acts(
    sector: str | None, values: Mapping[str, Any], out: list[FieldViolation]
) -> dict[str, list[str]]:
    acts: dict[str, list[str]] = {}
    groups = _text_list(
        "act_grouping_codes", values.get("act_grouping_codes"), out, max_items=MAX_ACT_CODES
    )
    codes = _text_list("act_codes", values.get("act_codes"), out, max_items=MAX_ACT_CODES)
    if groups is not None:
        for i, g in enumerate(groups):
            if sector is not None and g not in GROUPING_CODES[sector]:
                out.append(
                    FieldViolation(
                        f"act_grouping_codes[{i}]",
                        "must be in the sector's closed list of grouping codes",
                    )
                )
        acts["act_grouping_codes"] = list(dict.fromkeys(groups))
    if codes is not None:
        for i, c in enumerate(codes):
            if sector == "dentaire":
                ok, rule = is_ccam_code(c), "must be a CCAM code (4 uppercase letters, 3 digits)"
            else:
                ok = is_valid_lpp(c) or (sector == "audio" and c == FOLLOW_UP_ACT_CODE)
                rule = "must be a 7-digit LPP code (or SUI in audio)"
            if sector is not None and not ok:
                out.append(FieldViolation(f"act_codes[{i}]", rule))
        acts["act_codes"] = list(dict.fromkeys(codes))
    return acts


def check_case_reference(value: object, field: str = "case_reference") -> str:
    """Check a member's own case reference (1..64 of ``[A-Za-z0-9._:/-]``, never a NIR).

    Returns:
        The reference, unchanged.

    Raises:
        InvalidArgumentError: the reference breaks the rule (field ``field``).
    """
    if not isinstance(value, str) or not _CASE_REFERENCE.fullmatch(value):
        raise InvalidArgumentError.for_field(field, "must be 1..64 characters of [A-Za-z0-9._:/-]")
    if contains_nir(value):
        raise InvalidArgumentError.for_field(field, "must not contain a NIR")
    return value


_DRAFT_FIELDS: Final = frozenset(SuspicionDraft.model_fields)


def parse_suspicion_draft(values: Mapping[str, Any]) -> SuspicionDraft:
    """Validate a submitted suspicion and build the :class:`SuspicionDraft`.

    Args:
        values: field name -> value, as read from the proto message (``subject`` is a nested
            mapping; empty strings of optional subject fields mean "absent").

    Returns:
        The validated, frozen draft.

    Raises:
        InvalidArgumentError: one :class:`~gateway.errors.FieldViolation` per bad field
            (``facts_summary``, ``subject.provider_rpps``, ``evidence_refs[2]``...), naming the
            rule, never the value.
    """
    out: list[FieldViolation] = []
    for key in values:
        if key not in _DRAFT_FIELDS:
            out.append(FieldViolation(str(key), "unknown field"))
    subject = _check_subject(values.get("subject"), out)
    sector = values.get("sector")
    if sector not in SECTORS:
        out.append(FieldViolation("sector", "must be one of optique, audio, dentaire"))
        sector = None
    if values.get("fraud_type") not in FRAUD_TYPES:
        out.append(FieldViolation("fraud_type", "must be one of the closed list of fraud types"))
    facts = values.get("facts_summary")
    if not isinstance(facts, str):
        out.append(FieldViolation("facts_summary", "required: a string"))
    else:
        _check_free_text("facts_summary", facts, MAX_FACTS_CHARS, out)
    amount = values.get("estimated_amount_cents")
    if isinstance(amount, bool) or not isinstance(amount, int):
        out.append(FieldViolation("estimated_amount_cents", "required: an integer of cents"))
    elif not 0 <= amount <= MAX_ESTIMATED_AMOUNT_CENTS:
        out.append(
            FieldViolation(
                "estimated_amount_cents", f"must be in 0..{MAX_ESTIMATED_AMOUNT_CENTS} cents"
            )
        )
    evidence = _text_list(
        "evidence_refs", values.get("evidence_refs"), out, max_items=MAX_EVIDENCE_REFS
    )
    for i, ref in enumerate(evidence or ()):
        _check_free_text(f"evidence_refs[{i}]", ref, MAX_EVIDENCE_REF_CHARS, out)
    case_reference = values.get("case_reference")
    if not isinstance(case_reference, str) or not _CASE_REFERENCE.fullmatch(case_reference):
        out.append(FieldViolation("case_reference", "must be 1..64 characters of [A-Za-z0-9._:/-]"))
    elif contains_nir(case_reference):
        out.append(FieldViolation("case_reference", "must not contain a NIR"))
    acts = _check_acts(sector if isinstance(sector, str) else None, values, out)
    if out:
        fields = ", ".join(dict.fromkeys(v.field for v in out))
        raise InvalidArgumentError(f"invalid suspicion: {fields}", out)
    return SuspicionDraft(
        subject=SuspicionSubject(**subject),
        sector=values["sector"],
        fraud_type=values["fraud_type"],
        facts_summary=values["facts_summary"],
        estimated_amount_cents=values["estimated_amount_cents"],
        evidence_refs=tuple(evidence or ()),
        case_reference=values["case_reference"],
        act_grouping_codes=tuple(acts.get("act_grouping_codes", ())),
        act_codes=tuple(acts.get("act_codes", ())),
    )


class Transition(BaseModel):
    """One lifecycle move: who (member, kind, certificate principal), when, why (sealed at rest)."""

    model_config = _FROZEN

    suspicion_id: str
    from_status: SuspicionStatus
    to_status: SuspicionStatus
    actor_member: str
    actor_kind: MemberKind
    reason: str | None
    at: datetime
    actor_principal: str = ""

    def __repr__(self) -> str:
        return (
            f"Transition({self.suspicion_id}: {self.from_status}->{self.to_status} "
            f"by {self.actor_member})"
        )


class Suspicion(BaseModel):
    """A stored suspicion. Free text stays sealed (``*_sealed``: ``Sealed.to_text()``).

    ``subject_beneficiary`` is the second-level pseudonym (never the first-level token). After
    clearance the payload fields are ``None``/empty and ``erased_at`` is set.
    """

    model_config = _FROZEN

    id: str
    submitter_member: str
    submitter_kind: MemberKind
    status: SuspicionStatus
    sector: Literal["optique", "audio", "dentaire"]
    fraud_type: FraudType
    subject_beneficiary: str | None
    subject_provider_rpps: str | None
    subject_provider_am_number: str | None
    subject_provider_finess: str | None
    facts_sealed: str | None
    evidence_sealed: str | None
    estimated_amount_cents: int
    case_reference: str | None
    act_grouping_codes: tuple[str, ...]
    act_codes: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    outcome: SuspicionStatus | None = None
    decided_at: datetime | None = None
    closed_at: datetime | None = None
    cleared_at: datetime | None = None
    erased_at: datetime | None = None

    def __repr__(self) -> str:
        return f"Suspicion({self.id}, {self.status}, {self.sector})"

    __str__ = __repr__

    def policy_attributes(self) -> dict[str, str | int]:
        """The resource attributes every bundle's Cedar schema declares for a ``Suspicion``."""
        return {
            "submitter_member": self.submitter_member,
            "submitter_kind": self.submitter_kind,
            "status": self.status,
            "sector": self.sector,
            "estimated_amount_cents": self.estimated_amount_cents,
        }


def transition(
    suspicion: Suspicion,
    to: str,
    actor_member: str,
    actor_kind: MemberKind,
    reason: str | None,
    now: datetime,
    *,
    actor_principal: str = "",
) -> tuple[Suspicion, Transition]:
    """Move ``suspicion`` to status ``to`` (the state machine only; the policy decides who).

    Steps:
    1. ``to`` must be a status and the move allowed by :data:`TRANSITIONS`;
    2. ``reason`` (optional free text) must be 1..1000 printable characters without a NIR;
    3. timestamps: ``decided_at`` and ``outcome`` when reaching confirmed, dismissed or
       cleared; ``cleared_at``
       when cleared, ``closed_at`` when closed.

    Returns:
        The moved suspicion and the transition record (who, when, why).

    Raises:
        InvalidArgumentError: ``to`` is not a status (field ``to_status``) or the reason is bad
            (field ``reason``).
        FailedPreconditionError: the move is not allowed from the current status (the message
            names both statuses).
    """
    if to not in TRANSITIONS:
        raise InvalidArgumentError.for_field("to_status", "must be a suspicion status")
    if to not in TRANSITIONS[suspicion.status]:
        raise FailedPreconditionError(
            f"illegal transition from {suspicion.status!r} to {to!r}",
            reason="ILLEGAL_TRANSITION",
        )
    if reason is not None:
        problems: list[FieldViolation] = []
        _check_free_text("reason", reason, MAX_REASON_CHARS, problems)
        if problems:
            raise InvalidArgumentError(f"invalid reason: {problems[0].description}", problems)
    changes: dict[str, Any] = {"status": to, "updated_at": now}
    if to in ("confirmed", "dismissed", "cleared"):
        changes["decided_at"] = now
        changes["outcome"] = to
    if to == "cleared":
        changes["cleared_at"] = now
    if to == "closed":
        changes["closed_at"] = now
    record = Transition(
        suspicion_id=suspicion.id,
        from_status=suspicion.status,
        to_status=to,  # checked against TRANSITIONS above
        actor_member=actor_member,
        actor_kind=actor_kind,
        reason=reason,
        at=now,
        actor_principal=actor_principal,
    )
    return suspicion.model_copy(update=changes), record

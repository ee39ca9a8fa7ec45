"""The one canonical byte encoding of a journal event (what the Merkle leaf and proofs cover).

Sign bytes, not objects (STYLE.md): an event is hashed as RFC 8785 JSON Canonicalization
Scheme (JCS) bytes of a fixed dictionary, never as protobuf or ``json.dumps`` output::

    leaf entry = JCS({"format": "vigie/journal-event/v1",
                      "seq", "event_id", "time", "member_id", "principal", "cert_fingerprint",
                      "method", "purpose", "decision", "rule_ids", "bundle_hash", "request_id",
                      "outcome", "record_count", "personal_commitment"})

Personal fields (record references, subject pseudonyms) are *not* in the leaf. The leaf holds
their salted commitment::

    personal_commitment = hex(SHA-256(salt || JCS({"format": "vigie/journal-personal/v1",
                                                    "record_refs", "subject_pseudonyms"})))

with a fresh 32-byte random salt per event. At the journal's retention expiry (6-12 months,
CNIL recommendation 2021-122) the salt and the fields are deleted: the commitment, and so every
proof, still verifies, while the deleted fields can no longer be recovered or confirmed by
guessing (the salt is gone). Until then, revealing (salt, fields) lets a verifier check them
against the signed journal with :func:`verify_personal`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

import rfc8785
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from gateway.errors import InvalidArgumentError
from gateway.journal._errors import CommitmentError

__all__ = [
    "EVENT_FORMAT",
    "PERSONAL_FORMAT",
    "SALT_SIZE",
    "JournalEvent",
    "PersonalFields",
    "commit_personal",
    "event_time",
    "leaf_entry",
    "verify_personal",
]

EVENT_FORMAT: Final = "vigie/journal-event/v1"
PERSONAL_FORMAT: Final = "vigie/journal-personal/v1"
SALT_SIZE: Final = 32
_MAX_SAFE_INT: Final = 2**53 - 1  # JCS numbers are IEEE 754 doubles (RFC 8785 §3.2.2.3)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX256 = re.compile(r"[0-9a-f]{64}")


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


StrTuple = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]
_SafeInt = Annotated[int, Field(ge=0, le=_MAX_SAFE_INT)]


def event_time(moment: datetime) -> str:
    """Format an aware datetime as the journal's RFC 3339 UTC time, microseconds, ``Z``.

    Raises:
        InvalidArgumentError: ``moment`` is naive (no time zone).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidArgumentError.for_field("time", "must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JournalEvent(BaseModel):
    """The non-personal fields of one access event: exactly what the leaf covers.

    Personal fields live in :class:`PersonalFields`, apart, so that retention can erase them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    seq: _SafeInt
    event_id: str
    time: str
    member_id: str
    principal: str
    cert_fingerprint: str
    method: str
    purpose: str
    decision: Literal["allow", "deny"]
    rule_ids: StrTuple
    bundle_hash: str
    request_id: str
    outcome: str
    record_count: _SafeInt

    @field_validator("event_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        if not _UUID.fullmatch(value):
            raise ValueError("must be a lower-case hyphenated UUID")
        return value

    @field_validator("time")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        if not _TIME.fullmatch(value):
            raise ValueError("must be RFC 3339 UTC with microseconds and 'Z'")
        # Month, day, hour... ranges (as strptime would check; the regex fixed the digits).
        datetime(
            int(value[0:4]), int(value[5:7]), int(value[8:10]),
            int(value[11:13]), int(value[14:16]), int(value[17:19]), int(value[20:26]),
        )  # fmt: skip
        return value


class PersonalFields(BaseModel):
    """The erasable personal fields of one event (CNIL recommendation 2021-122)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    record_refs: StrTuple = ()
    subject_pseudonyms: StrTuple = ()


def _plain(value: Any) -> bool:
    """A value whose RFC 8785 form is exactly what ``json.dumps`` writes (see :func:`_jcs`)."""
    kind = type(value)  # exact types: a subclass (an enum, a bool) takes the reference path
    if kind is str:
        return True
    if kind is int:
        return bool(0 <= value <= _MAX_SAFE_INT)
    return kind is list and all(type(v) is str for v in value)


def _jcs(obj: dict[str, Any], field: str) -> bytes:
    """RFC 8785 bytes of ``obj``.

    Fast path, for the shapes the journal hashes (ASCII keys; values strings, safe
    non-negative integers or lists of strings): RFC 8785 sorts keys by UTF-16 code units (for
    ASCII keys, Python's order), writes integers in decimal, and escapes strings as ECMAScript
    ``JSON.stringify`` does (RFC 8785 §3.2.2.2: ``\\"``, ``\\\\``, ``\\b \\f \\n \\r \\t``, other
    controls as lower-case ``\\u00xx``, everything else verbatim) -- which is exactly
    ``json.dumps(..., ensure_ascii=False)``; UTF-8 encoding refuses lone surrogates as RFC 8785
    does. ``tests/journal/test_journal_canonical.py`` checks both paths agree. Anything else
    goes through the reference implementation (``rfc8785``).
    """
    if all(k.isascii() and _plain(v) for k, v in obj.items()):
        try:
            text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            return text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidArgumentError.for_field(field, "not representable in RFC 8785 JSON") from e
    try:
        return rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError as e:
        raise InvalidArgumentError.for_field(field, "not representable in RFC 8785 JSON") from e


def _check_salt(salt: bytes) -> None:
    if not isinstance(salt, bytes) or len(salt) != SALT_SIZE:
        raise InvalidArgumentError.for_field("salt", f"must be {SALT_SIZE} bytes")


def commit_personal(fields: PersonalFields, salt: bytes) -> str:
    """Hex SHA-256 of ``salt || JCS(personal fields)``: what the leaf records of them.

    Raises:
        InvalidArgumentError: the salt is not 32 bytes, or a field is not valid Unicode.
    """
    _check_salt(salt)
    body = _jcs(
        {
            "format": PERSONAL_FORMAT,
            "record_refs": list(fields.record_refs),
            "subject_pseudonyms": list(fields.subject_pseudonyms),
        },
        "personal",
    )
    return hashlib.sha256(salt + body).hexdigest()


def verify_personal(fields: PersonalFields, salt: bytes, commitment: str) -> None:
    """Check revealed personal fields and salt against an event's commitment.

    Raises:
        CommitmentError: they do not open the commitment (altered fields, salt or commitment).
    """
    if len(salt) != SALT_SIZE:
        raise CommitmentError(f"personal fields: salt must be {SALT_SIZE} bytes")
    if not hmac.compare_digest(commit_personal(fields, salt), commitment):
        raise CommitmentError("personal fields do not match their commitment")


def leaf_entry(event: JournalEvent, commitment: str) -> bytes:
    """The canonical bytes of ``event`` with its personal commitment (the Merkle leaf entry).

    Raises:
        InvalidArgumentError: the commitment is not 64 lower-case hex characters, or a field
            is not valid Unicode.
    """
    if not isinstance(commitment, str) or not _HEX256.fullmatch(commitment):
        raise InvalidArgumentError.for_field("personal_commitment", "must be 64 lower-case hex")
    body: dict[str, Any] = {"format": EVENT_FORMAT, **event.model_dump(mode="python")}
    body["rule_ids"] = list(event.rule_ids)
    body["personal_commitment"] = commitment
    return _jcs(body, "event")

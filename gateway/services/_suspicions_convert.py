"""Protobuf <-> domain for SuspicionService. Generated types stop here (and in the servicer).

Outgoing suspicions are built only from the minimised field dict the domain returns (fields of
the policy decision's view); each proto field comes from one view field, so a field outside the
view can never be set:

=================================  ===============================================
proto field                        view field it comes from
=================================  ===============================================
``name``                           ``id``
``subject.beneficiary_concerned``  ``subject_beneficiary`` (the pseudonym itself never leaves)
``subject.provider_*``             ``subject_provider_*``
``sector``, ``fraud_type``,        the fields of the same name
``status``, ``facts_summary``,
``estimated_amount_cents``,
``evidence_refs``
``alert_level``                    ``estimated_amount_cents`` (derived from it)
``case_reference``                 ``own_reference`` (the reader's own, never another's)
``related_claim_references``       ``own_reference`` (the reader's own claim lines)
``submitter``                      ``submitter_member``
``status_history``                 ``transitions``
``create_time``, ``update_time``   ``created_at``, ``updated_at``
``expire_time``                    ``status`` (derived from the lifecycle dates)
``minimisation_view``              always: the view's name (no record data)
=================================  ===============================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from google.protobuf import json_format, timestamp_pb2

from gateway._proto.vigie.v1 import claims_pb2, common_pb2, suspicions_pb2
from gateway.domain.suspicions import (
    ALERT_LEVEL_ORDER,
    FRAUD_TYPES,
    SUSPICION_STATUSES,
    Notification,
    SuspicionDraft,
    parse_suspicion_draft,
)
from gateway.errors import FieldViolation, InvalidArgumentError, NotFoundError
from gateway.services._convert import sector_from_pb, sector_to_pb

__all__ = [
    "STATUS_PB",
    "alert_from_payload",
    "draft_from_pb",
    "interval_from_pb",
    "level_filter",
    "level_from_pb",
    "level_rank",
    "notification_to_pb",
    "parse_notification_name",
    "parse_suspicion_name",
    "sector_filter",
    "status_filter",
    "status_from_pb",
    "suspicion_name",
    "suspicion_not_found",
    "suspicion_to_pb",
    "timestamp",
]

_SUSPICION_NAME: Final = re.compile(r"suspicions/(s_[a-z2-7]{26})")
_NOTIFICATION_NAME: Final = re.compile(
    r"members/([A-Za-z0-9._-]{1,64})/notifications/([0-9]{1,18})"
)
STATUS_PB: Final[dict[str, suspicions_pb2.SuspicionStatus]] = {
    s: getattr(suspicions_pb2, f"SUSPICION_STATUS_{s.upper()}") for s in SUSPICION_STATUSES
}
_FRAUD_PB: Final[dict[str, common_pb2.FraudType]] = {
    f: getattr(common_pb2, f"FRAUD_TYPE_{f.upper()}") for f in FRAUD_TYPES
}
_LEVEL_PB: Final[dict[str, common_pb2.AlertLevel]] = {
    lv: getattr(common_pb2, f"ALERT_LEVEL_{lv.upper()}") for lv in ALERT_LEVEL_ORDER
}
_KIND_PB: Final = {
    "SHARED": suspicions_pb2.NOTIFICATION_KIND_SHARED,
    "RETRACTED": suspicions_pb2.NOTIFICATION_KIND_RETRACTED,
    "ALERT": suspicions_pb2.NOTIFICATION_KIND_ALERT,
}


def _reverse(table: Mapping[str, int], value: int) -> str | None:
    return next((k for k, v in table.items() if v == value), None)


def suspicion_not_found() -> NotFoundError:
    """The one answer for "no such suspicion" and "not yours to see" (same status, same words)."""
    return NotFoundError("suspicion not found", reason="NOT_FOUND")


def suspicion_name(suspicion_id: str) -> str:
    return f"suspicions/{suspicion_id}"


def parse_suspicion_name(name: str, field: str = "name") -> str:
    """The suspicion id in ``suspicions/{suspicion}``.

    Raises:
        InvalidArgumentError: not a suspicion resource name.
    """
    m = _SUSPICION_NAME.fullmatch(name)
    if m is None:
        raise InvalidArgumentError.for_field(field, "must be suspicions/{suspicion}")
    return m.group(1)


def parse_notification_name(name: str, member_id: str) -> int:
    """The sequence in ``members/{member}/notifications/{sequence}`` of the caller's own feed.

    Raises:
        InvalidArgumentError: not a notification resource name.
        NotFoundError: another member's feed (its notifications do not exist for the caller).
    """
    m = _NOTIFICATION_NAME.fullmatch(name)
    if m is None or int(m.group(2)) < 1:
        raise InvalidArgumentError.for_field(
            "name", "must be members/{member}/notifications/{sequence}"
        )
    if m.group(1) != member_id:
        raise NotFoundError("notification not found", reason="NOT_FOUND")
    return int(m.group(2))


def status_from_pb(value: int) -> str | None:
    """Domain status of a ``SuspicionStatus`` (``None`` for UNSPECIFIED or an unknown number)."""
    return _reverse(STATUS_PB, value)


def level_from_pb(value: int) -> str | None:
    """Domain alert level of an ``AlertLevel`` (``None`` for UNSPECIFIED or unknown)."""
    return _reverse(_LEVEL_PB, value)


def _filter(value: int, table: Mapping[str, int], field: str) -> str | None:
    if value == 0:
        return None  # UNSPECIFIED: no filter
    found = _reverse(table, value)
    if found is None:
        raise InvalidArgumentError.for_field(field, "unknown enum value")
    return found


def sector_filter(value: int) -> str | None:
    """A list filter's sector (``None``: any).

    Raises:
        InvalidArgumentError: an unknown enum number (field ``sector``).
    """
    if value == 0:
        return None
    sector = sector_from_pb(value)
    if sector is None:
        raise InvalidArgumentError.for_field("sector", "unknown enum value")
    return sector


def status_filter(value: int) -> str | None:
    """A list filter's status (``None``: any).

    Raises:
        InvalidArgumentError: an unknown enum number (field ``status``).
    """
    return _filter(value, STATUS_PB, "status")


def level_filter(value: int) -> str | None:
    """A list filter's minimum alert level (``None``: any).

    Raises:
        InvalidArgumentError: an unknown enum number (field ``minimum_alert_level``).
    """
    return _filter(value, _LEVEL_PB, "minimum_alert_level")


def level_rank(level: str) -> int:
    return ALERT_LEVEL_ORDER.index(level)


def timestamp(moment: datetime | str | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment.astimezone(UTC))
    return ts


def _moment(ts: timestamp_pb2.Timestamp, field: str, out: list[FieldViolation]) -> datetime | None:
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        out.append(FieldViolation(field, "must be a valid timestamp"))
        return None


def interval_from_pb(request: Any) -> tuple[datetime | None, datetime | None]:
    """``create_time_range`` as (start inclusive, end exclusive); either may be unset.

    Raises:
        InvalidArgumentError: an invalid timestamp, or an end not after the start.
    """
    if not request.HasField("create_time_range"):
        return None, None
    interval = request.create_time_range
    out: list[FieldViolation] = []
    start = (
        _moment(interval.start_time, "create_time_range.start_time", out)
        if interval.HasField("start_time")
        else None
    )
    end = (
        _moment(interval.end_time, "create_time_range.end_time", out)
        if interval.HasField("end_time")
        else None
    )
    if start is not None and end is not None and end <= start:
        out.append(FieldViolation("create_time_range", "end_time must be after start_time"))
    if out:
        raise InvalidArgumentError("invalid create_time_range", out)
    return start, end


def draft_from_pb(request: Any) -> SuspicionDraft:
    """Validate ``CreateSuspicionRequest.suspicion`` into a draft (output-only fields ignored).

    Raises:
        InvalidArgumentError: every bad field, as a path from the request
            (``suspicion.subject.provider_rpps``, ``suspicion.evidence_refs[2]``...).
    """
    if not request.HasField("suspicion"):
        raise InvalidArgumentError.for_field("suspicion", "required")
    s = request.suspicion
    subject = s.subject
    values: dict[str, Any] = {
        "subject": {
            "beneficiary_token": subject.beneficiary_token,
            "provider_rpps": subject.provider_rpps,
            "provider_am_number": subject.provider_am_number,
            "provider_finess": subject.provider_finess,
        },
        "sector": sector_from_pb(s.sector),
        "fraud_type": _reverse(_FRAUD_PB, s.fraud_type),
        "facts_summary": s.facts_summary,
        "estimated_amount_cents": s.estimated_amount_cents,
        "evidence_refs": list(s.evidence_refs),
        "case_reference": s.case_reference,
    }
    try:
        return parse_suspicion_draft(values)
    except InvalidArgumentError as e:
        violations = [FieldViolation(f"suspicion.{v.field}", v.description) for v in e.violations]
        fields = ", ".join(dict.fromkeys(v.field for v in violations))
        raise InvalidArgumentError(f"invalid suspicion: {fields}", violations) from None


def _status_change(t: Mapping[str, Any]) -> suspicions_pb2.StatusChange:
    actor = t.get("actor_member")
    return suspicions_pb2.StatusChange(
        status=STATUS_PB[t["to_status"]],
        change_time=timestamp(t["at"]),
        member=f"members/{actor}" if actor else "",
        principal=t.get("actor_principal") or "",
        reason=t.get("reason") or "",
    )


def suspicion_to_pb(
    fields: Mapping[str, Any],
    *,
    view_name: str,
    alert_level: str | None = None,
    expire_time: datetime | None = None,
    related_claim_references: Sequence[str] = (),
) -> suspicions_pb2.Suspicion:
    """A Suspicion message from a minimised field dict (see the table in the module docstring).

    ``alert_level``, ``expire_time`` and ``related_claim_references`` are set only when the
    view field they derive from is in ``fields``.
    """
    out = suspicions_pb2.Suspicion(minimisation_view=view_name)
    if "id" in fields:
        out.name = suspicion_name(fields["id"])
    if fields.get("status") in STATUS_PB:
        out.status = STATUS_PB[fields["status"]]
        expires = timestamp(expire_time)
        if expires is not None:
            out.expire_time.CopyFrom(expires)
    if fields.get("sector"):
        out.sector = sector_to_pb(fields["sector"])
    if fields.get("fraud_type") in _FRAUD_PB:
        out.fraud_type = _FRAUD_PB[fields["fraud_type"]]
    if fields.get("subject_beneficiary"):
        out.subject.beneficiary_concerned = True
    for name in ("provider_rpps", "provider_am_number", "provider_finess"):
        value = fields.get(f"subject_{name}")
        if value:
            setattr(out.subject, name, value)
    if fields.get("facts_summary"):
        out.facts_summary = fields["facts_summary"]
    if "estimated_amount_cents" in fields:
        out.estimated_amount_cents = int(fields["estimated_amount_cents"])
        if alert_level is not None:
            out.alert_level = _LEVEL_PB[alert_level]
    out.evidence_refs.extend(fields.get("evidence_refs") or ())
    if "own_reference" in fields:
        out.case_reference = fields["own_reference"] or ""
        out.related_claim_references.extend(related_claim_references)
    if fields.get("submitter_member"):
        out.submitter = f"members/{fields['submitter_member']}"
    out.status_history.extend(_status_change(t) for t in fields.get("transitions") or ())
    for field, key in (("create_time", "created_at"), ("update_time", "updated_at")):
        ts = timestamp(fields.get(key))
        if ts is not None:
            getattr(out, field).CopyFrom(ts)
    return out


def alert_from_payload(payload: Mapping[str, Any]) -> claims_pb2.Alert:
    """The ``vigie.v1.Alert`` an ALERT notification carries (the claims service's contract).

    The payload is ``json_format.MessageToDict(alert, preserving_proto_field_name=True)`` of
    an already minimised alert.

    Raises:
        json_format.ParseError: the payload is not such a dict (a bug of the enqueuer).
    """
    return json_format.ParseDict(dict(payload), claims_pb2.Alert())


def notification_to_pb(
    n: Notification,
    *,
    suspicion: suspicions_pb2.Suspicion | None = None,
    alert: claims_pb2.Alert | None = None,
) -> suspicions_pb2.Notification:
    """A feed entry; the payload (suspicion or alert) is already minimised by the caller."""
    out = suspicions_pb2.Notification(
        name=f"members/{n.member_id}/notifications/{n.sequence}",
        sequence=n.sequence,
        kind=_KIND_PB[n.kind],
        create_time=timestamp(n.created_at),
    )
    acknowledged = timestamp(n.acknowledged_at)
    if acknowledged is not None:
        out.acknowledge_time.CopyFrom(acknowledged)
    if suspicion is not None:
        out.suspicion.CopyFrom(suspicion)
    elif alert is not None:
        out.alert.CopyFrom(alert)
    return out

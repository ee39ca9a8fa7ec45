"""The API's enums from the domain's words: ``"control"`` -> ``PURPOSE_CONTROL``.

Enum values map to domain strings by dropping the prefix and lower-casing (common.proto), so
callers may write ``purpose="control"``, ``sector="optique"``, ``status="qualified"`` or pass the
generated enum value itself. An unknown word is a :class:`LocalValidationError` (nothing sent).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, cast

from google.protobuf import timestamp_pb2
from google.type import interval_pb2  # type: ignore[import-untyped]  # no stubs shipped

from gateway._proto.vigie.v1 import common_pb2, suspicions_pb2
from gateway.client._errors import FieldViolation, LocalValidationError

__all__ = [
    "PurposeName",
    "access_decision",
    "alert_level",
    "fraud_type",
    "interval",
    "member_kind",
    "purpose",
    "sector",
    "suspicion_status",
]

PurposeName = Literal[
    "fraud_detection",
    "control",
    "complaint",
    "litigation",
    "audit",
    "data_subject_request",
    "operations",
]


def _value(enum: Any, prefix: str, field: str, value: str | int | None, *, upper: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        if value in enum.values():
            return value
    elif isinstance(value, str) and value:
        right_case = value == (value.upper() if upper else value.lower())
        name = f"{prefix}{value.upper()}"
        if right_case and name in enum.keys() and not name.endswith("_UNSPECIFIED"):
            number: int = enum.Value(name)
            return number
    choices = ", ".join(
        n.removeprefix(prefix) if upper else n.removeprefix(prefix).lower()
        for n in enum.keys()
        if not n.endswith("_UNSPECIFIED")
    )
    raise LocalValidationError(
        f"invalid {field}: must be one of {choices} (not sent)",
        field_violations=[FieldViolation(field, f"must be one of {choices}")],
    )


def purpose(value: PurposeName | str | int) -> common_pb2.Purpose:
    """``PURPOSE_*`` from ``"control"`` etc. (required: there is no default purpose)."""
    return cast(
        common_pb2.Purpose, _value(common_pb2.Purpose, "PURPOSE_", "purpose", value, upper=False)
    )


def sector(value: str | int | None) -> common_pb2.Sector:
    """``SECTOR_*`` from ``"optique"``, ``"audio"``, ``"dentaire"``; ``None`` means any."""
    return cast(
        common_pb2.Sector, _value(common_pb2.Sector, "SECTOR_", "sector", value, upper=False)
    )


def alert_level(value: str | int | None) -> common_pb2.AlertLevel:
    """``ALERT_LEVEL_*`` from ``"none"``, ``"low"``, ``"medium"``, ``"high"``."""
    level = _value(common_pb2.AlertLevel, "ALERT_LEVEL_", "alert_level", value, upper=False)
    return cast(common_pb2.AlertLevel, level)


def fraud_type(value: str | int | None) -> common_pb2.FraudType:
    """``FRAUD_TYPE_*`` from ``"early_renewal"`` etc."""
    kind = _value(common_pb2.FraudType, "FRAUD_TYPE_", "fraud_type", value, upper=False)
    return cast(common_pb2.FraudType, kind)


def member_kind(value: str | int | None) -> common_pb2.MemberKind:
    """``MEMBER_KIND_*`` from ``"AMO"`` or ``"AMC"`` (upper case, as in the domain)."""
    kind = _value(common_pb2.MemberKind, "MEMBER_KIND_", "kind", value, upper=True)
    return cast(common_pb2.MemberKind, kind)


def suspicion_status(value: str | int | None) -> suspicions_pb2.SuspicionStatus:
    """``SUSPICION_STATUS_*`` from ``"qualified"``, ``"dismissed"`` etc."""
    status = _value(
        suspicions_pb2.SuspicionStatus, "SUSPICION_STATUS_", "status", value, upper=False
    )
    return cast(suspicions_pb2.SuspicionStatus, status)


def access_decision(value: str | int | None) -> common_pb2.AccessDecision:
    """``ACCESS_DECISION_*`` from ``"allow"`` or ``"deny"``."""
    decision = _value(common_pb2.AccessDecision, "ACCESS_DECISION_", "decision", value, upper=False)
    return cast(common_pb2.AccessDecision, decision)


def _timestamp(moment: dt.datetime, field: str) -> timestamp_pb2.Timestamp:
    if moment.tzinfo is None:
        raise LocalValidationError(
            f"invalid {field}: must be timezone-aware (not sent)",
            field_violations=[FieldViolation(field, "must be timezone-aware")],
        )
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment.astimezone(dt.UTC))
    return ts


def interval(
    start: dt.datetime | None, end: dt.datetime | None, field: str
) -> interval_pb2.Interval | None:
    """A ``google.type.Interval`` (start inclusive, end exclusive), or ``None`` if both unset."""
    if start is None and end is None:
        return None
    out = interval_pb2.Interval()
    if start is not None:
        out.start_time.CopyFrom(_timestamp(start, f"{field}.start_time"))
    if end is not None:
        out.end_time.CopyFrom(_timestamp(end, f"{field}.end_time"))
    return out

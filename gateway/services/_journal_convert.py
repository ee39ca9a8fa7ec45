"""JournalService protobuf <-> the journal's domain types (generated types stop here).

Requests become :class:`~gateway.journal.queries.EventFilter` (frozen, strict pydantic) or
checked integers; every refusal names the request field. Events go out through the caller's
minimisation view (policy bundle ``views.journal_event``): a field outside the view is left
unset, never sent. View names and the fields they release::

    seq                      name, event_id, sequence
    timestamp                event_time
    actor_member             member
    principal                principal
    certificate_fingerprint  certificate_fingerprint
    action                   method
    purpose                  purpose
    decision                 decision
    rule_ids                 rule_ids
    bundle_hash              bundle_hash
    request_id               request_id
    outcome                  outcome
    record_count             record_count
    record_refs              record_refs, personal_fields_erased
    leaf_hash                leaf_index, canonical_entry (the exact bytes of the leaf)

(``actor_kind``, ``legal_refs`` and ``recipients`` have no AccessEvent field.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from google.protobuf import timestamp_pb2
from pydantic import ValidationError

from gateway._proto.vigie.v1 import (
    claims_pb2,
    common_pb2,
    journal_pb2,
    members_pb2,
    suspicions_pb2,
)
from gateway.errors import InvalidArgumentError
from gateway.journal import leaf_entry
from gateway.journal.queries import EventFilter, JournalRecord, StoredCheckpoint

__all__ = [
    "checkpoint_to_pb",
    "event_to_pb",
    "list_filter_from_pb",
    "method_path",
    "time_range_from_pb",
]

_MEMBER_PREFIX: Final = "members/"
_DECISIONS: Final[Mapping[int, str]] = {
    common_pb2.ACCESS_DECISION_ALLOW: "allow",
    common_pb2.ACCESS_DECISION_DENY: "deny",
}
_DECISION_PB: Final[Mapping[str, int]] = {v: k for k, v in _DECISIONS.items()}


def _method_paths() -> dict[str, str]:
    """Action name (``GetSuspicion``) -> journaled gRPC path, from the API's descriptors."""
    out: dict[str, str] = {}
    for module in (members_pb2, suspicions_pb2, claims_pb2, journal_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                out[method.name] = f"/{service.full_name}/{method.name}"
    return out


_METHOD_PATHS: Final = _method_paths()


def method_path(method: str) -> str:
    """What the journal stores for a method filter: the gRPC path of an API action name;
    anything else (a full path, ``journal.erase``) is matched as given."""
    return _METHOD_PATHS.get(method, method)


def _method_name(stored: str) -> str:
    return stored.rsplit("/", 1)[-1] if stored.startswith("/") else stored


def _purpose_from_pb(value: int, field: str) -> str | None:
    descriptor = common_pb2.Purpose.DESCRIPTOR.values_by_number.get(value)
    if descriptor is None:
        raise InvalidArgumentError.for_field(field, "not a known purpose")
    if value == common_pb2.PURPOSE_UNSPECIFIED:
        return None
    return str(descriptor.name).removeprefix("PURPOSE_").lower()


def _purpose_to_pb(purpose: str) -> int:
    name = f"PURPOSE_{purpose.upper()}"
    values = common_pb2.Purpose.DESCRIPTOR.values_by_name
    return int(values[name].number) if purpose and name in values else 0


def _timestamp(value: timestamp_pb2.Timestamp, field: str) -> datetime:
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgumentError.for_field(field, "not a valid timestamp") from None


def time_range_from_pb(
    request: Any, field: str = "event_time_range"
) -> tuple[datetime | None, datetime | None]:
    """``(since, until)`` from a ``google.type.Interval`` field (start inclusive, end
    exclusive); an unset field or bound is None (no bound).

    Raises:
        InvalidArgumentError: a bound is not a valid timestamp, or end is before start.
    """
    if not request.HasField(field):
        return None, None
    interval = getattr(request, field)
    since = until = None
    if interval.HasField("start_time"):
        since = _timestamp(interval.start_time, f"{field}.start_time")
    if interval.HasField("end_time"):
        until = _timestamp(interval.end_time, f"{field}.end_time")
    if since is not None and until is not None and until < since:
        raise InvalidArgumentError.for_field(f"{field}.end_time", "must not be before start_time")
    return since, until


def list_filter_from_pb(request: journal_pb2.ListAccessEventsRequest) -> EventFilter:
    """The :class:`EventFilter` of a ``ListAccessEventsRequest`` (filters combine with AND).

    Raises:
        InvalidArgumentError: naming the bad field (member name, enum value, rule id, range).
    """
    values: dict[str, Any] = {}
    if request.member:
        member_id = request.member.removeprefix(_MEMBER_PREFIX)
        if not request.member.startswith(_MEMBER_PREFIX) or not member_id or "/" in member_id:
            raise InvalidArgumentError.for_field("member", "must be members/{member}")
        values["member_id"] = member_id
    if request.principal:
        values["principal"] = request.principal
    if request.method:
        values["method"] = method_path(request.method)
    purpose = _purpose_from_pb(request.event_purpose, "event_purpose")
    if purpose is not None:
        values["purpose"] = purpose
    if request.decision:
        if request.decision not in _DECISIONS:
            raise InvalidArgumentError.for_field("decision", "not a known decision")
        values["decision"] = _DECISIONS[request.decision]
    if request.rule_id:
        values["rule_id"] = request.rule_id
    since, until = time_range_from_pb(request)
    if since is not None:
        values["since"] = since
    if until is not None:
        values["until"] = until
    try:
        return EventFilter(**values)
    except ValidationError as e:
        first = e.errors(include_input=False, include_url=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "filter"
        raise InvalidArgumentError.for_field(field, str(first["msg"])) from None


def event_to_pb(record: JournalRecord, view: frozenset[str]) -> journal_pb2.AccessEvent:
    """One journaled event as the caller may see it (fields outside ``view`` stay unset)."""
    e = record.event
    out = journal_pb2.AccessEvent()
    if "seq" in view:
        out.name = f"journal/events/{e.event_id}"
        out.event_id = e.event_id
        out.sequence = record.seq
    if "timestamp" in view:
        out.event_time.FromDatetime(datetime.fromisoformat(e.time.replace("Z", "+00:00")))
    if "actor_member" in view and e.member_id:
        out.member = f"{_MEMBER_PREFIX}{e.member_id}"
    if "principal" in view:
        out.principal = e.principal
    if "certificate_fingerprint" in view:
        out.certificate_fingerprint = e.cert_fingerprint
    if "action" in view:
        out.method = _method_name(e.method)
    if "purpose" in view:
        out.purpose = _purpose_to_pb(e.purpose)  # type: ignore[assignment]  # enum int
    if "decision" in view:
        out.decision = _DECISION_PB[e.decision]  # type: ignore[assignment]  # enum int
    if "rule_ids" in view:
        out.rule_ids.extend(e.rule_ids)
    if "bundle_hash" in view:
        out.bundle_hash = e.bundle_hash
    if "request_id" in view:
        out.request_id = e.request_id
    if "outcome" in view:
        out.outcome = e.outcome
    if "record_count" in view:
        out.record_count = e.record_count
    if "record_refs" in view:
        out.personal_fields_erased = record.personal is None
        if record.personal is not None:
            out.record_refs.extend(record.personal.record_refs)
    if "leaf_hash" in view:
        if record.leaf_index is not None:
            out.leaf_index = record.leaf_index
        out.canonical_entry = leaf_entry(e, record.personal_commitment)
    return out


def checkpoint_to_pb(stored: StoredCheckpoint) -> journal_pb2.Checkpoint:
    """The signed note verbatim, and its parsed fields."""
    out = journal_pb2.Checkpoint(
        signed_note=stored.note.decode("utf-8"),
        origin=stored.checkpoint.origin,
        tree_size=stored.size,
        root_hash=bytes(stored.checkpoint.root_hash),
    )
    out.create_time.FromDatetime(stored.created_at)
    return out

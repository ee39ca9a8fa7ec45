"""The journal's read side for compliance officers: events, "who looked at my data?", proofs.

- :func:`list_events`: paginated events (AIP-158 opaque page tokens, stable order by ``seq``)
  filtered by member, principal, method, purpose, decision, rule id, time range, pseudonyms.
- :func:`by_person`: every event whose personal fields name one of the given pseudonyms. The
  caller (the gateway) turns a person's first-level token into stored pseudonyms with every key
  version (``Rekeyer.rekey_all_versions``); no NIR ever reaches this module.
- :func:`latest_checkpoint`, :func:`inclusion_proof`, :func:`consistency_proof`: proof serving
  over the stored tree, O(log n) node reads.
- :func:`export_bundle`: a self-contained ``vigie/journal-bundle/v1`` document for
  ``vigie audit verify``.

Portable JSON matching (SQLite and PostgreSQL): pseudonyms go through the ``journal_subjects``
side table that a database trigger fills from ``journal_personal`` (an indexed equality lookup,
erased with the personal fields); a rule id is matched as the quoted JSON string inside the
serialised ``rule_ids`` array with ``LIKE ... ESCAPE``, and rule ids holding a quote, a
backslash or a control character are refused, so that match is exact.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator
from sqlalchemy import Select, Text, cast, select
from sqlalchemy.orm import Session

from gateway.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from gateway.journal._canonical import JournalEvent, PersonalFields, leaf_entry
from gateway.journal._export import ExportEvent, WithheldLeaf, build_bundle
from gateway.journal._merkle import leaf_hash
from gateway.journal._sql import (
    JournalNodeRow,
    JournalSubjectRow,
    SqlNodeStore,
    StoredCheckpoint,
    checkpoint_at,
    consistency_proof,
    inclusion_proof,
    integrated_size,
    journal_event_of,
    latest_checkpoint,
    personal_of,
)
from gateway.journal._tree import MerkleTree, NodeId
from gateway.store._models import JournalEventRow, JournalPersonalRow

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Disclose",
    "Disclosure",
    "EventFilter",
    "EventPage",
    "JournalRecord",
    "StoredCheckpoint",
    "by_person",
    "checkpoint_at",
    "consistency_proof",
    "events_after",
    "export_bundle",
    "inclusion_proof",
    "latest_checkpoint",
    "leaf_index_of",
    "list_events",
]

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
_TOKEN_VERSION: Final = 1
_Sel = TypeVar("_Sel", bound="Select[*tuple[Any, ...]]")
_BAD_RULE_CHARS = re.compile(r'["\\\x00-\x1f]')
_DISCLOSE_CHUNK: Final = 500

Disclosure = Literal["withheld", "event", "personal"]
"""What an export shows of one event: its leaf hash only, the event, or also its personal
fields (with their salt)."""
Disclose = Callable[[Sequence["JournalRecord"]], Sequence[Disclosure]]
"""Decides, for a batch of records (personal fields read), what the reader may see of each."""


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class EventFilter(BaseModel):
    """Which events to list; every field set narrows the result (AND)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    member_id: str | None = None
    principal: str | None = None
    method: str | None = None
    purpose: str | None = None
    decision: Literal["allow", "deny"] | None = None
    rule_id: str | None = None
    since: datetime | None = None
    """Inclusive lower bound on the event time."""
    until: datetime | None = None
    """Exclusive upper bound on the event time."""
    pseudonyms: Annotated[tuple[str, ...] | None, BeforeValidator(_as_tuple)] = None
    """Events naming any of these pseudonyms; an empty tuple matches nothing."""

    @field_validator("rule_id")
    @classmethod
    def _plain_rule_id(cls, value: str | None) -> str | None:
        if value is not None and _BAD_RULE_CHARS.search(value):
            raise ValueError("must not hold quotes, backslashes or control characters")
        return value

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("must be timezone-aware")
        return value

    def digest(self) -> str:
        """A short fingerprint of the filter, bound into page tokens."""
        body = self.model_dump_json().encode("utf-8")
        return hashlib.sha256(body).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journaled event as stored: its leaf (once integrated) and its personal fields."""

    seq: int
    leaf_index: int | None
    event: JournalEvent
    personal_commitment: str
    personal: PersonalFields | None
    """None once retention erased them, or when the caller asked not to read them."""
    salt: bytes | None


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of events and the token of the next one ("" on the last page)."""

    records: list[JournalRecord]
    next_page_token: str


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(stmt: _Sel, f: EventFilter) -> _Sel:
    e = JournalEventRow
    for column, value in (
        (e.member_id, f.member_id),
        (e.principal, f.principal),
        (e.method, f.method),
        (e.purpose, f.purpose),
        (e.decision, f.decision),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if f.rule_id is not None:
        # The element as JSON writes it, quotes included: an exact element match.
        pattern = f"%{_escape_like(json.dumps(f.rule_id))}%"
        stmt = stmt.where(cast(e.rule_ids, Text).like(pattern, escape="\\"))
    if f.since is not None:
        stmt = stmt.where(e.time >= f.since)
    if f.until is not None:
        stmt = stmt.where(e.time < f.until)
    if f.pseudonyms is not None:
        subjects = select(JournalSubjectRow.seq).where(
            JournalSubjectRow.pseudonym.in_(sorted(set(f.pseudonyms)))
        )
        stmt = stmt.where(e.seq.in_(subjects))
    return stmt


def _record(
    row: JournalEventRow, personal: JournalPersonalRow | None, reveal: bool
) -> JournalRecord:
    fields, salt = personal_of(personal) if personal is not None and reveal else (None, None)
    return JournalRecord(
        seq=row.seq,
        leaf_index=row.leaf_index,
        event=journal_event_of(row),
        personal_commitment=row.personal_commitment,
        personal=fields,
        salt=salt,
    )


def _encode_token(after: int, f: EventFilter) -> str:
    raw = json.dumps({"v": _TOKEN_VERSION, "after": after, "f": f.digest()}).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_token(token: str, f: EventFilter) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        after = body["after"]
        valid = body["v"] == _TOKEN_VERSION and isinstance(after, int) and after >= 0
    except (binascii.Error, ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise InvalidArgumentError.for_field("page_token", "is not a token this service issued")
    if body["f"] != f.digest():
        raise InvalidArgumentError.for_field("page_token", "was issued for other filters")
    return int(after)


def list_events(
    session: Session,
    filters: EventFilter | None = None,
    *,
    page_size: int = 0,
    page_token: str = "",
    reveal_personal: bool = True,
) -> EventPage:
    """One page of journal events matching ``filters``, oldest first (by ``seq``).

    Args:
        session: an open session.
        filters: what to match (default: everything).
        page_size: 0 for the default (100); larger than 1000 is coerced to 1000 (AIP-158).
        page_token: "" for the first page, else the previous page's ``next_page_token``.
        reveal_personal: read the personal fields (record refs, pseudonyms) and salt too.

    Raises:
        InvalidArgumentError: negative ``page_size``, or a token not issued for these filters.
        JournalIntegrityError: a stored row is not a valid journal event.
    """
    f = filters or EventFilter()
    if page_size < 0:
        raise InvalidArgumentError.for_field("page_size", "must be >= 0")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = _decode_token(page_token, f) if page_token else 0
    stmt = (
        select(JournalEventRow, JournalPersonalRow)
        .outerjoin(JournalPersonalRow, JournalPersonalRow.seq == JournalEventRow.seq)
        .where(JournalEventRow.seq > after)
        .order_by(JournalEventRow.seq)
        .limit(size + 1)
    )
    rows = session.execute(_where(stmt, f)).all()
    records = [_record(e, p, reveal_personal) for e, p in rows[:size]]
    token = _encode_token(records[-1].seq, f) if len(rows) > size else ""
    return EventPage(records, token)


def events_after(
    session: Session,
    filters: EventFilter | None = None,
    *,
    after: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
    reveal_personal: bool = True,
) -> list[JournalRecord]:
    """At most ``limit`` events matching ``filters`` with ``seq > after``, by ``seq``.

    The position-based form of :func:`list_events`, for callers that issue their own page
    tokens (the gateway's signed AIP-158 tokens) or that filter further (object-level policy).

    Raises:
        InvalidArgumentError: ``after`` or ``limit`` is negative.
        JournalIntegrityError: a stored row is not a valid journal event.
    """
    if after < 0 or limit < 0:
        raise InvalidArgumentError.for_field("page_token", "position must be >= 0")
    stmt = (
        select(JournalEventRow, JournalPersonalRow)
        .outerjoin(JournalPersonalRow, JournalPersonalRow.seq == JournalEventRow.seq)
        .where(JournalEventRow.seq > after)
        .order_by(JournalEventRow.seq)
        .limit(limit)
    )
    rows = session.execute(_where(stmt, filters or EventFilter())).all()
    return [_record(e, p, reveal_personal) for e, p in rows]


def by_person(
    session: Session, pseudonyms: Sequence[str], *, reveal_personal: bool = True
) -> list[JournalRecord]:
    """Every event whose personal fields name one of ``pseudonyms`` ("who looked at my data?").

    Events whose personal fields retention already erased are no longer linked to anyone.
    Use :func:`list_events` with ``EventFilter(pseudonyms=...)`` for pages.

    Raises:
        JournalIntegrityError: a stored row is not a valid journal event.
    """
    f = EventFilter(pseudonyms=tuple(pseudonyms))
    out: list[JournalRecord] = []
    token = ""
    while True:
        page = list_events(
            session, f, page_size=MAX_PAGE_SIZE, page_token=token, reveal_personal=reveal_personal
        )
        out.extend(page.records)
        if not page.next_page_token:
            return out
        token = page.next_page_token


def leaf_index_of(session: Session, event_id: str) -> int | None:
    """The leaf index of an event (None while it waits for the sequencer).

    Raises:
        NotFoundError: no event has this id.
    """
    row = session.execute(
        select(JournalEventRow.seq, JournalEventRow.leaf_index).where(
            JournalEventRow.event_id == event_id
        )
    ).first()
    if row is None:
        raise NotFoundError("journal event not found")
    return None if row[1] is None else int(row[1])


class _PrefetchedStore:
    """Read-through cache over :class:`SqlNodeStore` that loads, per level, the nodes around
    an exported leaf range in one query: a full export reads O(levels) queries, not O(events)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._inner = SqlNodeStore(session)
        self._cache: dict[NodeId, bytes] = {}

    def prefetch(self, start: int, end: int, size: int) -> None:
        level = 0
        while size >> level:
            lo, hi = max(0, (start >> level) - 1), (max(end - 1, start) >> level) + 1
            rows = self._session.execute(
                select(JournalNodeRow.idx, JournalNodeRow.hash).where(
                    JournalNodeRow.level == level,
                    JournalNodeRow.idx >= lo,
                    JournalNodeRow.idx <= hi,
                )
            )
            self._cache.update({(level, idx): bytes(value) for idx, value in rows})
            level += 1

    def get_many(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        missing = [i for i in ids if i not in self._cache]
        if missing:
            self._cache.update(self._inner.get_many(missing))
        return {i: self._cache[i] for i in ids if i in self._cache}

    def put_many(self, nodes: Mapping[NodeId, bytes]) -> None:
        raise InvalidArgumentError.for_field("journal", "export is read-only")


def export_bundle(
    session: Session,
    vkey: str,
    *,
    from_size: int = 0,
    filters: EventFilter | None = None,
    earlier_checkpoint: bytes | None = None,
    reveal_personal: bool = True,
    disclose: Disclose | None = None,
) -> dict[str, Any]:
    """A ``vigie/journal-bundle/v1`` document of the events in leaves ``[from_size, head)``.

    Proofs are computed against the latest checkpoint. Without ``filters`` the bundle claims
    the complete range, so a deleted event shows up as a gap when verified. With ``disclose``
    the events the reader may not see become withheld leaves (hash and proof, recomputed from
    the stored row so that a tampered hidden row still fails verification): the range stays
    complete.

    Args:
        session: an open session.
        vkey: the journal's verifier key (the checkpoint must be signed by it).
        from_size: first leaf index to export.
        filters: export only matching events (the bundle then claims no complete range).
        earlier_checkpoint: a signed checkpoint the officer kept, to prove consistency from.
        reveal_personal: include personal fields with their salts where not yet erased (and
            where ``disclose`` allows).
        disclose: what the reader may see of each event (default: everything).

    Raises:
        FailedPreconditionError: the journal has no checkpoint yet.
        InvalidArgumentError: ``from_size`` outside ``[0, head size]``, or the earlier
            checkpoint is larger than the latest one.
        NoteError: a checkpoint is not signed by ``vkey``.
        JournalKeyError: ``vkey`` is malformed.
        JournalIntegrityError: the stored journal lacks a node or holds an invalid row.
    """
    head = latest_checkpoint(session)
    if head is None:
        raise FailedPreconditionError("the journal has no signed checkpoint yet")
    if not 0 <= from_size <= head.size:
        raise InvalidArgumentError.for_field("from_size", "must be in [0, latest tree size]")
    f = filters or EventFilter()
    stmt = (
        select(JournalEventRow, JournalPersonalRow)
        .outerjoin(JournalPersonalRow, JournalPersonalRow.seq == JournalEventRow.seq)
        .where(JournalEventRow.leaf_index >= from_size, JournalEventRow.leaf_index < head.size)
        .order_by(JournalEventRow.leaf_index)
    )
    records = [_record(row, personal, True) for row, personal in session.execute(_where(stmt, f))]
    shown: list[Disclosure] = []
    for start in range(0, len(records), _DISCLOSE_CHUNK):
        chunk = records[start : start + _DISCLOSE_CHUNK]
        everything: list[Disclosure] = ["personal"] * len(chunk)
        decided = list(disclose(chunk)) if disclose is not None else everything
        if len(decided) != len(chunk):
            raise InvalidArgumentError.for_field("disclose", "one disclosure per event")
        shown.extend(decided)
    items: list[ExportEvent | WithheldLeaf] = []
    for record, what in zip(records, shown, strict=True):
        assert record.leaf_index is not None
        if what == "withheld":
            entry = leaf_entry(record.event, record.personal_commitment)
            items.append(WithheldLeaf(record.leaf_index, bytes(leaf_hash(entry))))
            continue
        reveal = reveal_personal and what == "personal"
        items.append(
            ExportEvent(
                record.leaf_index,
                record.event,
                record.personal_commitment,
                record.personal if reveal else None,
                record.salt if reveal else None,
            )
        )
    store = _PrefetchedStore(session)
    if items:
        store.prefetch(items[0].leaf_index, items[-1].leaf_index + 1, head.size)
    tree = MerkleTree(store, integrated_size(session))
    complete = (from_size, head.size) if f == EventFilter() else None
    return build_bundle(
        vkey,
        head.note,
        tree,
        items,
        earlier_checkpoint=earlier_checkpoint,
        complete_range=complete,
    )

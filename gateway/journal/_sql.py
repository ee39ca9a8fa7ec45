"""SQL storage of the journal's Merkle tree: nodes, checkpoints, the sequencer's state.

Tables (migration ``0004_journal_tree``; the models below mirror it):

- ``journal_nodes (level, idx, hash)``: every perfect-subtree hash, insert-only (database
  triggers refuse UPDATE and DELETE). :class:`SqlNodeStore` is the :class:`NodeStore` port.
- ``journal_checkpoints (tree_size, root_hash, note, created_at)``: every signed checkpoint,
  insert-only.
- ``journal_state (id = 1, integrated_size)``: one row; the sequencer locks it (``FOR UPDATE``
  on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers already) and it says how many
  leaves the tree holds, so a restart recovers the size from the database.
- ``journal_subjects (pseudonym, seq)``: which event touched which pseudonym, filled by a
  database trigger on ``journal_personal`` inserts and removed with it (``ON DELETE CASCADE``)
  when retention erases the personal fields; an indexed lookup for "who looked at my data?".
- ``journal_erasures``: bookkeeping of each retention erasure (cutoff, count, its own event).

Only :mod:`gateway.store._models` and the pure journal modules are imported here, so that the
store package can import this module (to register the models on ``Base.metadata``) without a
cycle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.errors import InvalidArgumentError
from gateway.journal._canonical import JournalEvent, PersonalFields, event_time
from gateway.journal._checkpoint import Checkpoint, parse_checkpoint_text
from gateway.journal._errors import JournalIntegrityError, NoteError
from gateway.journal._merkle import HASH_SIZE
from gateway.journal._tree import MerkleTree, NodeId
from gateway.store._models import Base, JournalEventRow, JournalPersonalRow
from gateway.store._types import UTCDateTime

__all__ = [
    "JournalCheckpointRow",
    "JournalErasureRow",
    "JournalNodeRow",
    "JournalStateRow",
    "JournalSubjectRow",
    "SqlNodeStore",
    "StoredCheckpoint",
    "checkpoint_at",
    "consistency_proof",
    "inclusion_proof",
    "integrated_size",
    "journal_event_of",
    "latest_checkpoint",
    "personal_of",
    "tree_at",
]

_CHUNK: Final = 500  # ids per IN (...) query: far below SQLite's and PostgreSQL's bind limits


class JournalNodeRow(Base):
    """A perfect-subtree hash; ``(level, idx)`` covers leaves from ``idx << level`` on."""

    __tablename__ = "journal_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class JournalCheckpointRow(Base):
    """A signed C2SP checkpoint (note text) the sequencer published."""

    __tablename__ = "journal_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JournalStateRow(Base):
    """The sequencer's single row: the integrated tree size (and the lock writers take)."""

    __tablename__ = "journal_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    integrated_size: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JournalSubjectRow(Base):
    """One (pseudonym, event) pair from ``journal_personal``; erased with it."""

    __tablename__ = "journal_subjects"

    pseudonym: Mapped[str] = mapped_column(Text, primary_key=True)
    seq: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("journal_personal.seq", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
        index=True,
    )


class JournalErasureRow(Base):
    """One retention erasure: its own journal event, the cutoff and how many were erased."""

    __tablename__ = "journal_erasures"

    event_seq: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("journal_events.seq"), primary_key=True, autoincrement=False
    )
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime)
    erased_count: Mapped[int] = mapped_column(BigInteger)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Events not yet in the tree, in sequence order (the sequencer's work queue).
Index(
    "ix_journal_events_unintegrated",
    JournalEventRow.seq,
    postgresql_where=JournalEventRow.leaf_index.is_(None),
    sqlite_where=JournalEventRow.leaf_index.is_(None),
)


class SqlNodeStore:
    """:class:`~gateway.journal.NodeStore` over ``journal_nodes``, in the caller's session.

    Writes are insert-only and join the caller's transaction, so nodes, leaf indices and the
    checkpoint that covers them commit or roll back together.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def get_many(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """Hashes of the stored nodes among ``ids`` (absent ones are left out)."""
        found: dict[NodeId, bytes] = {}
        wanted = sorted(set(ids))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            # OR of primary-key equalities: one index probe per node on both engines (SQLite
            # scans the table for a row-value IN list), as plain SQL (compiles in microseconds).
            where = " OR ".join(f"(level = :l{k} AND idx = :i{k})" for k in range(len(chunk)))
            params: dict[str, int] = {}
            for k, (level, idx) in enumerate(chunk):
                params[f"l{k}"], params[f"i{k}"] = level, idx
            # Only placeholder names are interpolated; every value is bound.
            sql = f"SELECT level, idx, hash FROM journal_nodes WHERE {where}"  # noqa: S608
            rows = self._session.execute(text(sql), params)
            for level, idx, value in rows:
                found[(int(level), int(idx))] = bytes(value)
        return found

    def put_many(self, nodes: Mapping[NodeId, bytes]) -> None:
        """Insert ``nodes``; identical re-puts are no-ops.

        Raises:
            InvalidArgumentError: a hash is not 32 bytes.
            JournalIntegrityError: a node is already stored with a different hash.
        """
        if any(len(value) != HASH_SIZE for value in nodes.values()):
            raise InvalidArgumentError.for_field("hash", f"must be {HASH_SIZE} bytes")
        # 1. New nodes of one level form a contiguous range: one range read per level.
        by_level: dict[int, list[int]] = defaultdict(list)
        for level, idx in nodes:
            by_level[level].append(idx)
        existing: dict[NodeId, bytes] = {}
        for level, idxs in by_level.items():
            rows = self._session.execute(
                select(JournalNodeRow.idx, JournalNodeRow.hash).where(
                    JournalNodeRow.level == level,
                    JournalNodeRow.idx >= min(idxs),
                    JournalNodeRow.idx <= max(idxs),
                )
            )
            existing.update({(level, idx): bytes(value) for idx, value in rows})
        # 2. Write-once: a stored node with another hash is evidence of tampering (ADR 0003).
        fresh = []
        for node_id, value in nodes.items():
            old = existing.get(node_id)
            if old is None:
                fresh.append({"level": node_id[0], "idx": node_id[1], "hash": value})
            elif old != value:
                raise JournalIntegrityError(f"node {node_id} already stored with another hash")
        if fresh:
            self._session.execute(insert(JournalNodeRow), fresh)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A signed checkpoint as stored: the parsed head, the signed note bytes, when it was made."""

    checkpoint: Checkpoint
    note: bytes
    created_at: datetime

    @property
    def size(self) -> int:
        """The tree size the checkpoint commits to."""
        return self.checkpoint.size


def _note_text(note: str) -> str:
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note: no signature block")
    return note[: split + 1]


def _stored(row: JournalCheckpointRow) -> StoredCheckpoint:
    # The note's text must say what the row's columns say (an edited row is a tampered one).
    try:
        head = parse_checkpoint_text(_note_text(row.note))
    except NoteError as e:
        raise JournalIntegrityError(f"checkpoint at size {row.tree_size} is malformed") from e
    if head.size != row.tree_size or head.root_hash != bytes(row.root_hash):
        raise JournalIntegrityError(f"checkpoint at size {row.tree_size} contradicts its note")
    return StoredCheckpoint(head, row.note.encode("utf-8"), row.created_at)


def latest_checkpoint(session: Session) -> StoredCheckpoint | None:
    """The newest signed checkpoint, or None before the first integration.

    Raises:
        JournalIntegrityError: the stored checkpoint row contradicts its own note.
    """
    row = session.scalars(
        select(JournalCheckpointRow).order_by(JournalCheckpointRow.tree_size.desc()).limit(1)
    ).first()
    return None if row is None else _stored(row)


def checkpoint_at(session: Session, tree_size: int) -> StoredCheckpoint | None:
    """The signed checkpoint at exactly ``tree_size``, if one was published.

    Raises:
        JournalIntegrityError: the stored checkpoint row contradicts its own note.
    """
    row = session.get(JournalCheckpointRow, tree_size)
    return None if row is None else _stored(row)


def integrated_size(session: Session) -> int:
    """How many leaves the tree holds (the sequencer's recorded state).

    Raises:
        JournalIntegrityError: the state row is missing (the migration was not applied).
    """
    size = session.scalar(select(JournalStateRow.integrated_size).where(JournalStateRow.id == 1))
    if size is None:
        raise JournalIntegrityError("journal_state row is missing")
    return int(size)


def tree_at(session: Session) -> MerkleTree:
    """A read-only view of the tree at its integrated size over :class:`SqlNodeStore`.

    Raises:
        JournalIntegrityError: the state row is missing.
    """
    return MerkleTree(SqlNodeStore(session), integrated_size(session))


def inclusion_proof(session: Session, leaf_index: int, tree_size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof of ``leaf_index`` in the tree of ``tree_size``.

    Reads O(log n) nodes, never the log.

    Raises:
        InvalidArgumentError: ``tree_size`` above the integrated size, or ``leaf_index`` not in
            ``[0, tree_size)``.
        JournalIntegrityError: the node store lacks a node.
    """
    return tree_at(session).inclusion_proof(leaf_index, tree_size)


def consistency_proof(session: Session, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof from ``old_size`` to ``new_size``.

    Raises:
        InvalidArgumentError: sizes out of order or above the integrated size.
        JournalIntegrityError: the node store lacks a node.
    """
    return tree_at(session).consistency_proof(old_size, new_size)


def journal_event_of(row: JournalEventRow) -> JournalEvent:
    """The canonical event (what the leaf covers) of a ``journal_events`` row.

    Raises:
        JournalIntegrityError: the row cannot be a journal event (bad id, time, decision).
    """
    try:
        return JournalEvent(
            seq=row.seq,
            event_id=row.event_id,
            time=event_time(row.time),
            member_id=row.member_id,
            principal=row.principal,
            cert_fingerprint=row.cert_fingerprint,
            method=row.method,
            purpose=row.purpose,
            decision=row.decision,  # type: ignore[arg-type]  # checked by the model (Literal)
            rule_ids=tuple(row.rule_ids),
            bundle_hash=row.bundle_hash,
            request_id=row.request_id,
            outcome=row.outcome,
            record_count=row.record_count,
        )
    except (ValueError, TypeError, InvalidArgumentError) as e:
        # pydantic's ValidationError is a ValueError; name the row, never its contents.
        raise JournalIntegrityError(f"journal event seq {row.seq} is not a valid event") from e


def personal_of(row: JournalPersonalRow) -> tuple[PersonalFields, bytes]:
    """The personal fields and salt of a ``journal_personal`` row.

    Raises:
        JournalIntegrityError: the row's fields are not lists of strings.
    """
    try:
        fields = PersonalFields(
            record_refs=tuple(row.record_refs), subject_pseudonyms=tuple(row.subject_pseudonyms)
        )
    except (ValueError, TypeError) as e:
        raise JournalIntegrityError(f"personal fields of seq {row.seq} are malformed") from e
    return fields, bytes(row.salt)

"""SQLAlchemy models of the foundation: members, their certificates, the journal, idempotency.

The schema is created by Alembic migrations only (``gateway/store/migrations``); these models
mirror it for queries. Later areas (suspicions, claims, the Merkle journal) add their own modules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gateway.store._types import BigIntPK, UTCDateTime

__all__ = [
    "Base",
    "IdempotencyRow",
    "JournalEventRow",
    "JournalPersonalRow",
    "MemberCertificateRow",
    "MemberRow",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class MemberRow(Base):
    __tablename__ = "members"

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(3))  # "AMO" | "AMC"
    roles: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class MemberCertificateRow(Base):
    """A pinned client certificate: its SPKI fingerprint maps to exactly one member."""

    __tablename__ = "member_certificates"

    spki_fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.member_id"), index=True)
    subject: Mapped[str] = mapped_column(String(400))
    not_after: Mapped[datetime]
    added_at: Mapped[datetime]


class JournalEventRow(Base):
    """One access event. Append-only (database triggers refuse UPDATE/DELETE of these columns).

    ``leaf_index`` is set once, by the journal sequencer, when the event enters the Merkle tree.
    Personal fields live apart in ``journal_personal`` so retention can erase them; this row
    keeps only their salted commitment, which is what the Merkle leaf covers.
    """

    __tablename__ = "journal_events"

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    time: Mapped[datetime] = mapped_column(index=True)
    member_id: Mapped[str] = mapped_column(String(64), index=True)  # "" when unauthenticated
    principal: Mapped[str] = mapped_column(String(200))
    cert_fingerprint: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(100), index=True)
    purpose: Mapped[str] = mapped_column(String(40))
    decision: Mapped[str] = mapped_column(String(5))  # "allow" | "deny"
    rule_ids: Mapped[list[str]] = mapped_column(JSON)
    bundle_hash: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(40))
    record_count: Mapped[int]
    personal_commitment: Mapped[str] = mapped_column(String(64))
    leaf_index: Mapped[int | None] = mapped_column(BigIntPK, unique=True, nullable=True)


class JournalPersonalRow(Base):
    """Personal fields of an event, erasable at the journal's retention without breaking proofs."""

    __tablename__ = "journal_personal"

    seq: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("journal_events.seq"), primary_key=True, autoincrement=False
    )
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    record_refs: Mapped[list[str]] = mapped_column(JSON)
    subject_pseudonyms: Mapped[list[str]] = mapped_column(JSON)


class IdempotencyRow(Base):
    """The stored answer to a write, keyed by (member, method, request id) (AIP-155)."""

    __tablename__ = "idempotency_keys"

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    method: Mapped[str] = mapped_column(String(100), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes] = mapped_column(LargeBinary)  # sealed (AES-256-GCM), never clear
    subject_ref: Mapped[str | None] = mapped_column(String(100), index=True, default=None)
    created_at: Mapped[datetime]


Index("ix_journal_events_member_time", JournalEventRow.member_id, JournalEventRow.time)

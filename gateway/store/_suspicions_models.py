"""SQLAlchemy models of the suspicion exchange (migrations ``0002_suspicions`` and
``0005_suspicion_references`` mirror them).

- ``suspicions``: one row per suspicion. The beneficiary is the gateway's second-level
  pseudonym; facts and evidence references are sealed (AES-256-GCM, ``Sealed.to_text()``, key
  id in ``seal_key_id``). Payload columns become NULL when the person is cleared.
- ``suspicion_transitions``: who moved it (member, kind, certificate principal), when, why
  (reason sealed).
- ``suspicion_recipients``: who received it, under which reference of its own (the gateway's,
  then the case reference it attached on acknowledgement), and the retraction and its
  acknowledgement.
- ``notifications``: the members' outbox; ``sequence`` grows monotonically (members resume
  "after" the last one they processed); ``payload`` is the sealed minimised view.
- ``member_coverage``: beneficiaries (pseudonyms) an AMC or AMO declared it covers.
- ``retention_runs``: what each purge deleted (counts and opaque suspicion ids).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store._models import Base
from gateway.store._types import BigIntPK

__all__ = [
    "MemberCoverageRow",
    "NotificationRow",
    "RetentionRunRow",
    "SuspicionRecipientRow",
    "SuspicionRow",
    "SuspicionTransitionRow",
]


_STATUSES = "'submitted', 'qualified', 'confirmed', 'dismissed', 'cleared', 'closed'"


class SuspicionRow(Base):
    __tablename__ = "suspicions"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint("submitter_kind IN ('AMO', 'AMC')", name="submitter_kind"),
        CheckConstraint("sector IN ('optique', 'audio', 'dentaire')", name="sector"),
        CheckConstraint("estimated_amount_cents >= 0", name="amount"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    submitter_member: Mapped[str] = mapped_column(String(64), index=True)
    submitter_kind: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), index=True)
    sector: Mapped[str] = mapped_column(String(16))
    fraud_type: Mapped[str] = mapped_column(String(40))
    subject_beneficiary: Mapped[str | None] = mapped_column(String(128), index=True)
    subject_provider_rpps: Mapped[str | None] = mapped_column(String(11), index=True)
    subject_provider_am_number: Mapped[str | None] = mapped_column(String(9), index=True)
    subject_provider_finess: Mapped[str | None] = mapped_column(String(9), index=True)
    facts_sealed: Mapped[str | None] = mapped_column(Text)
    evidence_sealed: Mapped[str | None] = mapped_column(Text)
    seal_key_id: Mapped[str | None] = mapped_column(String(64))
    estimated_amount_cents: Mapped[int] = mapped_column(BigInteger)
    case_reference: Mapped[str | None] = mapped_column(String(64))
    act_grouping_codes: Mapped[list[str]] = mapped_column(JSON)
    act_codes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    outcome: Mapped[str | None] = mapped_column(String(16))
    decided_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    cleared_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]


class SuspicionTransitionRow(Base):
    __tablename__ = "suspicion_transitions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    suspicion_id: Mapped[str] = mapped_column(ForeignKey("suspicions.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_member: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(3))
    reason_sealed: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    actor_principal: Mapped[str | None] = mapped_column(String(512), default=None)


class SuspicionRecipientRow(Base):
    __tablename__ = "suspicion_recipients"

    suspicion_id: Mapped[str] = mapped_column(ForeignKey("suspicions.id"), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    recipient_kind: Mapped[str] = mapped_column(String(3))
    shared_at: Mapped[datetime]
    retracted_at: Mapped[datetime | None]
    retraction_acknowledged_at: Mapped[datetime | None]
    case_reference: Mapped[str | None] = mapped_column(String(64), default=None)


class NotificationRow(Base):
    __tablename__ = "notifications"
    __table_args__ = (CheckConstraint("kind IN ('SHARED', 'RETRACTED', 'ALERT')", name="kind"),)

    sequence: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))
    subject_ref: Mapped[str] = mapped_column(String(40), index=True)
    payload: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]


class MemberCoverageRow(Base):
    __tablename__ = "member_coverage"

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    beneficiary: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)
    declared_at: Mapped[datetime]


class RetentionRunRow(Base):
    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    ran_at: Mapped[datetime]
    bundle_name: Mapped[str] = mapped_column(String(100))
    bundle_hash: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


Index("ix_suspicions_created_at_id", SuspicionRow.created_at, SuspicionRow.id)
Index("ix_notifications_member_id_sequence", NotificationRow.member_id, NotificationRow.sequence)

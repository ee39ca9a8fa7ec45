"""SQLAlchemy models of claims, matching and alerts (migration ``0003_claims`` mirrors them).

- ``claim_lines``: one side (AMO or AMC) of one billed item as a member uploaded it. The
  beneficiary is the gateway's second-level pseudonym (``<key id>:<base64url>``), never the
  member's first-level token nor a NIR. ``(member_id, member_reference)`` is unique: re-sending
  a line changes nothing. ``match_state``/``matched_line_id`` link the AMO and AMC sides (an AMO
  line points at its first AMC counterpart; every AMC counterpart points at the AMO line).
- ``alerts``: the latest score of one claim line, for the member that uploaded it (at most one
  alert per line; re-scoring updates it, or withdraws it when the score falls below the
  threshold). ``delivered`` is the outbox flag of the notification stream. ``public_id`` is the
  random id of its resource name ``alerts/{public_id}`` (migration ``0005_claims_alert_names``).
- ``provider_peer_stats``: peer distributions of provider metrics per (level, sector, window,
  minimum items), computed lazily and shared by every gateway replica until their TTL expires.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store._models import Base
from gateway.store._types import BigIntPK, UTCDateTime

__all__ = ["AlertRow", "ClaimLineRow", "ProviderPeerStatsRow"]

_AMOUNTS = ("unit_price_cents", "amount_billed_cents", "amo_base_cents", "amo_paid_cents",
            "amc_paid_cents")  # fmt: skip


class ClaimLineRow(Base):
    __tablename__ = "claim_lines"
    __table_args__ = (
        UniqueConstraint("member_id", "member_reference"),
        CheckConstraint("side IN ('AMO', 'AMC')", name="side"),
        CheckConstraint("sector IN ('optique', 'audio', 'dentaire')", name="sector"),
        CheckConstraint("match_state IN ('unmatched', 'matched')", name="match_state"),
        CheckConstraint(" AND ".join(f"{a} >= 0" for a in _AMOUNTS), name="amounts"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(64))
    member_reference: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(3))
    sector: Mapped[str] = mapped_column(String(16))
    beneficiary: Mapped[str] = mapped_column(String(128))
    birth_year: Mapped[int] = mapped_column(Integer)
    provider_rpps: Mapped[str] = mapped_column(String(11))
    provider_am_number: Mapped[str] = mapped_column(String(9))
    provider_finess: Mapped[str] = mapped_column(String(9))
    prescriber_rpps: Mapped[str] = mapped_column(String(11))
    prescriber_specialty: Mapped[str] = mapped_column(String(16))
    prescription_date: Mapped[date | None] = mapped_column(Date)
    care_date: Mapped[date] = mapped_column(Date)
    act_code: Mapped[str] = mapped_column(String(16))
    grouping_code: Mapped[str] = mapped_column(String(32))
    product_class: Mapped[str] = mapped_column(String(16))
    laterality: Mapped[str] = mapped_column(String(5))
    tooth: Mapped[int] = mapped_column(SmallInteger)
    quantity: Mapped[int] = mapped_column(SmallInteger)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    amount_billed_cents: Mapped[int] = mapped_column(BigInteger)
    amo_base_cents: Mapped[int] = mapped_column(BigInteger)
    amo_paid_cents: Mapped[int] = mapped_column(BigInteger)
    amo_claim_number: Mapped[str] = mapped_column(String(32))
    amc_paid_cents: Mapped[int] = mapped_column(BigInteger)
    amc_reference: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    match_state: Mapped[str] = mapped_column(String(10))
    matched_line_id: Mapped[int | None] = mapped_column(
        BigIntPK, ForeignKey("claim_lines.id"), nullable=True
    )


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint("level IN ('none', 'low', 'medium', 'high')", name="level"),
        CheckConstraint("score >= 0 AND score <= 100", name="score"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str] = mapped_column(String(64))
    claim_line_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("claim_lines.id"), unique=True)
    score: Mapped[int] = mapped_column(SmallInteger)
    level: Mapped[str] = mapped_column(String(6))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    ruleset_version: Mapped[str] = mapped_column(String(32))
    ruleset_hash: Mapped[str] = mapped_column(String(64))
    amount_at_stake_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered: Mapped[bool] = mapped_column(default=False)


class ProviderPeerStatsRow(Base):
    __tablename__ = "provider_peer_stats"

    level: Mapped[str] = mapped_column(String(10), primary_key=True)
    sector: Mapped[str] = mapped_column(String(16), primary_key=True)
    window_start: Mapped[date] = mapped_column(Date, primary_key=True)
    window_end: Mapped[date] = mapped_column(Date, primary_key=True)
    min_items: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    providers: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index(
    "ix_claim_lines_beneficiary_sector_care_date",
    ClaimLineRow.beneficiary,
    ClaimLineRow.sector,
    ClaimLineRow.care_date,
)
Index(
    "ix_claim_lines_rpps_sector_care_date",
    ClaimLineRow.provider_rpps,
    ClaimLineRow.sector,
    ClaimLineRow.care_date,
)
Index(
    "ix_claim_lines_am_sector_care_date",
    ClaimLineRow.provider_am_number,
    ClaimLineRow.sector,
    ClaimLineRow.care_date,
)
Index(
    "ix_claim_lines_finess_sector_care_date",
    ClaimLineRow.provider_finess,
    ClaimLineRow.sector,
    ClaimLineRow.care_date,
)
Index("ix_alerts_member_id_created_at", AlertRow.member_id, AlertRow.created_at, AlertRow.id)
Index("ix_alerts_delivered_id", AlertRow.delivered, AlertRow.id)
Index("ix_alerts_public_id", AlertRow.public_id, unique=True)

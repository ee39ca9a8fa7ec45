"""Claims: claim lines (both sides, pseudonymised), alerts, provider peer statistics.

Revision ID: 0003_claims
Revises: 0001_foundation
Create Date: 2026-11-24

``claim_lines.beneficiary`` holds the gateway's second-level pseudonym only (never a NIR nor a
member's first-level token). ``(member_id, member_reference)`` is unique: the idempotency key of
a line. Indexes serve the scoring history: a beneficiary's lines per sector over a date range,
and a provider's lines per sector over a date range at each level (RPPS, AM number, FINESS).
No (sector, care_date) index on purpose: the peer aggregates it would serve read most of a
sector anyway (and are cached), while PostgreSQL, with statistics not yet refreshed after a bulk
load, preferred it to the beneficiary index and made the pre-payment check ten times slower.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.store._types import BigIntPK, UTCDateTime

revision = "0003_claims"
down_revision = "0001_foundation"
branch_labels = ("claims",)
depends_on = None

_AMOUNTS = ("unit_price_cents", "amount_billed_cents", "amo_base_cents", "amo_paid_cents",
            "amc_paid_cents")  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "claim_lines",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("member_reference", sa.String(64), nullable=False),
        sa.Column("side", sa.String(3), nullable=False),
        sa.Column("sector", sa.String(16), nullable=False),
        sa.Column("beneficiary", sa.String(128), nullable=False),
        sa.Column("birth_year", sa.Integer, nullable=False),
        sa.Column("provider_rpps", sa.String(11), nullable=False),
        sa.Column("provider_am_number", sa.String(9), nullable=False),
        sa.Column("provider_finess", sa.String(9), nullable=False),
        sa.Column("prescriber_rpps", sa.String(11), nullable=False),
        sa.Column("prescriber_specialty", sa.String(16), nullable=False),
        sa.Column("prescription_date", sa.Date, nullable=True),
        sa.Column("care_date", sa.Date, nullable=False),
        sa.Column("act_code", sa.String(16), nullable=False),
        sa.Column("grouping_code", sa.String(32), nullable=False),
        sa.Column("product_class", sa.String(16), nullable=False),
        sa.Column("laterality", sa.String(5), nullable=False),
        sa.Column("tooth", sa.SmallInteger, nullable=False),
        sa.Column("quantity", sa.SmallInteger, nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger, nullable=False),
        sa.Column("amount_billed_cents", sa.BigInteger, nullable=False),
        sa.Column("amo_base_cents", sa.BigInteger, nullable=False),
        sa.Column("amo_paid_cents", sa.BigInteger, nullable=False),
        sa.Column("amo_claim_number", sa.String(32), nullable=False),
        sa.Column("amc_paid_cents", sa.BigInteger, nullable=False),
        sa.Column("amc_reference", sa.String(32), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("match_state", sa.String(10), nullable=False),
        sa.Column("matched_line_id", BigIntPK, sa.ForeignKey("claim_lines.id"), nullable=True),
        sa.UniqueConstraint("member_id", "member_reference"),
        sa.CheckConstraint("side IN ('AMO', 'AMC')", name="side"),
        sa.CheckConstraint("sector IN ('optique', 'audio', 'dentaire')", name="sector"),
        sa.CheckConstraint("match_state IN ('unmatched', 'matched')", name="match_state"),
        sa.CheckConstraint(" AND ".join(f"{a} >= 0" for a in _AMOUNTS), name="amounts"),
    )
    for name, first in (
        ("beneficiary", "beneficiary"),
        ("rpps", "provider_rpps"),
        ("am", "provider_am_number"),
        ("finess", "provider_finess"),
    ):
        op.create_index(
            f"ix_claim_lines_{name}_sector_care_date",
            "claim_lines",
            [first, "sector", "care_date"],
        )
    op.create_table(
        "alerts",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column(
            "claim_line_id",
            BigIntPK,
            sa.ForeignKey("claim_lines.id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("score", sa.SmallInteger, nullable=False),
        sa.Column("level", sa.String(6), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("ruleset_version", sa.String(32), nullable=False),
        sa.Column("ruleset_hash", sa.String(64), nullable=False),
        sa.Column("amount_at_stake_cents", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("withdrawn_at", UTCDateTime, nullable=True),
        sa.Column("delivered", sa.Boolean, nullable=False),
        sa.CheckConstraint("level IN ('none', 'low', 'medium', 'high')", name="level"),
        sa.CheckConstraint("score >= 0 AND score <= 100", name="score"),
    )
    op.create_index("ix_alerts_member_id_created_at", "alerts", ["member_id", "created_at", "id"])
    op.create_index("ix_alerts_delivered_id", "alerts", ["delivered", "id"])
    op.create_table(
        "provider_peer_stats",
        sa.Column("level", sa.String(10), primary_key=True),
        sa.Column("sector", sa.String(16), primary_key=True),
        sa.Column("window_start", sa.Date, primary_key=True),
        sa.Column("window_end", sa.Date, primary_key=True),
        sa.Column("min_items", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("providers", sa.Integer, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("computed_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("provider_peer_stats")
    op.drop_table("alerts")
    op.drop_table("claim_lines")

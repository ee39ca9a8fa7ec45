"""Suspicion exchange: suspicions, transitions, recipients, notifications, coverage, purges.

Revision ID: 0002_suspicions
Revises: 0001_foundation
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.store._types import BigIntPK, UTCDateTime

revision = "0002_suspicions"
down_revision = "0001_foundation"
branch_labels = ("suspicions",)
depends_on = None

_STATUSES = "'submitted', 'qualified', 'confirmed', 'dismissed', 'cleared', 'closed'"


def upgrade() -> None:
    op.create_table(
        "suspicions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("submitter_member", sa.String(64), nullable=False),
        sa.Column("submitter_kind", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sector", sa.String(16), nullable=False),
        sa.Column("fraud_type", sa.String(40), nullable=False),
        sa.Column("subject_beneficiary", sa.String(128), nullable=True),
        sa.Column("subject_provider_rpps", sa.String(11), nullable=True),
        sa.Column("subject_provider_am_number", sa.String(9), nullable=True),
        sa.Column("subject_provider_finess", sa.String(9), nullable=True),
        sa.Column("facts_sealed", sa.Text, nullable=True),
        sa.Column("evidence_sealed", sa.Text, nullable=True),
        sa.Column("seal_key_id", sa.String(64), nullable=True),
        sa.Column("estimated_amount_cents", sa.BigInteger, nullable=False),
        sa.Column("case_reference", sa.String(64), nullable=True),
        sa.Column("act_grouping_codes", sa.JSON, nullable=False),
        sa.Column("act_codes", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("decided_at", UTCDateTime, nullable=True),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("cleared_at", UTCDateTime, nullable=True),
        sa.Column("erased_at", UTCDateTime, nullable=True),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        sa.CheckConstraint("submitter_kind IN ('AMO', 'AMC')", name="submitter_kind"),
        sa.CheckConstraint("sector IN ('optique', 'audio', 'dentaire')", name="sector"),
        sa.CheckConstraint("estimated_amount_cents >= 0", name="amount"),
    )
    for column in (
        "submitter_member",
        "status",
        "subject_beneficiary",
        "subject_provider_rpps",
        "subject_provider_am_number",
        "subject_provider_finess",
    ):
        op.create_index(f"ix_suspicions_{column}", "suspicions", [column])
    op.create_index("ix_suspicions_created_at_id", "suspicions", ["created_at", "id"])
    op.create_table(
        "suspicion_transitions",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("suspicion_id", sa.String(40), sa.ForeignKey("suspicions.id"), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor_member", sa.String(64), nullable=False),
        sa.Column("actor_kind", sa.String(3), nullable=False),
        sa.Column("reason_sealed", sa.Text, nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_suspicion_transitions_suspicion_id", "suspicion_transitions", ["suspicion_id"]
    )
    op.create_table(
        "suspicion_recipients",
        sa.Column(
            "suspicion_id",
            sa.String(40),
            sa.ForeignKey("suspicions.id"),
            primary_key=True,
        ),
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("reference", sa.String(40), nullable=False, unique=True),
        sa.Column("recipient_kind", sa.String(3), nullable=False),
        sa.Column("shared_at", UTCDateTime, nullable=False),
        sa.Column("retracted_at", UTCDateTime, nullable=True),
        sa.Column("retraction_acknowledged_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "notifications",
        sa.Column("sequence", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("subject_ref", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("acknowledged_at", UTCDateTime, nullable=True),
        sa.CheckConstraint("kind IN ('SHARED', 'RETRACTED', 'ALERT')", name="kind"),
    )
    op.create_index("ix_notifications_subject_ref", "notifications", ["subject_ref"])
    op.create_index(
        "ix_notifications_member_id_sequence", "notifications", ["member_id", "sequence"]
    )
    op.create_table(
        "member_coverage",
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("beneficiary", sa.String(128), primary_key=True),
        sa.Column("declared_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_member_coverage_beneficiary", "member_coverage", ["beneficiary"])
    op.create_table(
        "retention_runs",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("ran_at", UTCDateTime, nullable=False),
        sa.Column("bundle_name", sa.String(100), nullable=False),
        sa.Column("bundle_hash", sa.String(64), nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("retention_runs")
    op.drop_table("member_coverage")
    op.drop_table("notifications")
    op.drop_table("suspicion_recipients")
    op.drop_table("suspicion_transitions")
    op.drop_table("suspicions")

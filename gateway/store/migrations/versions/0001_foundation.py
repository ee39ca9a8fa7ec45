"""Foundation: members, pinned certificates, append-only journal, idempotency keys.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.store._types import BigIntPK, UTCDateTime

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None

# Append-only journal: rows are never deleted; the only permitted update is the sequencer
# setting leaf_index once (NULL -> value). Personal fields live in journal_personal, which the
# retention purge may erase.
_PG_GUARD = """
CREATE OR REPLACE FUNCTION vigie_journal_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'journal_events is append-only';
  END IF;
  IF OLD.leaf_index IS NOT NULL OR NEW.leaf_index IS NULL
     OR (to_jsonb(OLD) - 'leaf_index') IS DISTINCT FROM (to_jsonb(NEW) - 'leaf_index') THEN
    RAISE EXCEPTION 'journal_events is append-only';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER journal_events_append_only BEFORE UPDATE OR DELETE ON journal_events
  FOR EACH ROW EXECUTE FUNCTION vigie_journal_guard();
"""

_SQLITE_COLUMNS = (
    "seq event_id time member_id principal cert_fingerprint method purpose decision rule_ids "
    "bundle_hash request_id outcome record_count personal_commitment"
).split()

_SQLITE_GUARDS = [
    """CREATE TRIGGER journal_events_no_delete BEFORE DELETE ON journal_events
       BEGIN SELECT RAISE(ABORT, 'journal_events is append-only'); END""",
    "CREATE TRIGGER journal_events_no_update BEFORE UPDATE ON journal_events "
    "WHEN OLD.leaf_index IS NOT NULL OR NEW.leaf_index IS NULL OR "
    + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _SQLITE_COLUMNS)
    + " BEGIN SELECT RAISE(ABORT, 'journal_events is append-only'); END",
]


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(3), nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("kind IN ('AMO', 'AMC')", name="kind"),
    )
    op.create_table(
        "member_certificates",
        sa.Column("spki_fingerprint", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), sa.ForeignKey("members.member_id"), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("not_after", UTCDateTime, nullable=False),
        sa.Column("added_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_member_certificates_member_id", "member_certificates", ["member_id"])
    op.create_table(
        "journal_events",
        sa.Column("seq", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("time", UTCDateTime, nullable=False),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("cert_fingerprint", sa.String(64), nullable=False),
        sa.Column("method", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("decision", sa.String(5), nullable=False),
        sa.Column("rule_ids", sa.JSON, nullable=False),
        sa.Column("bundle_hash", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("record_count", sa.Integer, nullable=False),
        sa.Column("personal_commitment", sa.String(64), nullable=False),
        sa.Column("leaf_index", BigIntPK, nullable=True, unique=True),
        sa.CheckConstraint("decision IN ('allow', 'deny')", name="decision"),
    )
    op.create_index("ix_journal_events_time", "journal_events", ["time"])
    op.create_index("ix_journal_events_member_id", "journal_events", ["member_id"])
    op.create_index("ix_journal_events_method", "journal_events", ["method"])
    op.create_index("ix_journal_events_member_time", "journal_events", ["member_id", "time"])
    op.create_table(
        "journal_personal",
        sa.Column(
            "seq",
            BigIntPK,
            sa.ForeignKey("journal_events.seq"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
        sa.Column("record_refs", sa.JSON, nullable=False),
        sa.Column("subject_pseudonyms", sa.JSON, nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("method", sa.String(100), primary_key=True),
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
    else:
        for ddl in _SQLITE_GUARDS:
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS journal_events_append_only ON journal_events")
        op.execute("DROP FUNCTION IF EXISTS vigie_journal_guard()")
    op.drop_table("idempotency_keys")
    op.drop_table("journal_personal")
    op.drop_table("journal_events")
    op.drop_table("member_certificates")
    op.drop_table("members")

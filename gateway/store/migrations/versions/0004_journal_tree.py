"""Journal tree: Merkle nodes, signed checkpoints, sequencer state, subject index, erasures.

Revision ID: 0004_journal_tree
Revises: 0001_foundation
Create Date: 2026-11-24

``journal_nodes`` and ``journal_checkpoints`` are insert-only (triggers refuse UPDATE and
DELETE): a perfect-subtree hash never changes and a signed checkpoint is never withdrawn
(ADR 0003). ``journal_subjects`` is filled by a trigger on ``journal_personal`` inserts, so
every writer of the journal feeds the "who looked at my data?" index without knowing it, and is
emptied with the personal fields by ``ON DELETE CASCADE`` when retention erases them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.store._types import UTCDateTime

revision = "0004_journal_tree"
down_revision = "0001_foundation"
branch_labels = ("journal",)
depends_on = None

_INSERT_ONLY = ("journal_nodes", "journal_checkpoints")

_PG_GUARD = """
CREATE OR REPLACE FUNCTION vigie_journal_insert_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION '% is insert-only', TG_TABLE_NAME;
END $$ LANGUAGE plpgsql;
"""

_PG_SUBJECTS = """
CREATE OR REPLACE FUNCTION vigie_journal_subjects() RETURNS trigger AS $$
BEGIN
  IF json_typeof(NEW.subject_pseudonyms) = 'array' THEN
    INSERT INTO journal_subjects (pseudonym, seq)
      SELECT DISTINCT p, NEW.seq FROM json_array_elements_text(NEW.subject_pseudonyms) AS p;
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER journal_personal_subjects AFTER INSERT ON journal_personal
  FOR EACH ROW EXECUTE FUNCTION vigie_journal_subjects();
"""

_SQLITE_SUBJECTS = """
CREATE TRIGGER journal_personal_subjects AFTER INSERT ON journal_personal
WHEN json_valid(NEW.subject_pseudonyms) AND json_type(NEW.subject_pseudonyms) = 'array'
BEGIN
  INSERT INTO journal_subjects (pseudonym, seq)
    SELECT DISTINCT value, NEW.seq FROM json_each(NEW.subject_pseudonyms);
END
"""

_PG_BACKFILL = """
INSERT INTO journal_subjects (pseudonym, seq)
  SELECT DISTINCT s.p, jp.seq FROM journal_personal jp,
    json_array_elements_text(jp.subject_pseudonyms) AS s(p)
  WHERE json_typeof(jp.subject_pseudonyms) = 'array'
"""

_SQLITE_BACKFILL = """
INSERT INTO journal_subjects (pseudonym, seq)
  SELECT DISTINCT j.value, jp.seq FROM journal_personal jp, json_each(jp.subject_pseudonyms) j
  WHERE json_valid(jp.subject_pseudonyms) AND json_type(jp.subject_pseudonyms) = 'array'
"""


def upgrade() -> None:
    op.create_table(
        "journal_nodes",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "journal_checkpoints",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "journal_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("integrated_size", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=True),
        sa.CheckConstraint("id = 1", name="single_row"),
    )
    op.execute("INSERT INTO journal_state (id, integrated_size) VALUES (1, 0)")
    op.create_table(
        "journal_subjects",
        sa.Column("pseudonym", sa.Text, primary_key=True),
        sa.Column(
            "seq",
            sa.BigInteger,
            sa.ForeignKey("journal_personal.seq", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
    )
    op.create_index("ix_journal_subjects_seq", "journal_subjects", ["seq"])
    op.create_table(
        "journal_erasures",
        sa.Column(
            "event_seq",
            sa.BigInteger,
            sa.ForeignKey("journal_events.seq"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("cutoff", UTCDateTime, nullable=False),
        sa.Column("erased_count", sa.BigInteger, nullable=False),
        sa.Column("erased_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_journal_events_unintegrated",
        "journal_events",
        ["seq"],
        postgresql_where=sa.text("leaf_index IS NULL"),
        sqlite_where=sa.text("leaf_index IS NULL"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
        for table in _INSERT_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_insert_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION vigie_journal_insert_only()"
            )
        op.execute(_PG_SUBJECTS)
        op.execute(_PG_BACKFILL)
    else:
        for table in _INSERT_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is insert-only'); END"
                )
        op.execute(_SQLITE_SUBJECTS)
        op.execute(_SQLITE_BACKFILL)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS journal_personal_subjects ON journal_personal")
        op.execute("DROP FUNCTION IF EXISTS vigie_journal_subjects()")
        for table in _INSERT_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_insert_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS vigie_journal_insert_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS journal_personal_subjects")
    op.drop_index("ix_journal_events_unintegrated", table_name="journal_events")
    op.drop_table("journal_erasures")
    op.drop_index("ix_journal_subjects_seq", table_name="journal_subjects")
    op.drop_table("journal_subjects")
    op.drop_table("journal_state")
    op.drop_table("journal_checkpoints")
    op.drop_table("journal_nodes")

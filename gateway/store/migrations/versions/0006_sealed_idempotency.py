"""Idempotency answers are sealed and name their resource (erasable with it).

Revision ID: 0006_sealed_idempotency
Revises: 0001_foundation
Create Date: 2026-12-01

- ``idempotency_keys.subject_ref``: the resource an answer is about (``suspicions/<id>``);
  erasing the resource erases its stored answers.
- ``idempotency_keys.response`` now holds a sealed answer. Answers stored before this
  revision were in clear: they are deleted here (they only served retries; a retry after the
  upgrade is executed again and refused by the resource's own rules if it no longer applies).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_sealed_idempotency"
down_revision = "0001_foundation"
branch_labels = ("foundation",)
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM idempotency_keys")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("subject_ref", sa.String(100), nullable=True))
        batch.create_index("ix_idempotency_keys_subject_ref", ["subject_ref"])


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_index("ix_idempotency_keys_subject_ref")
        batch.drop_column("subject_ref")
    op.execute("DELETE FROM idempotency_keys")  # sealed answers mean nothing to the old code

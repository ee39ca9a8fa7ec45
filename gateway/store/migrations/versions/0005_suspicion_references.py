"""Suspicion exchange: the recipient's own case reference and the principal of each transition.

Revision ID: 0005_suspicion_references
Revises: 0002_suspicions
Create Date: 2026-12-01

- ``suspicion_recipients.case_reference``: the reference a recipient attaches when it
  acknowledges a shared suspicion (returned to it, and only to it, as the suspicion's
  ``case_reference``); erased with the payload when the person is cleared.
- ``suspicion_transitions.actor_principal``: the certificate subject that made the change
  (who/when/why of each lifecycle step, issue 4).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_suspicion_references"
down_revision = "0002_suspicions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("suspicion_recipients") as batch:
        batch.add_column(sa.Column("case_reference", sa.String(64), nullable=True))
    with op.batch_alter_table("suspicion_transitions") as batch:
        batch.add_column(sa.Column("actor_principal", sa.String(512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("suspicion_transitions") as batch:
        batch.drop_column("actor_principal")
    with op.batch_alter_table("suspicion_recipients") as batch:
        batch.drop_column("case_reference")

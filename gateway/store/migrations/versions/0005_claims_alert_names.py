"""Claims: every alert gets an opaque public id (its resource name ``alerts/{public_id}``).

Revision ID: 0005_claims_alert_names
Revises: 0003_claims
Create Date: 2026-12-01

Alert resource names must not be the row's sequential id: consecutive ids would tell a member
how many alerts were raised for others in between. Existing rows (if any) get ``al_<id>``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_claims_alert_names"
down_revision = "0003_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("public_id", sa.String(40), nullable=True))
    op.execute("UPDATE alerts SET public_id = 'al_' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column("public_id", existing_type=sa.String(40), nullable=False)
    op.create_index("ix_alerts_public_id", "alerts", ["public_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_alerts_public_id", table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("public_id")

"""leads.one_per_number and the partial unique index uq_leads_one_active_number: one active call request
per site and number, refused by the database however many processes race

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# As in dialer/db/models.py at this revision (a migration keeps its own copy: the model may move on).
WHERE = (
    "one_per_number AND kind = 'call' "
    "AND status IN ('calling_manager', 'calling_visitor', 'connected', 'queued', 'scheduled')"
)


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("one_per_number", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Leads written before this revision keep one_per_number false: two active ones for a number (which
    # the old check let through under load) must not stop the upgrade.
    op.create_index(
        "uq_leads_one_active_number",
        "leads",
        ["site_id", "phone"],
        unique=True,
        sqlite_where=sa.text(WHERE),
        postgresql_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index("uq_leads_one_active_number", table_name="leads")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("one_per_number")

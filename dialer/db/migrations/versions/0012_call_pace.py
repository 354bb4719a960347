"""call_legs.starts_at (when the provider starts placing the call), call_pace (the shared call pacer's
next free slot per provider account, when no Redis is configured)

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_legs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "call_pace",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("call_pace")
    with op.batch_alter_table("call_legs", schema=None) as batch_op:
        batch_op.drop_column("starts_at")

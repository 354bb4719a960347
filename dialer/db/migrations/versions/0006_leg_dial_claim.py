"""call_legs.dial_claimed_at, dial_claimed_by: which engine took a leg to dial, and when (exactly-once dialing)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_legs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dial_claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("dial_claimed_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_legs", schema=None) as batch_op:
        batch_op.drop_column("dial_claimed_by")
        batch_op.drop_column("dial_claimed_at")

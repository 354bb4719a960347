"""call_legs.starts_at (when the provider starts placing the call), call_pace (the shared call pacer's
next free slot per provider account, when no Redis is configured), text_messages (each text sent to a
visitor: result, sid, delivery status, price), sms_opt_outs (numbers that replied STOP), provider_jobs
(price fetches that outlive a restart)

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
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
    op.create_table(
        "text_messages",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("lead_id", sa.String(length=32), sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("error_code", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("price", sa.Numeric(12, 5), nullable=True),
        sa.Column("price_unit", sa.String(length=3), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_text_messages_lead_id", "text_messages", ["lead_id"])
    op.create_index("ix_text_messages_provider_sid", "text_messages", ["provider_sid"])
    op.create_table(
        "provider_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("leg_id", sa.String(length=32), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "subject", name="uq_provider_jobs_subject"),
    )
    op.create_index("ix_provider_jobs_due", "provider_jobs", ["done_at", "due_at"])
    op.create_table(
        "sms_opt_outs",
        sa.Column("phone", sa.String(length=20), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("keyword", sa.String(length=16), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sms_opt_outs")
    op.drop_index("ix_provider_jobs_due", table_name="provider_jobs")
    op.drop_table("provider_jobs")
    op.drop_index("ix_text_messages_provider_sid", table_name="text_messages")
    op.drop_index("ix_text_messages_lead_id", table_name="text_messages")
    op.drop_table("text_messages")
    op.drop_table("call_pace")
    with op.batch_alter_table("call_legs", schema=None) as batch_op:
        batch_op.drop_column("starts_at")

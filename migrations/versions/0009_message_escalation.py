"""Escalation of unacknowledged urgent messages: the customer's wait, and each message's
step and due time

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Nullable columns only, added with ALTER TABLE ADD COLUMN (no table rebuild on SQLite,
where ``customers`` and ``messages`` are referenced by other tables); existing
customers keep today's behaviour (no escalation) and existing messages are not
escalating. The downgrade drops them with ALTER TABLE DROP COLUMN (SQLite >= 3.35), the
index first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("customers", sa.Column("escalate_after_min", sa.Integer(), nullable=True))
    op.add_column("messages", sa.Column("escalation_step", sa.Integer(), nullable=True))
    op.add_column("messages", sa.Column("escalate_at", TS, nullable=True))
    op.create_index(op.f("ix_messages_escalate_at"), "messages", ["escalate_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_messages_escalate_at"), table_name="messages")
    op.drop_column("messages", "escalate_at")
    op.drop_column("messages", "escalation_step")
    op.drop_column("customers", "escalate_after_min")

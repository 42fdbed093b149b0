"""The greeting an agent says when answering for a customer, and indexes for the
screen pop's "last calls and messages from this number"

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

One nullable column: ``customers.greeting``, a one-line template with ``{kunde}``,
``{agent}`` and ``{hilsen}`` (domain/desk_live.py); None means the default
"{kunde}, dette er {agent}". Added with ``add_column`` so SQLite does not rebuild the
table the others reference.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("greeting", sa.String(length=200), nullable=True))
    op.create_index(
        op.f("ix_calls_customer_id_caller_number_arrived_at"),
        "calls",
        ["customer_id", "caller_number", "arrived_at"],
    )
    op.create_index(
        op.f("ix_messages_customer_id_caller_number_taken_at"),
        "messages",
        ["customer_id", "caller_number", "taken_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_messages_customer_id_caller_number_taken_at"), "messages")
    op.drop_index(op.f("ix_calls_customer_id_caller_number_arrived_at"), "calls")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("greeting")

"""Prices for billing on customers; report_deliveries records what ``reports send`` did

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

Added columns have server defaults (0 øre), so SQLite adds them without a table rebuild.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PRICES = ("monthly_fee_ore", "call_price_ore", "message_price_ore", "booking_day_price_ore")


def upgrade() -> None:
    for column in _PRICES:
        op.add_column(
            "customers",
            sa.Column(column, sa.Integer(), server_default=sa.text("0"), nullable=False),
        )
    op.create_table(
        "report_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("interval", sa.String(length=32), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("ck_report_deliveries_status")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_report_deliveries_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_deliveries")),
        sa.UniqueConstraint(
            "customer_id",
            "first_day",
            "last_day",
            name=op.f("uq_report_deliveries_customer_id_first_day_last_day"),
        ),
    )


def downgrade() -> None:
    op.drop_table("report_deliveries")
    with op.batch_alter_table("customers") as batch:
        for column in _PRICES:
            batch.drop_column(column)

"""sla_aggregates: hourly and daily SLA figures per customer, stored by ``sla nightly``

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10

A new table only; nothing existing changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sla_aggregates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("by", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("definition_version", sa.Integer(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("\"by\" IN ('hour', 'day')", name=op.f("ck_sla_aggregates_by")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_sla_aggregates_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_aggregates")),
        sa.UniqueConstraint(
            "customer_id",
            "by",
            "period_start",
            name=op.f("uq_sla_aggregates_customer_id_by_period_start"),
        ),
    )
    op.create_index(
        op.f("ix_sla_aggregates_customer_id_by_local_date"),
        "sla_aggregates",
        ["customer_id", "by", "local_date"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sla_aggregates_customer_id_by_local_date"), table_name="sla_aggregates")
    op.drop_table("sla_aggregates")

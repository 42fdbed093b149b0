"""operations: SLA targets and report schedule per customer, report addresses, agent
phone secret and static contact

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08

Existing customers get the design's default targets (SL12 70 %, SL20 90 %, lost 5 %) and
no reports; existing agents get no secret (their phones cannot register until the
operator sets one) and no static contact. Only plain ALTER TABLE ADD/DROP COLUMN (dropping
needs SQLite 3.35 or later) and a new table; nothing is rebuilt.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def customer_columns() -> list[sa.Column[object]]:
    # New Column objects each time: a Column belongs to one table once added.
    return [
        sa.Column("sl12_target", sa.Double(), server_default=sa.text("70"), nullable=False),
        sa.Column("sl20_target", sa.Double(), server_default=sa.text("90"), nullable=False),
        sa.Column("lost_target", sa.Double(), server_default=sa.text("5"), nullable=False),
        sa.Column("report_interval", sa.String(length=32), server_default="none", nullable=False),
    ]


def agent_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("secret", sa.String(length=128), nullable=True),
        sa.Column("contact", sa.String(length=255), nullable=True),
    ]


def upgrade() -> None:
    for column in customer_columns():
        op.add_column("customers", column)
    for column in agent_columns():
        op.add_column("agents", column)
    op.create_table(
        "customer_report_emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_report_emails_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_report_emails")),
        sa.UniqueConstraint(
            "customer_id", "email", name=op.f("uq_customer_report_emails_customer_id_email")
        ),
    )


def downgrade() -> None:
    op.drop_table("customer_report_emails")
    for column in reversed(agent_columns()):
        op.drop_column("agents", column.name)
    for column in reversed(customer_columns()):
        op.drop_column("customers", column.name)

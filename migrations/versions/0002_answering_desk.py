"""answering desk: customer rules and agreement, shared entry numbers, service hours,
bookings, agent state, messages

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Existing customers get the service's defaults (server defaults); existing agents start
logged out. Columns are added and dropped with plain ALTER TABLE (dropping needs SQLite
3.35 or later); only ``customer_numbers`` is rebuilt on SQLite (batch mode), to swap its
unique constraint. Downgrading fails while two customers share a DID.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FORWARDED_FROM = sa.text("kind = 'forwarded_from'")


def customer_columns() -> list[sa.Column[object]]:
    # New Column objects each time: a Column belongs to one table once added.
    return [
        sa.Column("hold_style", sa.String(length=32), server_default="ringing", nullable=False),
        sa.Column("hold_media", sa.String(length=255), nullable=True),
        sa.Column("wrap_up_s", sa.Double(), nullable=True),
        sa.Column("max_wait_s", sa.Double(), server_default=sa.text("45"), nullable=False),
        sa.Column("answer_target_s", sa.Double(), server_default=sa.text("12"), nullable=False),
        sa.Column("closed_action", sa.String(length=32), server_default="message", nullable=False),
        sa.Column("outside_policy", sa.String(length=32), server_default="message", nullable=False),
        sa.Column("message_prompt", sa.String(length=255), nullable=True),
        sa.Column("agreement_start", sa.Date(), nullable=True),
        sa.Column("agreement_end", sa.Date(), nullable=True),
    ]


def agent_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("logged_in", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
    ]


def upgrade() -> None:
    for column in customer_columns():
        op.add_column("customers", column)
    for column in agent_columns():
        op.add_column("agents", column)

    # A DID may now be shared; a forwarded-from number still names one customer.
    with op.batch_alter_table("customer_numbers") as batch:
        batch.drop_index(op.f("ix_customer_numbers_customer_id"))
        batch.drop_constraint(op.f("uq_customer_numbers_number_kind"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_customer_numbers_customer_id_number_kind"),
            ["customer_id", "number", "kind"],
        )
    op.create_index(
        "uq_customer_numbers_forwarded_from_number",
        "customer_numbers",
        ["number"],
        unique=True,
        sqlite_where=FORWARDED_FROM,
        postgresql_where=FORWARDED_FROM,
    )

    op.create_table(
        "opening_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Time(), nullable=False),
        sa.Column("closes", sa.Time(), nullable=False),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_opening_hours_weekday")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_opening_hours_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opening_hours")),
    )
    op.create_index(op.f("ix_opening_hours_customer_id"), "opening_hours", ["customer_id"])
    op.create_table(
        "date_exceptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("opens", sa.Time(), nullable=True),
        sa.Column("closes", sa.Time(), nullable=True),
        sa.CheckConstraint(
            "(opens IS NULL) = (closes IS NULL)", name=op.f("ck_date_exceptions_hours")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_date_exceptions_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_date_exceptions")),
        sa.UniqueConstraint("customer_id", "day", name=op.f("uq_date_exceptions_customer_id_day")),
    )
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_bookings_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_bookings_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
    )
    op.create_index(
        op.f("ix_bookings_customer_id_starts_at"), "bookings", ["customer_id", "starts_at"]
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("caller_number", sa.String(length=64), nullable=True),
        sa.Column("file", sa.String(length=1024), nullable=False),
        sa.Column("duration_s", sa.Double(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("duration_s >= 0", name=op.f("ck_messages_duration")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_messages_call_id_calls")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_messages_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("call_id", name=op.f("uq_messages_call_id")),
    )
    op.create_index(op.f("ix_messages_customer_id"), "messages", ["customer_id"])


def downgrade() -> None:
    # Indexes go with their tables.
    op.drop_table("messages")
    op.drop_table("bookings")
    op.drop_table("date_exceptions")
    op.drop_table("opening_hours")

    op.drop_index("uq_customer_numbers_forwarded_from_number", table_name="customer_numbers")
    with op.batch_alter_table("customer_numbers") as batch:
        batch.drop_constraint(op.f("uq_customer_numbers_customer_id_number_kind"), type_="unique")
        batch.create_unique_constraint(op.f("uq_customer_numbers_number_kind"), ["number", "kind"])
        batch.create_index(op.f("ix_customer_numbers_customer_id"), ["customer_id"])

    for column in reversed(agent_columns()):
        op.drop_column("agents", column.name)
    for column in reversed(customer_columns()):
        op.drop_column("customers", column.name)

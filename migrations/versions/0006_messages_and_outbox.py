"""Messages for every kind (voice, message, order) with their log, forms, recipients and
the delivery outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

Existing rows of ``messages`` are callers' voice messages: they become ``kind = 'voice'``,
``status = 'new'`` (never delivered: nothing sent them before), ``taken_at`` = when they
were saved, each with one ``message_log`` row saying so. The unique key on ``call_id``
becomes a partial one (voice messages only): an agent may take several from one call.
SQLite rebuilds the table for that (batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column("order_price_ore", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(
            sa.Column(
                "voice_delivery", sa.String(length=32), server_default="attachment", nullable=False
            )
        )
    with op.batch_alter_table("messages", recreate="always") as batch:
        batch.drop_constraint("uq_messages_call_id", type_="unique")
        batch.alter_column("call_id", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("file", existing_type=sa.String(length=1024), nullable=True)
        batch.alter_column("duration_s", existing_type=sa.Double(), nullable=True)
        batch.add_column(
            sa.Column("kind", sa.String(length=32), server_default="voice", nullable=False)
        )
        batch.add_column(sa.Column("form_version", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("fields", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
        batch.add_column(sa.Column("agent_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("urgent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(
            sa.Column("status", sa.String(length=32), server_default="new", nullable=False)
        )
        batch.add_column(sa.Column("taken_at", TS, nullable=True))
        batch.create_foreign_key(
            op.f("fk_messages_agent_id_agents"), "agents", ["agent_id"], ["id"]
        )
    op.create_index(
        "uq_messages_voice_call_id",
        "messages",
        ["call_id"],
        unique=True,
        sqlite_where=sa.text("kind = 'voice'"),
        postgresql_where=sa.text("kind = 'voice'"),
    )
    op.create_index(
        op.f("ix_messages_customer_id_taken_at"), "messages", ["customer_id", "taken_at"]
    )
    op.execute("UPDATE messages SET taken_at = created_at WHERE taken_at IS NULL")

    op.create_table(
        "message_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("recipient", sa.String(length=255), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_log_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_log")),
    )
    op.create_index(op.f("ix_message_log_message_id"), "message_log", ["message_id"])
    op.execute(
        "INSERT INTO message_log (message_id, at, status, actor, result) "
        "SELECT id, created_at, 'new', 'migration 0006', 'voice message recorded' FROM messages"
    )

    op.create_table(
        "message_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_message_forms_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_forms")),
        sa.UniqueConstraint(
            "customer_id", "kind", "version", name=op.f("uq_message_forms_customer_id_kind_version")
        ),
    )
    op.create_table(
        "message_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("urgent_only", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("digest", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("position", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_message_recipients_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_recipients")),
        sa.UniqueConstraint(
            "customer_id",
            "channel",
            "address",
            name=op.f("uq_message_recipients_customer_id_channel_address"),
        ),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("message_key", sa.String(length=255), nullable=False),
        sa.Column("generation", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("batch_key", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider_ref", sa.String(length=128), nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'delivered', 'failed')",
            name=op.f("ck_outbox_state"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_outbox_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("message_key", name=op.f("uq_outbox_message_key")),
    )
    op.create_index(op.f("ix_outbox_message_id"), "outbox", ["message_id"])
    op.create_index(op.f("ix_outbox_provider_ref"), "outbox", ["provider_ref"])
    op.create_index(op.f("ix_outbox_batch_key"), "outbox", ["batch_key"])
    op.create_index(op.f("ix_outbox_state_due_at"), "outbox", ["state", "due_at"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("message_recipients")
    op.drop_table("message_forms")
    op.drop_table("message_log")
    op.drop_index(op.f("ix_messages_customer_id_taken_at"), table_name="messages")
    op.drop_index("uq_messages_voice_call_id", table_name="messages")
    op.execute("DELETE FROM messages WHERE kind <> 'voice'")
    with op.batch_alter_table("messages", recreate="always") as batch:
        batch.drop_constraint(op.f("fk_messages_agent_id_agents"), type_="foreignkey")
        for column in ("taken_at", "status", "urgent", "agent_id", "fields", "form_version"):
            batch.drop_column(column)
        batch.drop_column("kind")
        batch.alter_column("duration_s", existing_type=sa.Double(), nullable=False)
        batch.alter_column("file", existing_type=sa.String(length=1024), nullable=False)
        batch.alter_column("call_id", existing_type=sa.Integer(), nullable=False)
        batch.create_unique_constraint("uq_messages_call_id", ["call_id"])
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("voice_delivery")
        batch.drop_column("order_price_ore")

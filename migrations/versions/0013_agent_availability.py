"""The agents' availability log (staffing backtest, forwarding watch's turn)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

``agent_availability``: one row per stretch of time an agent was ``available`` (logged
in, not paused), ``paused`` or ``logged_out``, from ``started_at`` until ``ended_at``
(None: still is; a partial unique index keeps one open row per agent). Written by
``serve`` (domain/availability.py, db/agent_log_repo.py). Existing installations start
with an empty log: ``serve`` opens each agent's first row from its stored state when it
next starts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agent_availability",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.CheckConstraint(
            "ended_at IS NULL OR ended_at >= started_at",
            name=op.f("ck_agent_availability_ends_after_start"),
        ),
        sa.CheckConstraint(
            "state IN ('available', 'paused', 'logged_out')",
            name=op.f("ck_agent_availability_state"),
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_availability_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_availability")),
    )
    op.create_index(
        op.f("ix_agent_availability_started_at"), "agent_availability", ["started_at"]
    )
    op.create_index(
        op.f("ix_agent_availability_agent_id_started_at"),
        "agent_availability",
        ["agent_id", "started_at"],
    )
    op.create_index(
        "uq_agent_availability_open",
        "agent_availability",
        ["agent_id"],
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_agent_availability_open", table_name="agent_availability")
    op.drop_index(
        op.f("ix_agent_availability_agent_id_started_at"), table_name="agent_availability"
    )
    op.drop_index(op.f("ix_agent_availability_started_at"), table_name="agent_availability")
    op.drop_table("agent_availability")

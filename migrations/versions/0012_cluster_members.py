"""Who stands by in leader-standby mode (issue 16)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

``cluster_members``: one row per lease name and holder, ``seen_at`` moved on (by the
database's clock) at each of a standby's tries to take the lease, so ``status`` can show
the standbys as well as the leader. Created on SQLite too, unused there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cluster_members",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", "holder", name=op.f("pk_cluster_members")),
    )


def downgrade() -> None:
    op.drop_table("cluster_members")

"""Leadership leases for leader-standby mode (issue 16)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

One table, ``cluster_leases``: a row per lease name with its holder, its generation
(the fencing token, bumped at each takeover) and its expiry by the database's clock
(cluster/leadership.py). Created on SQLite too, where it stays unused: leader-standby
mode needs PostgreSQL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cluster_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("renewed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cluster_leases")),
    )


def downgrade() -> None:
    op.drop_table("cluster_leases")

"""The customers' knowledge base: pages, their versions, and Norwegian full-text search

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

New tables only. Search differs per database (``db/models.py``, "knowledge base"):
SQLite gets an FTS5 table ``kb_search`` of stemmed text, which the repository fills
(Python stems: FTS5 has no Norwegian stemmer), and a trigger that removes a page's row
when the page goes; PostgreSQL gets a GIN index on ``to_tsvector('norwegian', ...)``.
Both are outside the models, so their names are spelled out here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "kb_pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.Column("last_reviewed_at", TS, nullable=False),
        sa.Column("last_reviewed_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_kb_pages_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_pages")),
    )
    op.create_index(op.f("ix_kb_pages_customer_id"), "kb_pages", ["customer_id"])

    op.create_table(
        "kb_page_versions",
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("saved_at", TS, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["kb_pages.id"],
            name=op.f("fk_kb_page_versions_page_id_kb_pages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_kb_page_versions_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("page_id", "version", name=op.f("pk_kb_page_versions")),
    )

    if op.get_bind().dialect.name == "sqlite":
        # Words split as Python's domain.knowledge.words does (letters and digits);
        # diacritics kept: "å" is a letter of its own in Norwegian, not an "a".
        op.execute(
            "CREATE VIRTUAL TABLE kb_search USING fts5("
            "title, body, tokenize = 'unicode61 remove_diacritics 0')"
        )
        op.execute(
            "CREATE TRIGGER kb_pages_search_delete AFTER DELETE ON kb_pages "
            "BEGIN DELETE FROM kb_search WHERE rowid = old.id; END"
        )
    elif op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_kb_pages_search ON kb_pages USING gin "
            "(to_tsvector('norwegian'::regconfig, title || ' ' || body))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS kb_pages_search_delete")
        op.execute("DROP TABLE IF EXISTS kb_search")
    op.drop_table("kb_page_versions")
    op.drop_table("kb_pages")  # PostgreSQL drops ix_kb_pages_search with it

"""Alembic environment: async engines (aiosqlite, asyncpg), models from televikar_pbx.

The URL comes from ``-x url=...``, else ``config.attributes["url"]`` (set by
``televikar_pbx.db.migrate``), else ``sqlalchemy.url``, else the televikar-pbx settings.
A caller that already holds a connection can pass it as ``config.attributes["connection"]``
(a sync ``Connection``, e.g. inside ``AsyncConnection.run_sync``).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from televikar_pbx.db.migrate import ensure_sqlite_parent
from televikar_pbx.db.models import KB_SEARCH_INDEX, KB_SEARCH_TABLE, Base, UTCDateTime
from televikar_pbx.settings import load_settings

config = context.config

# Called from code (tests, `televikar-pbx db upgrade`), the application owns logging.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    return url or load_settings().sqlalchemy_url


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Revisions must not import application code that changes later.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    # Search objects the migrations keep by hand, outside the models (db/models.py):
    # SQLite's FTS5 table with its shadow tables, PostgreSQL's GIN index.
    if type_ == "table" and name is not None:
        return name != KB_SEARCH_TABLE and not name.startswith(KB_SEARCH_TABLE + "_")
    return not (type_ == "index" and name == KB_SEARCH_INDEX)


def configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=render_item,
        include_name=include_name,
        **kwargs,
    )


def run_migrations_offline() -> None:
    url = database_url()
    configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "alembic env.py called inside a running event loop: run it in a thread, or pass "
            "a connection via AsyncConnection.run_sync and config.attributes['connection']"
        )
    url = database_url()
    ensure_sqlite_parent(url)
    asyncio.run(run_async_migrations(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

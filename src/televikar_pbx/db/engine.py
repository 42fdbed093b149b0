"""Async engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg).

Transactions: sessions from ``make_sessionmaker`` do not commit by themselves. Use
``async with sessionmaker.begin() as session: ...`` around one unit of work.

SQLite runs in WAL mode (readers do not block the writer) with foreign keys on and a
busy timeout. The sqlite3 driver's default ("legacy") transaction control is kept on
purpose: it begins a transaction only at the first INSERT/UPDATE/DELETE, so a unit of work
that reads first cannot fail with SQLITE_BUSY when upgrading its read snapshot to a write
lock. The price is that SAVEPOINTs do not nest properly on SQLite; we do not use them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 5_000


def _is_file_sqlite(url: URL) -> bool:
    # The aiosqlite dialect's own test for choosing a pool: StaticPool for memory databases.
    return bool(url.database) and url.database != ":memory:" and url.query.get("mode") != "memory"


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An AsyncEngine for ``url`` (``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``)."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        # File databases get AsyncAdaptedQueuePool (one aiosqlite thread per connection);
        # ":memory:" gets StaticPool (one shared connection) from the dialect.
        file_db = _is_file_sqlite(parsed)
        if file_db:
            kwargs.update(pool_size=5, max_overflow=0, pool_timeout=30)
        engine = create_async_engine(parsed, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect(wal=file_db))
        return engine
    kwargs.update(
        pool_size=5,
        max_overflow=5,
        pool_timeout=30,
        pool_pre_ping=True,  # the server or a proxy may have closed idle connections
        pool_recycle=1800,
    )
    return create_async_engine(parsed, **kwargs)


def _sqlite_on_connect(*, wal: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if wal:
                # journal_mode is persistent in the file; synchronous is per connection.
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    return on_connect


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after commit without a lazy reload,
    # which under asyncio would need an await that attribute access cannot do.
    return async_sessionmaker(engine, expire_on_commit=False)

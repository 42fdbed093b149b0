"""Database fixtures: every test gets a fresh database, migrated by the real alembic scripts.

``db_url`` runs each test twice, on SQLite (a file in tmp_path) and on PostgreSQL (a
database named per test, created through ``TELEVIKAR_TEST_PG_URL`` and dropped after).
Get that URL from ``bash tests/setup/postgres.sh``. Without it, or with the server down,
the PostgreSQL half fails; it never skips.

A fresh database costs ~40 ms on SQLite and ~150 ms on PostgreSQL (create, migrate,
drop), so tests commit for real instead of running inside a rolled-back transaction:
the code under test owns its transactions (``sessionmaker.begin()``), and SQLite's
driver cannot nest SAVEPOINTs in its default transaction mode.

Alembic's env.py and the admin connections run ``asyncio.run`` in a worker thread, away
from the event loop pytest-asyncio gives the test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from televikar_pbx.db import migrate
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from tests.helpers import in_thread, run_async

PG_URL_ENV = "TELEVIKAR_TEST_PG_URL"
T = TypeVar("T")


async def _pg_execute(url: URL, *statements: str) -> None:
    conn = await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port or 5432,
        database=url.database,
        timeout=5,
    )
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_admin_url() -> URL:
    """The URL of the test role's own database; per-test databases are made from it."""
    raw = os.environ.get(PG_URL_ENV)
    if not raw:
        pytest.fail(
            f"{PG_URL_ENV} is not set; run: export "
            f'{PG_URL_ENV}="$(bash tests/setup/postgres.sh | cut -d= -f2-)"',
            pytrace=False,
        )
    url = make_url(raw)
    try:
        run_async(lambda: _pg_execute(url, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        shown = url.render_as_string(hide_password=True)
        pytest.fail(f"PostgreSQL at {shown} ({PG_URL_ENV}) unreachable: {exc!r}", pytrace=False)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a new, empty database (no tables)."""
    if request.param == "sqlite":
        # A directory that does not exist yet: migrate.upgrade must create it.
        yield f"sqlite+aiosqlite:///{tmp_path / 'db' / 'televikar.sqlite3'}"
        return
    admin: URL = request.getfixturevalue("pg_admin_url")
    name = f"televikar_t_{uuid.uuid4().hex[:16]}"
    run_async(lambda: _pg_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        run_async(lambda: _pg_execute(admin, *_drop_database(name)))


def _drop_database(name: str) -> tuple[str, ...]:
    # A test that leaked a connection must not leave the database behind: end our own
    # sessions in it first. Not DROP .. WITH (FORCE): PostgreSQL 15 refuses that when an
    # autovacuum worker is in the database ("must be a member of the role whose process
    # is being terminated"); a plain DROP DATABASE stops autovacuum by itself.
    return (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE datname = '{name}' AND usename = current_user AND pid <> pg_backend_pid()",
        f'DROP DATABASE IF EXISTS "{name}"',
    )


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated to head by the real alembic migrations, per run."""
    path = tmp_path_factory.mktemp("template") / "televikar.sqlite3"
    in_thread(migrate.upgrade, f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _migrated_pg(pg_admin_url: URL) -> Iterator[str]:
    """The same on PostgreSQL: a template database that each test's database copies."""
    name = f"televikar_tmpl_{uuid.uuid4().hex[:12]}"
    run_async(lambda: _pg_execute(pg_admin_url, f'CREATE DATABASE "{name}"'))
    try:
        in_thread(
            migrate.upgrade, pg_admin_url.set(database=name).render_as_string(hide_password=False)
        )
        yield name
    finally:
        run_async(lambda: _pg_execute(pg_admin_url, *_drop_database(name)))


@pytest.fixture
def db_url(empty_db_url: str, request: pytest.FixtureRequest) -> str:
    """A URL to a new database migrated to head by the real alembic migrations: a copy
    of one migrated per run (a file copy on SQLite, ``CREATE DATABASE .. TEMPLATE`` on
    PostgreSQL), ~40x cheaper than migrating each (the migrations themselves are tested
    on empty databases in test_db.py)."""
    url = make_url(empty_db_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        target = Path(url.database)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("_migrated_sqlite"), target)
        return empty_db_url
    template: str = request.getfixturevalue("_migrated_pg")
    admin: URL = request.getfixturevalue("pg_admin_url")
    name = url.database
    run_async(
        lambda: _pg_execute(
            admin, f'DROP DATABASE "{name}"', f'CREATE DATABASE "{name}" TEMPLATE "{template}"'
        )
    )
    return empty_db_url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)

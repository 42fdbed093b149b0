"""Users, sessions, failed log-ins and the audit log against SQLite and PostgreSQL
(migration 0007, db.users_repo, db.audit_repo)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.db import migrate
from televikar_pbx.db.audit_repo import AuditRepository
from televikar_pbx.db.engine import make_engine
from televikar_pbx.db.repositories import Conflict, DirectoryRepository, NotFound
from televikar_pbx.db.users_repo import UserNotFound, UserRepository
from televikar_pbx.domain.audit import AuditAction, AuditRecord
from televikar_pbx.domain.auth import Role

Sessionmaker = async_sessionmaker[AsyncSession]
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
TABLES_0007 = {"users", "user_customers", "web_sessions", "login_failures", "audit_log"}


async def test_migration_0007_up_and_down(empty_db_url: str) -> None:
    async def tables() -> set[str]:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))

    engine = make_engine(empty_db_url)
    try:
        await asyncio.to_thread(migrate.upgrade, empty_db_url)
        assert await tables() >= TABLES_0007
        await asyncio.to_thread(migrate.downgrade, empty_db_url, "0006")
        left = await tables()
        assert not TABLES_0007 & left and "outbox" in left
        await asyncio.to_thread(migrate.upgrade, empty_db_url)
        await asyncio.to_thread(migrate.check, empty_db_url)
    finally:
        await engine.dispose()


async def _directory(sm: Sessionmaker) -> tuple[int, int, int]:
    repo = DirectoryRepository(sm)
    fjord = await repo.add_customer("Fjordbakst AS", "Fjordbakst", ["4721000001"])
    nordlys = await repo.add_customer("Nordlys AS", "Nordlys", ["4721000002"])
    kari = await repo.add_agent("Kari", "agent1", [fjord.id])
    return fjord.id, nordlys.id, kari.id


async def test_users_are_unique_without_regard_to_case(sessionmaker: Sessionmaker) -> None:
    fjord, nordlys, kari_agent = await _directory(sessionmaker)
    users = UserRepository(sessionmaker)
    kari = await users.add_user("Kari", "$argon2id$x", Role.AGENT, agent_id=kari_agent, now=T0)
    assert (kari.username, kari.role, kari.agent_id, kari.disabled) == (
        "Kari",
        Role.AGENT,
        kari_agent,
        False,
    )
    assert kari.created_at == T0 and kari.last_login_at is None
    with pytest.raises(Conflict, match="taken"):
        await users.add_user("KARI", "$argon2id$y", Role.ADMIN, now=T0)
    assert (await users.find_user("kARi")).id == kari.id
    found = await users.credentials("kari")
    assert found is not None and found[1] == "$argon2id$x"
    assert await users.credentials("per") is None
    with pytest.raises(UserNotFound):
        await users.find_user("per")

    anne = await users.add_user(
        "anne", "h", "account_manager", customer_ids=[fjord, nordlys], now=T0
    )
    assert anne.customer_ids == {fjord, nordlys}
    with pytest.raises(ValueError, match="account_manager"):
        await users.add_user("ola", "h", Role.AGENT, customer_ids=[fjord], now=T0)
    with pytest.raises(NotFound):
        await users.add_user("ola", "h", Role.AGENT, agent_id=999, now=T0)
    with pytest.raises(NotFound):
        await users.add_user("ola", "h", Role.ACCOUNT_MANAGER, customer_ids=[999], now=T0)
    with pytest.raises(ValueError, match="username"):
        await users.add_user("ola nordmann", "h", Role.AGENT, now=T0)
    assert [u.username for u in await users.list_users()] == ["anne", "Kari"]
    assert await users.agent_customer_ids(kari_agent) == {fjord}

    await users.record_login(kari.id, T0 + dt.timedelta(hours=1))
    await users.set_disabled(kari.id, True)
    again = await users.get_user(kari.id)
    assert again.disabled and again.last_login_at == T0 + dt.timedelta(hours=1)
    assert await users.rehash_password(kari.id, "$argon2id$x", "$argon2id$new")
    assert not await users.rehash_password(kari.id, "$argon2id$x", "$argon2id$other")
    await users.set_password_hash(kari.id, "$argon2id$set", T0)
    assert (await users.credentials("kari") or (None, ""))[1] == "$argon2id$set"


async def test_sessions_and_failures(sessionmaker: Sessionmaker) -> None:
    users = UserRepository(sessionmaker)
    kari = await users.add_user("kari", "h", Role.AGENT, now=T0)
    secret = bytes(range(32))
    made = await users.create_session("a" * 64, kari.id, secret, T0, "127.0.0.1")
    found = await users.session_by_token("a" * 64)
    assert found == made and found.csrf_secret == secret and found.last_seen_at == T0
    await users.touch_session(made.id, T0 + dt.timedelta(minutes=5))
    assert (await users.session_by_token("a" * 64)).last_seen_at == T0 + dt.timedelta(minutes=5)  # type: ignore[union-attr]
    await users.create_session("b" * 64, kari.id, secret, T0)
    with pytest.raises(Conflict):
        await users.create_session("b" * 64, kari.id, secret, T0)
    await users.delete_session(made.id)
    assert await users.session_by_token("a" * 64) is None
    assert await users.delete_sessions_of(kari.id) == 1
    assert await users.session_by_token("b" * 64) is None

    await users.add_failures(["user:kari", "addr:10.0.0.1"], T0)
    await users.add_failures(["user:kari"], T0 + dt.timedelta(minutes=10))
    got = await users.failures_since(["user:kari", "addr:10.0.0.1", "user:per"], T0)
    assert got == {
        "user:kari": [T0, T0 + dt.timedelta(minutes=10)],
        "addr:10.0.0.1": [T0],
        "user:per": [],
    }
    # Older failures are forgotten once asked past them.
    later = await users.failures_since(["user:kari"], T0 + dt.timedelta(minutes=5))
    assert later == {"user:kari": [T0 + dt.timedelta(minutes=10)]}
    assert (await users.failures_since(["user:kari"], T0))["user:kari"] == [
        T0 + dt.timedelta(minutes=10)
    ]
    await users.clear_failures("user:kari")
    assert (await users.failures_since(["user:kari"], T0))["user:kari"] == []


async def test_audit_log_filters(sessionmaker: Sessionmaker) -> None:
    fjord, nordlys, _ = await _directory(sessionmaker)
    kari = await UserRepository(sessionmaker).add_user("kari", "h", Role.AGENT, now=T0)
    audit = AuditRepository(sessionmaker)
    hour = dt.timedelta(hours=1)
    await audit.record(AuditRecord(T0, AuditAction.LOGIN, kari.id, "kari", address="::1"))
    await audit.record(
        AuditRecord(T0 + hour, AuditAction.VIEW_MESSAGE, kari.id, "kari", fjord, "17")
    )
    await audit.record(
        AuditRecord(T0 + 2 * hour, AuditAction.VIEW_KB_PAGE, kari.id, "kari", nordlys, "3")
    )
    await audit.record(AuditRecord(T0 + 3 * hour, AuditAction.LOGIN_FAILED, None, "Per_x"))

    every = await audit.list_entries()
    assert [e.action for e in every] == [
        AuditAction.LOGIN,
        AuditAction.VIEW_MESSAGE,
        AuditAction.VIEW_KB_PAGE,
        AuditAction.LOGIN_FAILED,
    ]
    assert every[1].customer_id == fjord and every[1].object_id == "17" and every[1].at == T0 + hour
    assert len(await audit.list_entries(user_id=kari.id)) == 3
    assert [e.object_id for e in await audit.list_entries(customer_id=nordlys)] == ["3"]
    window = await audit.list_entries(since=T0 + hour, until=T0 + 2 * hour)
    assert [e.action for e in window] == [AuditAction.VIEW_MESSAGE]
    assert [e.username for e in await audit.list_entries(username="per_X")] == ["Per_x"]
    assert await audit.list_entries(username="per%") == ()
    assert [e.action for e in await audit.list_entries(limit=2)] == [
        AuditAction.VIEW_KB_PAGE,
        AuditAction.LOGIN_FAILED,
    ]

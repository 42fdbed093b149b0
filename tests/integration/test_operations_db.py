"""Migration 0003 and the repository methods behind the operator's command line: report
settings, customer updates, look-ups by name/id/endpoint, agent secrets (SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.db import migrate
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import (
    KEEP,
    AgentCredentials,
    Conflict,
    DirectoryRepository,
    NotFound,
)
from televikar_pbx.domain.calendar import Agreement, DateException, OpeningHours
from televikar_pbx.domain.directory import CustomerRules, HoldStyle
from televikar_pbx.domain.reporting import ReportInterval, ReportSettings

Sessionmaker = async_sessionmaker[AsyncSession]
REPORT = ReportSettings(80, 95, 3, ReportInterval.MONTHLY, ("a@x.no", "b@x.no"))


async def test_report_settings_round_trip(sessionmaker: Sessionmaker) -> None:
    repo = DirectoryRepository(sessionmaker)
    a = await repo.add_customer("A AS", "A", ["4721000001"], report=REPORT)
    b = await repo.add_customer("B AS", "B", ["4721000002"])
    assert await repo.report_settings(a.id) == REPORT
    assert await repo.all_report_settings() == {a.id: REPORT, b.id: ReportSettings()}
    with pytest.raises(NotFound, match="999"):
        await repo.report_settings(999)
    with pytest.raises(ValueError, match="sl12_target"):
        ReportSettings(sl12_target=101)
    with pytest.raises(ValueError, match="twice"):
        ReportSettings(emails=("a@x.no", "a@x.no"))


async def test_update_customer_replaces_what_is_given(sessionmaker: Sessionmaker) -> None:
    repo = DirectoryRepository(sessionmaker)
    added = await repo.add_customer(
        "A AS",
        "A",
        ["4721000001", "4721000002"],
        forwarded_from=["4755500001"],
        agreement=Agreement(dt.date(2026, 1, 1)),
        hours=[OpeningHours(0, dt.time(8), dt.time(16))],
        exceptions=[DateException(dt.date(2026, 12, 24))],
        report=REPORT,
    )
    await repo.add_booking(added.id, dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
                           dt.datetime(2026, 3, 2, tzinfo=dt.UTC))  # fmt: skip
    updated = await repo.update_customer(added.id, numbers=["4721000003"], name="A2 AS")
    assert (updated.name, updated.numbers, updated.forwarded_from) == (
        "A2 AS",
        ("4721000003",),
        ("4755500001",),
    )
    assert updated.calendar.hours == added.calendar.hours  # not given: kept
    assert updated.calendar.agreement == Agreement(dt.date(2026, 1, 1))
    assert len(updated.calendar.bookings) == 1
    assert await repo.report_settings(added.id) == REPORT

    rules = CustomerRules(hold_style=HoldStyle.MUSIC, wrap_up_s=5)
    updated = await repo.update_customer(
        added.id,
        rules=rules,
        agreement=None,
        hours=[],
        exceptions=[],
        report=ReportSettings(),
        forwarded_from=[],
    )
    assert updated.rules == rules
    assert updated.calendar.agreement is None and updated.calendar.hours == ()
    assert updated.calendar.exceptions == () and updated.forwarded_from == ()
    assert await repo.report_settings(added.id) == ReportSettings()
    assert (await repo.update_customer(added.id, agreement=KEEP)) == updated
    with pytest.raises(NotFound, match="999"):
        await repo.update_customer(999, display_name="x")


async def test_a_failed_update_writes_nothing(sessionmaker: Sessionmaker) -> None:
    repo = DirectoryRepository(sessionmaker)
    a = await repo.add_customer("A AS", "A", ["4721000001"], forwarded_from=["4755500001"])
    b = await repo.add_customer("B AS", "B", ["4721000002"])
    before = await repo.load()
    # The DIDs are replaced before the forwarded-from clash is found: all rolled back.
    with pytest.raises(Conflict, match="4755500001 belongs to customer 'A AS'"):
        await repo.update_customer(b.id, numbers=["4721000009"], forwarded_from=["4755500001"])
    with pytest.raises(Conflict, match="a customer named 'A AS' exists already"):
        await repo.update_customer(b.id, name="A AS", hours=[])
    with pytest.raises(Conflict, match="given twice"):
        await repo.update_customer(a.id, numbers=["4721000005", "4721000005"])
    assert await repo.load() == before


async def test_find_customer_and_agent(sessionmaker: Sessionmaker) -> None:
    repo = DirectoryRepository(sessionmaker)
    a = await repo.add_customer("Fjordbakst AS", "F", ["4721000001"])
    b = await repo.add_customer("2", "Named like an id", ["4721000002"])
    assert await repo.find_customer("Fjordbakst AS") == a
    assert await repo.find_customer("fjordbakst as") == a
    assert await repo.find_customer(str(a.id)) == a
    assert await repo.find_customer("2") == b  # the name wins over the id
    with pytest.raises(NotFound, match="give its name or id"):
        await repo.find_customer("Nobody")

    kari = await repo.add_agent("Kari", "agent1", [a.id])
    odd = await repo.add_agent("Odd", str(kari.id), [a.id])  # endpoint "1"
    twin = await repo.add_agent("Kari", "agent3")
    assert await repo.find_agent("agent1") == kari
    assert await repo.find_agent(str(kari.id)) == odd  # the endpoint wins over the id
    assert await repo.find_agent(str(twin.id)) == twin
    assert await repo.find_agent("Odd") == odd
    with pytest.raises(NotFound, match="2 agents are named 'Kari'"):
        await repo.find_agent("Kari")
    with pytest.raises(NotFound, match="no agent 'nobody'"):
        await repo.find_agent("nobody")
    assert await repo.list_agents() == (kari, odd, twin)
    assert await repo.get_agent(twin.id) == twin
    with pytest.raises(NotFound):
        await repo.get_agent(999)


async def test_agent_secret_and_contact(sessionmaker: Sessionmaker) -> None:
    repo = DirectoryRepository(sessionmaker)
    kari = await repo.add_agent("Kari", "agent1", secret="s3cret-s3cret", contact="sip:k@h")
    ola = await repo.add_agent("Ola", "agent2")
    assert await repo.agent_credentials() == (
        AgentCredentials(kari.id, "agent1", "s3cret-s3cret", "sip:k@h"),
        AgentCredentials(ola.id, "agent2", None, None),
    )
    await repo.set_agent_secret(ola.id, "another-secret")
    credentials = await repo.agent_credentials()
    assert credentials[1].secret == "another-secret"
    assert "another-secret" not in repr(credentials)
    with pytest.raises(NotFound, match="999"):
        await repo.set_agent_secret(999, "x" * 12)
    with pytest.raises(ValueError, match="empty"):
        await repo.set_agent_secret(ola.id, "")
    with pytest.raises(Conflict, match="endpoint 'agent1' belongs to agent 'Kari'"):
        await repo.add_agent("Kari 2", "agent1")


def _sql(url: str, *statements: str) -> list[object]:
    async def run() -> list[object]:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                results = [await conn.execute(text(s)) for s in statements]
                return [r.scalar() if r.returns_rows else None for r in results]
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def test_migration_0003_gives_existing_rows_the_defaults(empty_db_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_db_url, "0002")
    await asyncio.to_thread(
        _sql,
        empty_db_url,
        "INSERT INTO customers (name, display_name) VALUES ('A AS', 'A')",
        "INSERT INTO agents (name, endpoint) VALUES ('Kari', 'agent1')",
    )
    await asyncio.to_thread(migrate.upgrade, empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        repo = DirectoryRepository(make_sessionmaker(engine))
        assert await repo.all_report_settings() == {1: ReportSettings()}
        assert await repo.agent_credentials() == (AgentCredentials(1, "agent1", None, None),)
        await repo.update_customer(1, report=REPORT)
        await repo.set_agent_secret(1, "s3cret-s3cret")
    finally:
        await engine.dispose()
    await asyncio.to_thread(migrate.downgrade, empty_db_url, "0002")
    names = await asyncio.to_thread(
        _sql, empty_db_url, "SELECT name FROM customers", "SELECT endpoint FROM agents"
    )
    assert names == ["A AS", "agent1"]
    await asyncio.to_thread(migrate.upgrade, empty_db_url)
    await asyncio.to_thread(migrate.check, empty_db_url)

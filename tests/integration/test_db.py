"""Models, migrations and repositories against SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, inspect, select, text, type_coerce
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from televikar_pbx.db import migrate, models
from televikar_pbx.db.demo import load_demo
from televikar_pbx.db.engine import make_engine
from televikar_pbx.db.records import CallOutcome, CallRecord
from televikar_pbx.db.repositories import (
    CallNotFound,
    CallRepository,
    CallStoreRepository,
    Conflict,
    DirectoryRepository,
    MessageNotFound,
    MessageRepository,
    NotFound,
    load_directory,
)
from televikar_pbx.domain.calendar import Agreement

Sessionmaker = async_sessionmaker[AsyncSession]
OSLO = ZoneInfo("Europe/Oslo")
T0 = dt.datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=dt.UTC)
REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES_0001 = {"customers", "customer_numbers", "agents", "agent_customers", "calls", "call_events"}
TABLES_0002 = {"opening_hours", "date_exceptions", "bookings", "messages"}
TABLES = TABLES_0001 | TABLES_0002


async def _table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _new_call(
    sm: Sessionmaker, channel_id: str = "1700000000.1", customer_id: int | None = None
) -> int:
    async with sm.begin() as session:
        return await CallRepository(session).create_call(
            channel_id, channel_id, customer_id, "4721000001", "4799999999", "Per", T0
        )


# --- migrations ---------------------------------------------------------------------


async def test_migrations_upgrade_check_downgrade(empty_db_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_db_url)
    await asyncio.to_thread(migrate.check, empty_db_url)  # models == migrated schema
    engine = make_engine(empty_db_url)
    try:
        assert await _table_names(engine) >= TABLES
        await asyncio.to_thread(migrate.downgrade, empty_db_url, "0001")
        assert TABLES & await _table_names(engine) == TABLES_0001
        await asyncio.to_thread(migrate.upgrade, empty_db_url)
        await asyncio.to_thread(migrate.check, empty_db_url)
        await asyncio.to_thread(migrate.downgrade, empty_db_url, "base")
        assert not TABLES & await _table_names(engine)
        await asyncio.to_thread(migrate.upgrade, empty_db_url)
        await asyncio.to_thread(migrate.check, empty_db_url)
    finally:
        await engine.dispose()


def test_alembic_command_line_upgrade_and_check(empty_db_url: str) -> None:
    alembic = [sys.executable, "-m", "alembic", "-c", "migrations/alembic.ini"]
    for args in (["upgrade", "head"], ["check"]):
        done = subprocess.run(
            [*alembic, "-x", f"url={empty_db_url}", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert "No new upgrade operations detected" in done.stdout


# --- timestamps ---------------------------------------------------------------------


async def test_timestamps_round_trip_as_aware_utc(sessionmaker: Sessionmaker) -> None:
    arrived = dt.datetime(2026, 7, 1, 10, 15, 30, 654321, tzinfo=OSLO)  # summer: +02:00
    async with sessionmaker.begin() as session:
        call_id = await CallRepository(session).create_call(
            "c1", "c1", None, "4721000009", None, None, arrived
        )
    async with sessionmaker() as session:
        call = await CallRepository(session).get_call(call_id)
        # Compared in SQL: the bound value goes through UTCDateTime as well.
        found = await session.scalar(
            select(models.Call.id).where(
                models.Call.arrived_at == arrived.astimezone(dt.timezone(dt.timedelta(hours=-5)))
            )
        )
    assert call.arrived_at == arrived
    assert call.arrived_at.utcoffset() == dt.timedelta(0)
    assert call.arrived_at.replace(tzinfo=None) == dt.datetime(2026, 7, 1, 8, 15, 30, 654321)
    assert found == call_id


async def _db_now(sm: Sessionmaker) -> dt.datetime:
    """The database's own clock (what a server default reads), not this process's: the
    two are different clocks (PostgreSQL is another process; the suite may run with this
    process's clock moved, tests/setup/shifted-clock.sh)."""
    async with sm() as session:
        now = await session.scalar(select(type_coerce(func.now(), models.UTCDateTime())))
    assert now is not None
    return now


async def test_server_default_timestamp_is_aware_utc(sessionmaker: Sessionmaker) -> None:
    before = (await _db_now(sessionmaker)).replace(microsecond=0)
    async with sessionmaker.begin() as session:
        await DirectoryRepository(session).add_customer("A AS", "A", ["4721000001"])
    async with sessionmaker() as session:
        created = await session.scalar(select(models.Customer.created_at))
    assert created is not None and created.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(seconds=1) <= created <= await _db_now(sessionmaker)


async def test_naive_datetime_is_refused(sessionmaker: Sessionmaker) -> None:
    naive = dt.datetime(2026, 3, 2, 9, 0)
    async with sessionmaker() as session:
        with pytest.raises(ValueError, match="timezone-aware"):
            await CallRepository(session).create_call("c", "c", None, "1", None, None, naive)
    # Below the repository, the column type itself refuses to bind it.
    async with sessionmaker() as session:
        with pytest.raises(StatementError) as caught:
            await session.execute(
                insert(models.Call).values(
                    channel_id="c", linkedid="c", dialled_number="1", arrived_at=naive
                )
            )
        assert isinstance(caught.value.orig, ValueError)


# --- directory ----------------------------------------------------------------------


async def test_load_directory(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        repo = DirectoryRepository(session)
        bakst = await repo.add_customer(
            "Fjordbakst AS", "Fjordbakst", ["4721000001"], forwarded_from=["4755512345"]
        )
        regn = await repo.add_customer(
            "Nordlys Regnskap AS",
            "Nordlys Regnskap",
            ["4721000002", "4721000003"],
            timezone="Europe/Stockholm",
        )
        kari = await repo.add_agent("Kari", "agent1", [bakst.id])
        ola = await repo.add_agent("Ola", "agent2", {bakst.id: 1, regn.id: 0})
    async with sessionmaker() as session:
        directory = await load_directory(session)

    assert directory.customers == (bakst, regn)
    assert directory.customers[0].forwarded_from == ("4755512345",)
    assert directory.customers[1].numbers == ("4721000002", "4721000003")
    assert directory.customers[1].timezone == "Europe/Stockholm"
    assert directory.agents == (kari, ola)
    assert directory.agents[1].customer_ids == {bakst.id, regn.id}
    assert directory.customer_for_number("4721000003") == regn
    assert directory.customer_for_number("4755512345") is None  # forwarded-from, not a DID


async def test_unique_customer_name_and_number(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        await DirectoryRepository(session).add_customer("A AS", "A", ["4721000001"])
    with pytest.raises(Conflict):
        async with sessionmaker.begin() as session:
            await DirectoryRepository(session).add_customer("A AS", "A again", [])
    with pytest.raises(Conflict, match="4721000002"):  # one customer, one DID twice
        async with sessionmaker.begin() as session:
            await DirectoryRepository(session).add_customer(
                "B AS", "B", ["4721000002", "4721000002"]
            )
    async with sessionmaker() as session:
        directory = await load_directory(session)
    assert [c.name for c in directory.customers] == ["A AS"]  # B rolled back whole


async def test_agent_endpoint_unique_and_customers_must_exist(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        await DirectoryRepository(session).add_agent("Kari", "agent1")
    with pytest.raises(Conflict, match="agent1"):
        async with sessionmaker.begin() as session:
            await DirectoryRepository(session).add_agent("Kari 2", "agent1")
    with pytest.raises(NotFound, match="42"):
        async with sessionmaker.begin() as session:
            await DirectoryRepository(session).add_agent("Ola", "agent2", [42])


async def test_demo_is_idempotent(sessionmaker: Sessionmaker) -> None:
    assert await load_demo(sessionmaker) is True
    assert await load_demo(sessionmaker) is False
    async with sessionmaker() as session:
        directory = await load_directory(session)
    by_name = {c.display_name: c for c in directory.customers}
    assert set(by_name) == {"Fjordbakst", "Nordlys Regnskap"}
    assert by_name["Fjordbakst"].numbers == ("4721000001",)
    assert by_name["Nordlys Regnskap"].numbers == ("4721000002",)
    serves = {a.endpoint: a.customer_ids for a in directory.agents}
    fjord, nord = by_name["Fjordbakst"].id, by_name["Nordlys Regnskap"].id
    assert serves == {"agent1": {fjord}, "agent2": {fjord, nord}, "agent3": {nord}}
    assert [a.name for a in directory.agents] == ["Kari", "Ola", "Nora"]
    assert all(a.logged_in and not a.paused for a in directory.agents)
    for customer in directory.customers:
        assert customer.calendar.agreement == Agreement(dt.date(2026, 1, 1))
        assert customer.calendar.hours == ()  # always open: the lab answers at any hour
        assert customer.calendar.is_open(dt.datetime(2026, 3, 1, 3, 0, tzinfo=OSLO))
        assert customer.calendar.under_agreement(T0)


# --- calls --------------------------------------------------------------------------


async def test_call_lifecycle(sessionmaker: Sessionmaker) -> None:
    await load_demo(sessionmaker)
    async with sessionmaker() as session:
        directory = await load_directory(session)
    customer = directory.customer_for_number("4721000001")
    assert customer is not None
    kari, ola = directory.agents[0], directory.agents[1]

    async with sessionmaker.begin() as session:
        calls = CallRepository(session)
        call_id = await calls.create_call(  # the arrival journalled with the row
            "1700000000.7", "1700000000.7", customer.id, "4721000001", "4790000000", "Per", T0,
            first_event=("arrived", {"dialled": "4721000001"}),
        )  # fmt: skip
    async with sessionmaker.begin() as session:
        calls = CallRepository(session)
        await calls.mark_offered(call_id, kari.id)
        await calls.append_event(call_id, "offered", T0 + dt.timedelta(seconds=1), kari.id)
        assert (await calls.get_call(call_id)).agent_id == kari.id
        await calls.append_event(call_id, "offer_failed", T0 + dt.timedelta(seconds=16), kari.id)
        await calls.mark_offered(call_id, ola.id)
        await calls.append_event(call_id, "offered", T0 + dt.timedelta(seconds=16), ola.id)
    answered = T0 + dt.timedelta(seconds=19)
    ended = T0 + dt.timedelta(seconds=79)
    async with sessionmaker.begin() as session:
        calls = CallRepository(session)
        await calls.mark_answered(call_id, ola.id, answered)
        await calls.append_event(call_id, "answered", answered, ola.id)
        await calls.mark_ended(call_id, ended, CallOutcome.ANSWERED, 16, "Normal Clearing")
        await calls.append_event(call_id, "ended", ended, data={"cause": 16})

    async with sessionmaker() as session:
        calls = CallRepository(session)
        call = await calls.find_by_channel("1700000000.7")
        events = await calls.events(call_id)
    assert call is not None and call == await _get(sessionmaker, call_id)
    assert (call.customer_id, call.agent_id, call.outcome) == (customer.id, ola.id, "answered")
    assert (call.arrived_at, call.answered_at, call.ended_at) == (T0, answered, ended)
    assert (call.hangup_cause, call.hangup_cause_text) == (16, "Normal Clearing")
    assert (call.caller_number, call.caller_name) == ("4790000000", "Per")
    assert [(e.seq, e.type) for e in events] == [
        (1, "arrived"),
        (2, "offered"),
        (3, "offer_failed"),
        (4, "offered"),
        (5, "answered"),
        (6, "ended"),
    ]
    assert events[0].data == {"dialled": "4721000001"}
    assert events[2].agent_id == kari.id
    assert events[5].at == ended


async def _get(sm: Sessionmaker, call_id: int) -> CallRecord:
    async with sm() as session:
        return await CallRepository(session).get_call(call_id)


async def test_unknown_number_call(sessionmaker: Sessionmaker) -> None:
    call_id = await _new_call(sessionmaker, customer_id=None)
    async with sessionmaker.begin() as session:
        await CallRepository(session).mark_ended(
            call_id, T0 + dt.timedelta(seconds=2), "unknown_number", 1, "Unallocated"
        )
    call = await _get(sessionmaker, call_id)
    assert call.customer_id is None
    assert call.outcome == CallOutcome.UNKNOWN_NUMBER


async def test_event_seq_is_per_call_and_ordered(sessionmaker: Sessionmaker) -> None:
    first = await _new_call(sessionmaker, "a.1")
    second = await _new_call(sessionmaker, "b.1")
    async with sessionmaker.begin() as session:
        calls = CallRepository(session)
        # seq follows the order of appending, not the timestamps (Asterisk's clock).
        await calls.append_event(first, "x", T0 + dt.timedelta(seconds=5))
        await calls.append_event(second, "x", T0)
        await calls.append_event(first, "y", T0)
        await calls.append_event(second, "y", T0)
        await calls.append_event(first, "z", T0)
    async with sessionmaker() as session:
        calls = CallRepository(session)
        assert [(e.seq, e.type) for e in await calls.events(first)] == [
            (1, "x"),
            (2, "y"),
            (3, "z"),
        ]
        assert [(e.seq, e.type) for e in await calls.events(second)] == [(1, "x"), (2, "y")]
    with pytest.raises(IntegrityError):  # (call_id, seq) is unique in the schema too
        async with sessionmaker.begin() as session:
            await session.execute(
                insert(models.CallEvent).values(call_id=first, seq=2, type="dup", at=T0, data={})
            )


async def test_concurrent_appends_do_not_collide(sessionmaker: Sessionmaker) -> None:
    call_id = await _new_call(sessionmaker)

    async def writer(n: int) -> None:
        async with sessionmaker.begin() as session:
            calls = CallRepository(session)
            for _ in range(3):
                await calls.append_event(call_id, f"w{n}", T0)
                await asyncio.sleep(0)  # let the other writers try to get in between

    await asyncio.gather(*(writer(n) for n in range(4)))
    events = await CallRepository(sessionmaker).events(call_id)
    assert [e.seq for e in events] == list(range(1, 13))
    types = [e.type for e in events]
    # Each transaction held the call's row lock from its first append to its commit.
    assert all(types[i] == types[i + 1] == types[i + 2] for i in range(0, 12, 3))


async def test_repository_on_a_sessionmaker_commits_each_call(sessionmaker: Sessionmaker) -> None:
    """The call service's mode: every method is a transaction of its own."""
    calls = CallRepository(sessionmaker)
    call_id = await calls.create_call(
        channel_id="d.1",
        linkedid=None,
        customer_id=None,
        dialled_number="4721000001",
        caller_number=None,
        caller_name=None,
        arrived_at=T0,
    )
    await calls.append_event(call_id, "arrived", T0)
    with pytest.raises(CallNotFound):
        await calls.append_event(call_id + 1, "arrived", T0)  # rolled back alone
    await calls.mark_ended(
        call_id, ended_at=T0, outcome="abandoned", hangup_cause=16, hangup_cause_text=None
    )
    async with sessionmaker() as session:  # another session sees it all: committed
        call = await CallRepository(session).get_call(call_id)
        events = await CallRepository(session).events(call_id)
    assert (call.linkedid, call.outcome) == ("d.1", "abandoned")  # linkedid defaults
    assert [e.type for e in events] == ["arrived"]
    directory = await load_directory(sessionmaker)
    assert directory.customers == ()


async def test_call_errors(sessionmaker: Sessionmaker) -> None:
    call_id = await _new_call(sessionmaker, "c.1")
    async with sessionmaker() as session:
        calls = CallRepository(session)
        assert await calls.find_by_channel("nope") is None
        with pytest.raises(CallNotFound):
            await calls.get_call(999)
        with pytest.raises(CallNotFound):
            await calls.mark_offered(999, 1)
        with pytest.raises(CallNotFound):
            await calls.append_event(999, "x", T0)
        with pytest.raises(ValueError, match="nonsense"):
            await calls.mark_ended(call_id, T0, "nonsense")
    with pytest.raises(Conflict, match=r"c\.1"):  # one row per caller channel
        await _new_call(sessionmaker, "c.1")
    with pytest.raises(Conflict):  # foreign keys are enforced (on SQLite by PRAGMA)
        await _new_call(sessionmaker, "c.2", customer_id=999)


async def test_list_calls_in_order_of_arrival(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        repo = DirectoryRepository(session)
        a = await repo.add_customer("A AS", "A", ["4721000001"])
        b = await repo.add_customer("B AS", "B", ["4721000002"])
    calls = CallRepository(sessionmaker)
    # Inserted out of order; the list follows arrived_at, then id for equal instants.
    arrivals = [("x.3", a.id, 30), ("x.1", b.id, 10), ("x.2", a.id, 20), ("x.4", None, 20)]
    for channel, customer_id, seconds in arrivals:
        await calls.create_call(
            channel, None, customer_id, "4721000001", None, None, T0 + dt.timedelta(seconds=seconds)
        )
    assert [c.channel_id for c in await calls.list_calls()] == ["x.1", "x.2", "x.4", "x.3"]
    assert [c.channel_id for c in await calls.list_calls(a.id)] == ["x.2", "x.3"]
    assert [c.channel_id for c in await calls.list_calls(b.id)] == ["x.1"]
    assert await calls.list_calls(999) == []
    await calls.mark_ended((await calls.list_calls(b.id))[0].id, T0, "abandoned")
    assert (await calls.list_calls(b.id))[0].outcome == "abandoned"  # not a stale row


async def test_message_round_trip(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        customer = await DirectoryRepository(session).add_customer("A AS", "A", ["4721000001"])
    call_id = await _new_call(sessionmaker, "m.1", customer.id)
    other_call = await _new_call(sessionmaker, "m.2", customer.id)
    before = (await _db_now(sessionmaker)).replace(microsecond=0)
    messages = MessageRepository(sessionmaker)
    message_id = await messages.add_message(
        call_id, customer.id, "4790000000", "/var/spool/televikar/messages/m.1.wav", 12.5
    )
    message = await messages.get_message(message_id)
    assert message == await messages.message_for_call(call_id)
    assert (message.id, message.call_id, message.customer_id) == (message_id, call_id, customer.id)
    assert (message.caller_number, message.duration_s) == ("4790000000", 12.5)
    assert message.file == "/var/spool/televikar/messages/m.1.wav"
    assert message.created_at.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(seconds=1) <= message.created_at <= await _db_now(sessionmaker)
    assert await messages.message_for_call(other_call) is None
    with pytest.raises(MessageNotFound):
        await messages.get_message(message_id + 1)
    with pytest.raises(Conflict, match=f"call {call_id}"):  # one message per call
        await messages.add_message(call_id, customer.id, None, "/tmp/again.wav", 1.0)
    with pytest.raises(Conflict):  # the call must exist
        await messages.add_message(999, customer.id, None, "/tmp/x.wav", 1.0)
    with pytest.raises(ValueError, match="duration_s"):
        await messages.add_message(other_call, customer.id, None, "/tmp/x.wav", -1.0)
    assert await messages.message_for_call(other_call) is None


async def test_call_store_repository_has_calls_and_messages(sessionmaker: Sessionmaker) -> None:
    """The call service's store: both repositories on one object, one transaction each."""
    store = CallStoreRepository(sessionmaker)
    call_id = await store.create_call("s.1", None, None, "4721000001", None, None, T0)
    async with sessionmaker.begin() as session:
        customer = await DirectoryRepository(session).add_customer("A AS", "A", ["4721000001"])
    message_id = await store.add_message(call_id, customer.id, None, "/tmp/s.1.wav", 3.0)
    assert (await store.get_call(call_id)).channel_id == "s.1"
    assert (await store.get_message(message_id)).call_id == call_id


async def test_sqlite_connection_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 5000
    finally:
        await engine.dispose()


def test_upgrade_refuses_a_running_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}"

    async def inside_loop() -> None:
        migrate.upgrade(url)

    with ThreadPoolExecutor(max_workers=1) as pool:  # a thread of its own for asyncio.run
        future = pool.submit(asyncio.run, inside_loop())
        with pytest.raises(RuntimeError, match="running event loop"):
            future.result()

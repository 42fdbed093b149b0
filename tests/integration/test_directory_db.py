"""The answering desk's directory in the database: customer rules and calendars, shared
entry numbers, bookings, agent priorities and state (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.db import migrate, models
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import Conflict, DirectoryRepository, NotFound, load_directory
from televikar_pbx.domain.calendar import Agreement, Booking, DateException, OpeningHours
from televikar_pbx.domain.directory import (
    ClosedAction,
    CustomerRules,
    HoldStyle,
    OutsidePolicy,
)

Sessionmaker = async_sessionmaker[AsyncSession]
OSLO = ZoneInfo("Europe/Oslo")
UTC = dt.UTC


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A March 2026 instant, Oslo time (+01:00)."""
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=OSLO)


RULES = CustomerRules(
    hold_style=HoldStyle.ANNOUNCEMENT,
    hold_media="custom/fjordbakst-hold",
    wrap_up_s=25.5,
    max_wait_s=60.0,
    answer_target_s=8.0,
    closed_action=ClosedAction.ANNOUNCEMENT,
    outside_policy=OutsidePolicy.REJECT,
    message_prompt="custom/fjordbakst-message",
)
HOURS = (  # given out of order: the repository sorts them as load() returns them
    OpeningHours(4, dt.time(8, 0), dt.time(15, 0)),
    OpeningHours(0, dt.time(12, 30), dt.time(0, 0)),  # until midnight
    OpeningHours(0, dt.time(8, 0), dt.time(11, 30)),
)
EXCEPTIONS = (
    DateException(dt.date(2026, 12, 24), dt.time(9, 0), dt.time(12, 0)),
    DateException(dt.date(2026, 5, 17)),  # closed all day
)


async def test_customer_rules_and_calendar_round_trip(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        added = await DirectoryRepository(session).add_customer(
            "Fjordbakst AS",
            "Fjordbakst",
            ["4721000001"],
            timezone="Europe/Stockholm",
            rules=RULES,
            agreement=Agreement(dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
            hours=HOURS,
            exceptions=EXCEPTIONS,
        )
    directory = await load_directory(sessionmaker)
    assert directory.customers == (added,)
    customer = directory.customers[0]
    assert customer.rules == RULES
    assert isinstance(customer.rules.hold_style, HoldStyle)
    calendar = customer.calendar
    assert calendar.timezone == "Europe/Stockholm"
    assert calendar.agreement == Agreement(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    assert calendar.hours == (HOURS[2], HOURS[1], HOURS[0])
    assert calendar.exceptions == (EXCEPTIONS[1], EXCEPTIONS[0])
    assert calendar.bookings == ()


async def test_customer_defaults(sessionmaker: Sessionmaker) -> None:
    """No rules: the service's; wrap-up is stored as NULL so it follows the service."""
    async with sessionmaker.begin() as session:
        added = await DirectoryRepository(session).add_customer("A AS", "A", ["4721000001"])
    async with sessionmaker() as session:
        wrap_up = await session.scalar(select(models.Customer.wrap_up_s))
    [customer] = (await load_directory(sessionmaker)).customers
    assert customer == added
    assert customer.rules == CustomerRules()
    assert wrap_up is None
    assert customer.calendar.agreement is None
    assert customer.calendar.hours == ()
    assert customer.calendar.exceptions == ()
    assert customer.calendar.timezone == customer.timezone == "Europe/Oslo"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rules": CustomerRules(hold_style="loud")}, "loud"),  # type: ignore[arg-type]
        ({"rules": CustomerRules(outside_policy="maybe")}, "maybe"),  # type: ignore[arg-type]
        ({"rules": CustomerRules(wrap_up_s=-1)}, "wrap_up_s"),
        ({"rules": CustomerRules(max_wait_s=float("nan"))}, "max_wait_s"),
        ({"agreement": Agreement(dt.date(2026, 2, 1), dt.date(2026, 1, 31))}, "agreement"),
        ({"exceptions": [DateException(dt.date(2026, 5, 1), dt.time(9))]}, "both"),
        (
            {"exceptions": [DateException(dt.date(2026, 5, 1), dt.time(9), dt.time(8))]},
            "not after",
        ),
        ({"exceptions": [DateException(dt.date(2026, 5, 1))] * 2}, "one day"),
    ],
)
async def test_invalid_customer_refused(
    sessionmaker: Sessionmaker, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await DirectoryRepository(sessionmaker).add_customer("A AS", "A", ["1"], **kwargs)  # type: ignore[arg-type]
    assert not await DirectoryRepository(sessionmaker).has_customers()


async def test_checks_in_the_schema(sessionmaker: Sessionmaker) -> None:
    """What a repository would catch first, the schema refuses as well."""
    async with sessionmaker.begin() as session:
        customer = await DirectoryRepository(session).add_customer("A AS", "A")
    bad_rows: list[models.Base] = [
        models.OpeningHours(
            customer_id=customer.id, weekday=7, opens=dt.time(8), closes=dt.time(9)
        ),
        models.DateException(customer_id=customer.id, day=dt.date(2026, 5, 1), opens=dt.time(8)),
        models.Booking(customer_id=customer.id, starts_at=at(2, 10), ends_at=at(2, 10)),
    ]
    for row in bad_rows:
        with pytest.raises(Exception, match=r"(?i)check"):
            async with sessionmaker.begin() as session:
                session.add(row)


async def test_shared_did_and_forwarded_from(sessionmaker: Sessionmaker) -> None:
    """Two customers on one entry number; the Diversion number tells them apart."""
    async with sessionmaker.begin() as session:
        repo = DirectoryRepository(session)
        bakst = await repo.add_customer(
            "Fjordbakst AS", "Fjordbakst", ["4721000000"], forwarded_from=["4755512345"]
        )
        regn = await repo.add_customer(
            "Nordlys Regnskap AS",
            "Nordlys",
            ["4721000000", "4721000002"],
            forwarded_from=["4755567890"],
        )
    directory = await load_directory(sessionmaker)
    assert directory.customers == (bakst, regn)
    assert directory.customer_for_call("4721000000", "4755512345") == bakst
    assert directory.customer_for_call("4721000000", "4755567890") == regn
    assert directory.customer_for_call("4721000000") is None  # shared, nothing to decide
    assert directory.customer_for_call("4721000002") == regn


async def test_forwarded_from_names_one_customer(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        await DirectoryRepository(session).add_customer(
            "A AS", "A", ["4721000000"], forwarded_from=["4755512345"]
        )
    with pytest.raises(Conflict, match="4755512345"):
        async with sessionmaker.begin() as session:
            await DirectoryRepository(session).add_customer(
                "B AS", "B", ["4721000000"], forwarded_from=["4755512345"]
            )
    async with sessionmaker.begin() as session:
        # The same digits as a DID of another customer are no forwarded-from clash.
        await DirectoryRepository(session).add_customer("C AS", "C", ["4755512345"])
    assert [c.name for c in (await load_directory(sessionmaker)).customers] == ["A AS", "C AS"]


async def test_bookings(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        repo = DirectoryRepository(session)
        a = await repo.add_customer("A AS", "A", ["4721000001"])
        b = await repo.add_customer("B AS", "B", ["4721000002"])
    repo = DirectoryRepository(sessionmaker)
    afternoon = await repo.add_booking(a.id, at(2, 12), at(2, 16))
    morning = await repo.add_booking(a.id, at(2, 8), at(2, 12))  # touching is no overlap
    assert afternoon == Booking(at(2, 12), at(2, 16))
    assert afternoon.starts_at.tzinfo is UTC
    await repo.add_booking(b.id, at(2, 9), at(2, 17))  # another customer's
    for starts, ends in [
        (at(2, 11), at(2, 13)),  # straddles both
        (at(2, 13), at(2, 14)),  # inside
        (at(2, 7), at(2, 8, 1)),  # overlaps the start by a minute
        (at(2, 6), at(2, 18)),  # covers both
    ]:
        with pytest.raises(Conflict, match="overlaps"):
            await repo.add_booking(a.id, starts, ends)
    with pytest.raises(ValueError, match="timezone-aware"):
        await repo.add_booking(a.id, dt.datetime(2026, 3, 3, 8), dt.datetime(2026, 3, 3, 9))
    with pytest.raises(ValueError, match="end after"):
        await repo.add_booking(a.id, at(3, 9), at(3, 8))
    with pytest.raises(NotFound):
        await repo.add_booking(999, at(3, 8), at(3, 9))

    assert await repo.list_bookings(a.id) == [morning, afternoon]
    [customer_a, _] = (await load_directory(sessionmaker)).customers
    assert customer_a.calendar.bookings == (morning, afternoon)
    assert customer_a.calendar.under_agreement(at(2, 15, 59))
    assert not customer_a.calendar.under_agreement(at(2, 16))


async def test_concurrent_overlapping_bookings_one_wins(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        customer = await DirectoryRepository(session).add_customer("A AS", "A")

    async def book(hour: int) -> Booking:
        async with sessionmaker.begin() as session:
            repo = DirectoryRepository(session)
            booking = await repo.add_booking(customer.id, at(2, hour), at(2, hour + 2))
            await asyncio.sleep(0.05)  # hold the transaction open while the other tries
            return booking

    results = await asyncio.gather(book(9), book(10), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Booking", "Conflict"]
    assert len(await DirectoryRepository(sessionmaker).list_bookings(customer.id)) == 1


async def test_agent_priorities_and_state(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        repo = DirectoryRepository(session)
        a = await repo.add_customer("A AS", "A")
        b = await repo.add_customer("B AS", "B")
        kari = await repo.add_agent("Kari", "agent1", {a.id: 0, b.id: 2}, logged_in=True)
        ola = await repo.add_agent("Ola", "agent2", [b.id], paused=True)
        nora = await repo.add_agent("Nora", "agent3")
    directory = await load_directory(sessionmaker)
    assert directory.agents == (kari, ola, nora)
    loaded = directory.agents[0]
    assert isinstance(loaded.priorities, MappingProxyType)
    assert dict(loaded.priorities) == {a.id: 0, b.id: 2}
    assert (loaded.priority(a.id), loaded.priority(b.id)) == (0, 2)
    assert [(x.logged_in, x.paused) for x in directory.agents] == [
        (True, False),
        (False, True),
        (False, False),
    ]

    repo = DirectoryRepository(sessionmaker)
    await repo.set_agent_state(kari.id, paused=True)
    await repo.set_agent_state(ola.id, logged_in=True, paused=False)
    await repo.set_agent_state(nora.id)  # nothing to change
    states = {x.endpoint: (x.logged_in, x.paused) for x in (await repo.load()).agents}
    assert states == {
        "agent1": (True, True),
        "agent2": (True, False),
        "agent3": (False, False),
    }
    for changes in ({"logged_in": False}, {}):
        with pytest.raises(NotFound, match="999"):
            await repo.set_agent_state(999, **changes)


def _sql(url: str, *statements: str) -> None:
    async def run() -> None:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                for statement in statements:
                    await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


async def test_existing_rows_get_the_defaults(empty_db_url: str) -> None:
    """Rows from before 0002 load with the service's rules, logged out, always open."""
    await asyncio.to_thread(migrate.upgrade, empty_db_url, "0001")
    await asyncio.to_thread(
        _sql,
        empty_db_url,
        "INSERT INTO customers (name, display_name) VALUES ('A AS', 'A')",
        "INSERT INTO customer_numbers (customer_id, number, kind) VALUES (1, '4721000001', 'did')",
        "INSERT INTO agents (name, endpoint) VALUES ('Kari', 'agent1')",
        "INSERT INTO agent_customers (agent_id, customer_id, priority) VALUES (1, 1, 3)",
    )
    await asyncio.to_thread(migrate.upgrade, empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        directory = await load_directory(make_sessionmaker(engine))
    finally:
        await engine.dispose()
    [customer] = directory.customers
    assert customer.numbers == ("4721000001",)
    assert customer.rules == CustomerRules()
    assert customer.calendar.agreement is None and customer.calendar.hours == ()
    [agent] = directory.agents
    assert (agent.logged_in, agent.paused, dict(agent.priorities)) == (False, False, {1: 3})
    # And back: 0001's unique (number, kind) holds again while no DID is shared.
    await asyncio.to_thread(migrate.downgrade, empty_db_url, "0001")
    await asyncio.to_thread(migrate.upgrade, empty_db_url)

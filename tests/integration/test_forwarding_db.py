"""The forwarding watch's reads of the call log, on SQLite and PostgreSQL: calls per
customer per UTC hour counted by the database, each customer's last call, the rates
and readings made of them, and ``customers last-calls`` (with a fixed TELEVIKAR_NOW)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.calls.forwarding import history_window, read_once, read_rates
from televikar_pbx.db import models
from televikar_pbx.db.arrivals_repo import ArrivalRepository
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.calendar import Agreement, OpeningHours
from televikar_pbx.domain.directory import Directory
from televikar_pbx.status_cli import render_forwarding
from tests.helpers import run_async
from tests.integration.test_cli import Cli, free_port

Sessionmaker = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 12, 7, 10, 20, tzinfo=UTC)  # Monday 11:20 in Oslo
START, END = history_window(NOW, 1)  # the week of whole hours before 10:00 UTC
RATE = 30  # calls an hour: one every two minutes, the last at 09:58 UTC


async def seed(sm: Sessionmaker) -> dict[str, int]:
    async with sm.begin() as s:
        repo = DirectoryRepository(s)
        agreement = Agreement(date(2026, 1, 1))
        open_ = await repo.add_customer("Fjord AS", "Fjord", ["4721000001"], agreement=agreement)
        sundays = (OpeningHours(6, time(0), time(0)),)
        closed = await repo.add_customer(
            "Stengt AS", "Stengt", ["4721000002"], agreement=agreement, hours=sundays
        )
        new = await repo.add_customer("Ny AS", "Ny", ["4721000003"], agreement=agreement)
        rows = []
        for customer in (open_, closed):
            at, n = START, 0
            while at < END:
                key = f"{customer.id}-{n}"
                rows.append({"channel_id": key, "linkedid": key, "customer_id": customer.id,
                             "dialled_number": customer.numbers[0], "arrived_at": at})  # fmt: skip
                at, n = at + timedelta(hours=1) / RATE, n + 1
        await s.execute(insert(models.Call), rows)
    return {"open": open_.id, "closed": closed.id, "new": new.id}


async def test_calls_per_hour_and_last_calls_come_from_the_database(
    sessionmaker: Sessionmaker,
) -> None:
    ids = await seed(sessionmaker)
    repo = ArrivalRepository(sessionmaker)
    counts = await repo.hourly_arrivals(START, END)
    assert len(counts) == 2 * 168
    assert {n for _, _, n in counts} == {RATE}
    hours = sorted(hour for customer, hour, _ in counts if customer == ids["open"])
    assert hours == [START + timedelta(hours=h) for h in range(168)]
    assert all(hour.tzinfo == UTC for hour in hours)
    # Half an hour: the database's buckets are UTC hours, cut by [start, end).
    half = await repo.hourly_arrivals(END - timedelta(minutes=30), END)
    assert sorted(half) == [
        (ids["open"], END - timedelta(hours=1), RATE // 2),
        (ids["closed"], END - timedelta(hours=1), RATE // 2),
    ]
    last = await repo.last_arrivals()
    assert last == {
        ids["open"]: END - timedelta(minutes=2),
        ids["closed"]: END - timedelta(minutes=2),
    }


async def test_readings_flag_the_silent_open_customer_only(sessionmaker: Sessionmaker) -> None:
    ids = await seed(sessionmaker)
    directory = Directory(await DirectoryRepository(sessionmaker).list_customers(), ())
    rates = await read_rates(sessionmaker, directory, NOW, 1)
    assert rates[ids["open"]] == tuple([float(RATE)] * 168)
    assert rates[ids["closed"]] == tuple([0.0] * 144 + [float(RATE)] * 24)  # Sundays only
    assert rates[ids["new"]] == ()
    readings = {r.customer_id: r for r in await read_once(
        sessionmaker, directory, NOW, weeks=1, silence_p=0.01)}  # fmt: skip
    fjord = readings[ids["open"]]
    assert fjord.flagged and fjord.open_now and fjord.rate_now == RATE
    assert fjord.expected == pytest.approx(RATE * 22 / 60)  # 09:58 to 10:20
    closed = readings[ids["closed"]]
    assert not closed.flagged and not closed.open_now
    assert (closed.rate_now, closed.expected) == (0.0, 0.0)
    new = readings[ids["new"]]
    assert not new.flagged and new.last_call is None


def test_customers_last_calls(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    ids = run_async(lambda: seed_in_own_loop(db_url))
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(free_port()))
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", db_url)
    monkeypatch.setenv("TELEVIKAR_NOW", NOW.isoformat())
    monkeypatch.setenv("TELEVIKAR_FORWARDING_HISTORY_WEEKS", "1")
    cli = Cli(capsys, db_url)
    rows = {r["id"]: r for r in cli.ok("customers", "last-calls", "--json").json()}
    assert rows[ids["open"]] == {
        "id": ids["open"],
        "name": "Fjord AS",
        "last_call": "2026-12-07T10:58:00+01:00",  # the customer's time
        "silent_s": 1320.0,
        "open_now": True,
        "rate_per_hour": 30.0,
        "expected_since_last_call": 11.0,
        "chance_of_silence": pytest.approx(1.67e-5, rel=0.01),
        "flagged": True,
    }
    assert rows[ids["closed"]]["flagged"] is False and rows[ids["closed"]]["open_now"] is False
    assert rows[ids["new"]]["last_call"] is None and rows[ids["new"]]["flagged"] is False
    table = cli.ok("customers", "last-calls").out.splitlines()
    assert table[0].split() == [
        "ID", "NAME", "LAST", "CALL", "AGO", "CALLS/H", "NOW", "OPEN", "EXPECTED", "SINCE", "FLAG",
    ]  # fmt: skip
    fjord = next(line for line in table if "Fjord AS" in line)
    assert "2026-12-07 10:58" in fjord and "22 min" in fjord and fjord.endswith("SILENT")
    assert next(line for line in table if "Ny AS" in line).split()[3] == "never"


async def seed_in_own_loop(db_url: str) -> dict[str, int]:
    engine = make_engine(db_url)
    try:
        return await seed(make_sessionmaker(engine))
    finally:
        await engine.dispose()


def test_status_text_names_the_silent_customers() -> None:
    assert render_forwarding({"flagged": []}) == ["Forwarding watch: no customer unusually silent"]
    silent = {
        "id": 1,
        "name": "Fjord AS",
        "last_call": "2026-12-07T10:58:00+01:00",
        "silent_s": 1320.0,
        "expected_since_last_call": 11.0,
        "open_now": False,
    }
    lines = render_forwarding({"flagged": [silent]})
    assert lines == [
        "Forwarding watch: 1 customer(s) SILENT, check their forwarding",
        "  Fjord AS: no call since 2026-12-07T10:58:00+01:00 (22 min), 11.0 expected, closed now",
    ]

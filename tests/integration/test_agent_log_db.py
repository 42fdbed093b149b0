"""The agents' availability log on SQLite and PostgreSQL: intervals written as the
service writes them (through the call spool, behind the routing), read back clipped,
and a replay after a crash changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.calls.spool import SpoolingStore
from televikar_pbx.db import models
from televikar_pbx.db.agent_log_repo import AgentLogRepository
from televikar_pbx.db.agents_repo import AgentRepository
from televikar_pbx.db.repositories import CallStoreRepository

Sessionmaker = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def agents(sm: Sessionmaker, n: int) -> list[int]:
    async with sm.begin() as s:
        repo = AgentRepository(s)
        return [(await repo.add_agent(f"Agent {i}", f"agent{i}", [])).id for i in range(n)]


async def rows(sm: Sessionmaker) -> list[tuple[int, str, datetime, datetime | None]]:
    log = models.AgentAvailability
    async with sm() as s:
        result = await s.execute(
            select(log.agent_id, log.state, log.started_at, log.ended_at).order_by(log.id)
        )
        return [tuple(r) for r in result]  # type: ignore[misc]


async def test_intervals_are_clipped_joined_and_open_ones_count_until_the_end(
    sessionmaker: Sessionmaker,
) -> None:
    kari, ola, per = await agents(sessionmaker, 3)
    repo = AgentLogRepository(sessionmaker)
    await repo.log_agent_state(kari, "available", at(0))
    await repo.log_agent_state(kari, "paused", at(30))
    await repo.log_agent_state(kari, "available", at(45))
    await repo.log_agent_state(kari, "available", at(50))  # no change: no row
    await repo.log_agent_state(ola, "logged_out", at(0))
    await repo.log_agent_state(ola, "available", at(10))
    await repo.log_agent_state(ola, "logged_out", at(20))
    await repo.log_agent_state(per, "paused", at(0))  # never available
    assert len(await rows(sessionmaker)) == 7

    intervals = await repo.available_intervals(at(5), at(60))
    assert intervals == [
        (kari, at(5), at(30)),
        (kari, at(45), at(60)),  # still available: counted until the end asked for
        (ola, at(10), at(20)),
    ]
    # Any time zone in, UTC out; an hour with nothing gives nothing.
    oslo = ZoneInfo("Europe/Oslo")
    assert await repo.available_intervals(at(0).astimezone(oslo), at(15).astimezone(oslo)) == [
        (kari, at(0), at(15)),
        (ola, at(10), at(15)),
    ]
    assert await repo.available_intervals(at(-60), at(0)) == []

    await repo.close_agent_log(at(90))  # the service stops
    assert await repo.available_intervals(at(60), at(120)) == [(kari, at(60), at(90))]
    # It starts again: in the same state from then, a separate stretch.
    await repo.log_agent_state(kari, "available", at(100))
    assert await repo.available_intervals(at(60), at(120)) == [
        (kari, at(60), at(90)),
        (kari, at(100), at(120)),
    ]
    # Closed at the same instant it reopens: one stretch.
    await repo.close_agent_log(at(130))
    await repo.log_agent_state(kari, "available", at(130))
    assert await repo.available_intervals(at(120), at(140)) == [(kari, at(120), at(140))]


async def test_stale_and_repeated_changes_change_nothing(sessionmaker: Sessionmaker) -> None:
    [kari] = await agents(sessionmaker, 1)
    repo = AgentLogRepository(sessionmaker)
    await repo.log_agent_state(kari, "available", at(0))
    await repo.log_agent_state(kari, "paused", at(10))
    before = await rows(sessionmaker)
    await repo.log_agent_state(kari, "available", at(0))  # replayed: a later change is in
    await repo.log_agent_state(kari, "paused", at(10))
    assert await rows(sessionmaker) == before
    # Two changes at one instant: the later wins, no empty stretch.
    await repo.log_agent_state(kari, "logged_out", at(20))
    await repo.log_agent_state(kari, "available", at(20))
    assert (await rows(sessionmaker))[-1] == (kari, "available", at(20), None)
    with pytest.raises(ValueError, match="busy"):
        await repo.log_agent_state(kari, "busy", at(30))
    with pytest.raises(ValueError, match="naive"):
        await repo.available_intervals(datetime(2026, 11, 30), at(30))


async def test_one_open_row_per_agent_is_the_databases_rule(sessionmaker: Sessionmaker) -> None:
    [kari] = await agents(sessionmaker, 1)
    log = models.AgentAvailability
    with pytest.raises(IntegrityError):
        async with sessionmaker.begin() as s:
            s.add(log(agent_id=kari, state="available", started_at=at(0)))
            s.add(log(agent_id=kari, state="paused", started_at=at(1)))
    async with sessionmaker.begin() as s:  # closed ones: as many as there were
        s.add(log(agent_id=kari, state="available", started_at=at(0), ended_at=at(1)))
        s.add(log(agent_id=kari, state="paused", started_at=at(1), ended_at=at(2)))
        s.add(log(agent_id=kari, state="available", started_at=at(2)))


async def test_written_behind_the_routing_and_replayed_after_a_crash(
    sessionmaker: Sessionmaker, tmp_path: Path
) -> None:
    """The spool's lines for the log, written by its batch writer; then the same lines
    replayed (a crash between the commit and the count) add nothing."""
    kari, ola = await agents(sessionmaker, 2)
    spool = tmp_path / "calls.jsonl"

    @asynccontextmanager
    async def one_transaction() -> AsyncIterator[CallStoreRepository]:
        async with sessionmaker.begin() as session:
            yield CallStoreRepository(session)

    @asynccontextmanager
    async def never() -> AsyncIterator[CallStoreRepository]:
        raise ConnectionRefusedError("the database is away")
        yield  # pragma: no cover

    store = SpoolingStore(CallStoreRepository(sessionmaker), spool, batch=never, retry_s=3600)
    await store.log_agent_state(kari, "available", at(0))
    await store.log_agent_state(ola, "paused", at(0))
    await store.log_agent_state(kari, "paused", at(10))
    await store.log_agent_state(ola, "available", at(12))
    await store.close_agent_log(at(20))
    await store.flush()
    assert store.spooling  # the database was away: all five wait in the spool
    lines = spool.read_text()
    await store.close()

    expected = [(kari, at(0), at(10)), (ola, at(12), at(20))]
    for _ in range(2):  # the second time: the same lines again, as after a crash
        spool.write_text(lines)
        again = SpoolingStore(CallStoreRepository(sessionmaker), spool, batch=one_transaction)
        assert await again.drain() == 5
        await again.close()
        assert await AgentLogRepository(sessionmaker).available_intervals(at(0), at(60)) == (
            expected
        )
        assert len(await rows(sessionmaker)) == 4

    # And the batch writer's own path (the database answers): one transaction.
    store = SpoolingStore(CallStoreRepository(sessionmaker), spool, batch=one_transaction)
    await store.log_agent_state(kari, "available", at(30))
    await store.log_agent_state(kari, "logged_out", at(40))
    await store.flush()
    await store.close()
    assert not spool.exists()
    assert (await AgentLogRepository(sessionmaker).available_intervals(at(25), at(60)))[0] == (
        kari,
        at(30),
        at(40),
    )

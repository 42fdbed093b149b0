"""Leadership on the real PostgreSQL: two electors in one process share a lease.

Short timings (lease 1 s, renew every 0.25 s, margin 0.2 s, standby retry 0.1 s) keep
each test to a few seconds. Every figure is measured on the monotonic clock both
electors share; nothing depends on the date or the time of day.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from televikar_pbx.cluster import (
    ClusterConfig,
    Fenced,
    FencedSessions,
    FenceToken,
    LeaderElector,
    check_fence,
    fenced_transaction,
)
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.leases_repo import acquire, read_lease
from televikar_pbx.db.repositories import CallStoreRepository
from tests.integration.pg_partition import PartitionRelay

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("empty_db_url", ["postgres"], indirect=True),
]

Sessionmaker = async_sessionmaker[AsyncSession]
LEASE_S, RENEW_S, RETRY_S, MARGIN_S = 1.0, 0.25, 0.1, 0.2
# Scheduling slack on a loaded 2-core machine (other sessions run benchmarks).
SLACK_S = 1.0
T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


def config(holder: str) -> ClusterConfig:
    return ClusterConfig(
        holder=holder, lease_s=LEASE_S, renew_s=RENEW_S, retry_s=RETRY_S, margin_s=MARGIN_S
    )


@dataclass
class Node:
    """One elector and what its callbacks saw, with monotonic times."""

    name: str
    sessionmaker: Sessionmaker
    leads: list[tuple[float, FenceToken]] = field(default_factory=list)
    loses: list[tuple[float, str]] = field(default_factory=list)
    on_lead_hook: Callable[[], None] | None = None
    elector: LeaderElector = field(init=False)
    task: asyncio.Task[None] = field(init=False)

    def __post_init__(self) -> None:
        self.elector = LeaderElector(
            self.sessionmaker, config(self.name), on_lead=self._lead, on_lose=self._lose
        )

    def _lead(self, token: FenceToken) -> None:
        if self.on_lead_hook is not None:
            self.on_lead_hook()
        self.leads.append((time.monotonic(), token))

    def _lose(self, reason: str) -> None:
        self.loses.append((time.monotonic(), reason))

    def start(self) -> Node:
        self.task = self.elector.start()
        return self

    def kill(self) -> None:
        """A crash: the task ends, nothing is released."""
        self.task.cancel()


async def until(condition: Callable[[], bool], within: float) -> float:
    """Poll until ``condition`` holds (with a deadline); the monotonic time it did."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.01)
    return time.monotonic()


class Nodes(list[Node]):
    """The electors of a test, killed at its end."""

    async def leader(self, sessionmaker: Sessionmaker, name: str = "a") -> Node:
        node = Node(name, sessionmaker).start()
        self.append(node)
        await until(lambda: bool(node.leads), within=2)
        return node

    async def standby(
        self, sessionmaker: Sessionmaker, name: str = "b", hook: Callable[[], None] | None = None
    ) -> Node:
        node = Node(name, sessionmaker, on_lead_hook=hook).start()
        self.append(node)
        await asyncio.sleep(2 * RENEW_S)
        assert node.leads == []
        return node


@pytest.fixture
async def nodes(engine: AsyncEngine) -> AsyncIterator[Nodes]:
    made = Nodes()
    yield made
    for node in made:
        node.kill()
    await asyncio.gather(*(node.task for node in made), return_exceptions=True)


@pytest.fixture
async def cut_off(db_url: str) -> AsyncIterator[tuple[PartitionRelay, Sessionmaker]]:
    """A sessionmaker whose connections go through a relay the test can black-hole.
    Name it before ``nodes`` in a test's arguments: the electors end first."""
    url = make_url(db_url)
    relay = PartitionRelay((url.host or "127.0.0.1", url.port or 5432))
    engine = make_engine(url.set(port=relay.port).render_as_string(hide_password=False))
    try:
        yield relay, make_sessionmaker(engine)
    finally:
        relay.heal()
        await engine.dispose()
        relay.close()


async def _write_marker(session: AsyncSession, value: str) -> None:
    await session.execute(text("CREATE TABLE IF NOT EXISTS fenced_writes (v TEXT)"))
    await session.execute(text("INSERT INTO fenced_writes (v) VALUES (:v)"), {"v": value})


async def _markers(sm: Sessionmaker) -> list[str]:
    async with sm.begin() as session:
        await session.execute(text("CREATE TABLE IF NOT EXISTS fenced_writes (v TEXT)"))
        return list((await session.execute(text("SELECT v FROM fenced_writes"))).scalars())


async def test_of_two_electors_exactly_one_leads(sessionmaker: Sessionmaker, nodes: Nodes) -> None:
    a, b = Node("a", sessionmaker).start(), Node("b", sessionmaker).start()
    nodes += [a, b]  # both at once: either may win
    await until(lambda: bool(a.leads or b.leads), within=2)
    await asyncio.sleep(4 * RENEW_S + LEASE_S)  # renewals keep it, past the first lease
    leader, standby = (a, b) if a.leads else (b, a)
    assert [tok.generation for _, tok in leader.leads] == [1]
    assert leader.elector.is_leading() and leader.loses == []
    assert standby.leads == [] and not standby.elector.is_leading()
    assert standby.elector.token is None
    async with sessionmaker.begin() as session:
        state = await read_lease(session, "desk")
    assert state is not None and state.live
    assert (state.holder, state.generation) == (leader.name, 1)


async def test_a_dead_leader_is_taken_over_after_its_lease(
    sessionmaker: Sessionmaker, nodes: Nodes
) -> None:
    a = await nodes.leader(sessionmaker)
    b = await nodes.standby(sessionmaker)
    a.kill()
    killed_at = time.monotonic()
    led_at = await until(lambda: bool(b.leads), within=LEASE_S + RETRY_S + SLACK_S)
    takeover = led_at - killed_at
    print(f"takeover {takeover:.3f} s after the kill (lease {LEASE_S} s, retry {RETRY_S} s)")
    assert b.leads[0][1].generation == 2
    assert takeover >= LEASE_S - RENEW_S - 0.05  # the lease was honoured
    assert a.loses == []  # a dead process calls nothing
    assert not a.elector.is_leading()  # ...but its term has ended by its own clock


async def test_a_clean_release_hands_over_at_once(sessionmaker: Sessionmaker, nodes: Nodes) -> None:
    a = await nodes.leader(sessionmaker)
    b = await nodes.standby(sessionmaker)
    stopped_at = time.monotonic()
    await a.elector.stop()
    assert [reason for _, reason in a.loses] == ["released"]
    led_at = await until(lambda: bool(b.leads), within=LEASE_S)
    print(f"takeover {led_at - stopped_at:.3f} s after a release")
    assert led_at - stopped_at < LEASE_S - RENEW_S  # did not wait for the expiry
    assert b.leads[0][1].generation == 2
    assert a.loses[0][0] < b.leads[0][0]  # stopped acting before the release


async def test_a_write_of_the_old_generation_is_refused(
    sessionmaker: Sessionmaker, nodes: Nodes
) -> None:
    a = await nodes.leader(sessionmaker)
    old = a.leads[0][1]
    async with fenced_transaction(sessionmaker, old) as session:
        await _write_marker(session, "a while leading")
    b = await nodes.standby(sessionmaker)
    a.kill()
    await until(lambda: bool(b.leads), within=LEASE_S + RETRY_S + SLACK_S)
    new = b.leads[0][1]

    with pytest.raises(Fenced):
        async with fenced_transaction(sessionmaker, old) as session:
            await _write_marker(session, "a after the takeover")  # never runs
    with pytest.raises(Fenced):  # the fence last: what was written before rolls back
        async with sessionmaker.begin() as session:
            await _write_marker(session, "a, fence checked last")
            await check_fence(session, old)
    async with fenced_transaction(sessionmaker, new) as session:
        await _write_marker(session, "b leading")
    assert sorted(await _markers(sessionmaker)) == ["a while leading", "b leading"]


async def test_an_open_fenced_write_holds_off_a_takeover_until_it_commits(
    sessionmaker: Sessionmaker, engine: AsyncEngine
) -> None:
    async with sessionmaker.begin() as session:
        token = await acquire(session, "desk", "a", LEASE_S)
    assert token is not None
    other = make_sessionmaker(engine)
    async with fenced_transaction(sessionmaker, token) as session:
        await _write_marker(session, "a, slow write")
        await asyncio.sleep(LEASE_S + 0.2)  # the lease has expired meanwhile

        async def take() -> FenceToken | None:
            async with other.begin() as s:
                return await acquire(s, "desk", "b", LEASE_S)

        taking = asyncio.create_task(take())
        await asyncio.sleep(0.5)
        assert not taking.done()  # waits for the write's row lock
    taken = await asyncio.wait_for(taking, timeout=5)
    assert taken is not None and taken.generation == token.generation + 1
    assert await _markers(sessionmaker) == ["a, slow write"]


async def test_a_partitioned_leader_stops_before_the_standby_leads(
    sessionmaker: Sessionmaker, cut_off: tuple[PartitionRelay, Sessionmaker], nodes: Nodes
) -> None:
    relay, via_relay = cut_off
    a = await nodes.leader(via_relay)
    a_leading_when_b_led: list[bool] = []
    b = await nodes.standby(
        sessionmaker, hook=lambda: a_leading_when_b_led.append(a.elector.is_leading())
    )
    relay.blackhole()
    cut_at = time.monotonic()
    await until(lambda: bool(b.leads), within=LEASE_S + RETRY_S + SLACK_S)
    assert len(a.loses) == 1, a.loses
    fenced_at, led_at = a.loses[0][0], b.leads[0][0]
    print(
        f"partition: a stopped {fenced_at - cut_at:.3f} s after the cut, "
        f"b led {led_at - cut_at:.3f} s after it ({led_at - fenced_at:.3f} s later)"
    )
    assert a_leading_when_b_led == [False]
    assert fenced_at < led_at
    assert fenced_at - cut_at <= LEASE_S - MARGIN_S + 0.1
    assert b.leads[0][1].generation == a.leads[0][1].generation + 1

    relay.heal()  # the old leader comes back: its writes are refused
    with pytest.raises(Fenced):
        async with fenced_transaction(via_relay, a.leads[0][1]) as session:
            await _write_marker(session, "a after the partition")
    await asyncio.sleep(LEASE_S)
    assert a.leads[1:] == [] and not a.elector.is_leading()  # a is a standby now
    assert await _markers(sessionmaker) == []


async def test_a_leader_cut_off_inside_a_fenced_write_does_not_block_the_takeover(
    sessionmaker: Sessionmaker, cut_off: tuple[PartitionRelay, Sessionmaker], nodes: Nodes
) -> None:
    relay, via_relay = cut_off
    a = await nodes.leader(via_relay)
    b = await nodes.standby(sessionmaker)
    in_write = asyncio.Event()

    async def slow_write() -> None:
        async with fenced_transaction(via_relay, a.leads[0][1], idle_timeout_s=LEASE_S) as s:
            in_write.set()
            await asyncio.sleep(0.3)  # the partition comes now
            await _write_marker(s, "a, cut off mid-write")

    writing = asyncio.create_task(slow_write())
    await asyncio.wait_for(in_write.wait(), timeout=2)
    relay.blackhole()
    cut_at = time.monotonic()
    # The backend of a's write holds the lease row FOR SHARE until the server ends the
    # silent session (idle_in_transaction_session_timeout = LEASE_S).
    led_at = await until(lambda: bool(b.leads), within=2 * LEASE_S + RETRY_S + SLACK_S)
    print(f"takeover {led_at - cut_at:.3f} s after a cut inside a fenced write")
    assert a.loses and a.loses[0][0] < led_at
    relay.heal()
    with pytest.raises(Exception):  # noqa: B017 - the session was ended: any error will do
        await asyncio.wait_for(writing, timeout=5)
    assert await _markers(sessionmaker) == []


async def test_the_call_store_on_fenced_sessions_writes_only_while_its_lease_holds(
    sessionmaker: Sessionmaker, nodes: Nodes
) -> None:
    """``serve`` in leader-standby mode builds its call store on ``FencedSessions``: a
    row written while leading is kept; once the lease has moved on, the same store's
    writes are refused and leave nothing."""
    a = await nodes.leader(sessionmaker)
    store = CallStoreRepository(FencedSessions(sessionmaker, a.leads[0][1]))

    async def new_call(channel: str) -> int:
        return await store.create_call(
            channel_id=channel, linkedid=None, customer_id=None, dialled_number="4721000001",
            caller_number="4790000001", caller_name=None, arrived_at=T0,
        )  # fmt: skip

    kept = await new_call("c-leading")
    b = await nodes.standby(sessionmaker)
    a.kill()
    await until(lambda: bool(b.leads), within=LEASE_S + RETRY_S + SLACK_S)
    with pytest.raises(Fenced):
        await new_call("c-after-takeover")
    unfenced = CallStoreRepository(sessionmaker)
    assert (await unfenced.find_by_channel("c-leading")).id == kept
    assert await unfenced.find_by_channel("c-after-takeover") is None

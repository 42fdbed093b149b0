"""Call records written behind the routing (calls/spool.py with ``batch``), on SQLite and
PostgreSQL: the journal in order, and a ``kill -9`` before the writer's batch loses
nothing; a replay after a crash between the batch's commit and its count adds nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from televikar_pbx.calls.journal import CallJournal
from televikar_pbx.calls.spool import SpoolingStore
from televikar_pbx.db.agents_repo import AgentRepository
from televikar_pbx.db.repositories import CallStoreRepository, DirectoryRepository
from televikar_pbx.domain.outcomes import Outcome

Sessionmaker = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

# The service's side: the call's row at once, the rest queued behind a batch that never
# starts (a slow database), then "queued" on stdout, and it waits to be killed.
CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from contextlib import asynccontextmanager
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from televikar_pbx.calls.journal import CallJournal
    from televikar_pbx.calls.spool import SpoolingStore
    from televikar_pbx.db.engine import make_engine, make_sessionmaker
    from televikar_pbx.db.repositories import CallStoreRepository
    from televikar_pbx.domain.outcomes import Outcome

    T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    async def main(url, spool, customer, agent):
        sessionmaker = make_sessionmaker(make_engine(url))

        @asynccontextmanager
        async def never():
            await asyncio.Event().wait()
            yield None

        store = SpoolingStore(CallStoreRepository(sessionmaker), Path(spool), batch=never)
        journal = CallJournal(store)
        call_id = await store.create_call(
            channel_id="1701.1", linkedid=None, customer_id=customer,
            dialled_number="4721000001", caller_number="4790000001", caller_name=None,
            arrived_at=T0, first_event=CallJournal.arrival(
                dialled="4721000001", caller="4790000001", forwarded_from=None
            ),
        )
        await journal.offered(call_id, T0 + timedelta(seconds=1), agent)
        await journal.agent_answered(call_id, T0 + timedelta(seconds=3), agent)
        await journal.answered(call_id, T0 + timedelta(seconds=3), agent)
        await journal.ended(
            call_id, T0 + timedelta(seconds=40), Outcome.ANSWERED, cause=16,
            cause_txt="Normal Clearing",
        )
        print(call_id, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main(*sys.argv[1:3], *map(int, sys.argv[3:5])))
    """
)


async def seed(sm: Sessionmaker) -> tuple[int, int]:
    async with sm.begin() as s:
        customer = await DirectoryRepository(s).add_customer(
            "Fjordbakst AS", "Fjordbakst", ["4721000001"]
        )
        agent = await AgentRepository(s).add_agent("Kari", "agent-kari", [customer.id])
    return customer.id, agent.id


def batches(sm: Sessionmaker) -> Callable[[], AbstractAsyncContextManager[CallStoreRepository]]:
    @asynccontextmanager
    async def one_transaction() -> AsyncIterator[CallStoreRepository]:
        async with sm.begin() as session:
            yield CallStoreRepository(session)

    return one_transaction


async def test_a_kill_9_before_the_batch_loses_nothing_and_a_replay_adds_nothing(
    db_url: str, sessionmaker: Sessionmaker, tmp_path: Path
) -> None:
    customer, agent = await seed(sessionmaker)
    spool = tmp_path / "spool" / "calls.jsonl"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, db_url, str(spool), str(customer), str(agent),
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    try:
        assert child.stdout is not None
        call_id = int(await asyncio.wait_for(child.stdout.readline(), 60))
    finally:
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 10)
    assert child.returncode == -signal.SIGKILL
    repo = CallStoreRepository(sessionmaker)
    before = await repo.get_call(call_id)
    assert before.ended_at is None and before.answered_at is None  # only the row is written
    assert [e.type for e in await repo.events(call_id)] == ["arrived"]
    left = spool.read_text()

    restarted = SpoolingStore(repo, spool, batch=batches(sessionmaker))
    assert restarted.spooling
    assert await restarted.drain() == 6
    await restarted.close()
    # A crash between the batch's commit and its count: the same lines once more.
    spool.write_text(left)
    again = SpoolingStore(repo, spool, batch=batches(sessionmaker))
    assert await again.drain() == 6
    await again.close()

    call = await repo.get_call(call_id)
    assert call.answered_at == T0 + timedelta(seconds=3) and call.agent_id == agent
    assert call.ended_at == T0 + timedelta(seconds=40) and call.outcome == "answered"
    assert call.hangup_cause == 16
    journal = await repo.events(call_id)
    assert [e.type for e in journal] == [
        "arrived",
        "offered",
        "agent_answered",
        "answered",
        "ended",
    ]
    assert [e.seq for e in journal] == [1, 2, 3, 4, 5]
    assert not spool.exists()
    shutil.rmtree(spool.parent)


async def test_batches_write_each_calls_journal_in_order(
    sessionmaker: Sessionmaker, tmp_path: Path
) -> None:
    """Twenty calls' records queued at once: written in one or a few transactions, each
    call's journal in the order it was queued, every seq once."""
    customer, agent = await seed(sessionmaker)
    repo = CallStoreRepository(sessionmaker)
    store = SpoolingStore(repo, tmp_path / "calls.jsonl", batch=batches(sessionmaker))
    journal = CallJournal(store)
    ids = []
    for n in range(20):
        at = T0 + timedelta(seconds=n)
        call_id = await store.create_call(
            channel_id=f"1701.{n}", linkedid=None, customer_id=customer,
            dialled_number="4721000001", caller_number=None, caller_name=None, arrived_at=at,
        )  # fmt: skip
        await journal.offered(call_id, at, agent)
        await journal.answered(call_id, at + timedelta(seconds=2), agent)
        ids.append(call_id)
    with capture_logs() as logs:
        for call_id in ids:
            await journal.ended(call_id, T0 + timedelta(minutes=5), Outcome.ANSWERED)
        await store.flush()
    assert not [e for e in logs if e["event"] == "spool.batch_refused"]  # few statements
    for call_id in ids:
        entries = await repo.events(call_id)
        assert [(e.seq, e.type) for e in entries] == [
            (1, "offered"), (2, "answered"), (3, "ended"),
        ]  # fmt: skip
        assert (await repo.get_call(call_id)).outcome == "answered"
    await store.close()
    assert not (tmp_path / "calls.jsonl").exists()


async def test_a_record_for_a_call_that_does_not_exist_is_left_out_not_its_batch(
    sessionmaker: Sessionmaker, tmp_path: Path
) -> None:
    customer, agent = await seed(sessionmaker)
    repo = CallStoreRepository(sessionmaker)
    store = SpoolingStore(repo, tmp_path / "calls.jsonl", batch=batches(sessionmaker))
    journal = CallJournal(store)
    call_id = await store.create_call(
        channel_id="1701.1", linkedid=None, customer_id=customer, dialled_number="4721000001",
        caller_number=None, caller_name=None, arrived_at=T0,
    )  # fmt: skip
    await journal.offered(call_id, T0, agent)
    await journal.offered(call_id + 1000, T0, agent)  # no such call: a bug somewhere
    await journal.ended(call_id, T0 + timedelta(seconds=5), Outcome.ABANDONED)
    await store.flush()
    assert [e.type for e in await repo.events(call_id)] == ["offered", "ended"]
    assert (await repo.get_call(call_id)).outcome == "abandoned"
    await store.close()
    assert not (tmp_path / "calls.jsonl").exists()

"""The call-record spool (calls/spool.py) with a fake database that can go away; the
real outage: tests/asterisk/test_faults.py."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from televikar_pbx.calls.spool import SpoolingStore

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@dataclass
class Event:
    type: str
    at: datetime


@dataclass
class Row:
    id: int


@dataclass
class FakeDatabase:
    down: bool = False
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    journal: dict[int, list[Event]] = field(default_factory=dict)
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    first_data: dict[int, Any] = field(default_factory=dict)

    def _check(self, op: str) -> None:
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        self.writes.append(op)

    async def create_call(self, **fields: Any) -> int:
        self._check("create_call")
        call_id = len(self.calls) + 1
        first = fields.pop("first_event", None)
        self.calls[call_id] = dict(fields)
        if first is not None:  # the row's first journal entry, in its transaction
            kind, data = first
            self.journal.setdefault(call_id, []).append(Event(kind, fields["arrived_at"]))
            self.first_data[call_id] = data
        return call_id

    async def append_event(self, call_id: int, type: str, at: datetime, **kw: Any) -> None:
        self._check("append_event")
        self.journal.setdefault(call_id, []).append(Event(type, at))

    async def mark_answered(self, call_id: int, agent_id: int, answered_at: datetime) -> None:
        self._check("mark_answered")
        self.calls[call_id].update(agent_id=agent_id, answered_at=answered_at)

    async def mark_ended(self, call_id: int, **fields: Any) -> None:
        self._check("mark_ended")
        self.calls[call_id].update(fields)

    async def add_message(self, call_id: int, **fields: Any) -> int:
        self._check("add_message")
        self.messages[call_id] = fields
        return len(self.messages)

    async def find_by_channel(self, channel_id: str) -> Row | None:
        self._check("find")
        ids = [n for n, c in self.calls.items() if c["channel_id"] == channel_id]
        return Row(ids[0]) if ids else None

    async def message_for_call(self, call_id: int) -> object | None:
        self._check("find")
        return self.messages.get(call_id)

    async def events(self, call_id: int) -> list[Event]:
        self._check("find")
        return self.journal.get(call_id, [])


async def a_call(store: SpoolingStore, channel: str, start: datetime) -> int:
    call_id = await store.create_call(
        channel_id=channel, linkedid=channel, customer_id=1, dialled_number="4721000001",
        caller_number="4790000001", caller_name=None, arrived_at=start,
    )  # fmt: skip
    await store.append_event(call_id, "arrived", start)
    await store.mark_answered(call_id, 7, start + timedelta(seconds=3))
    await store.mark_ended(
        call_id, ended_at=start + timedelta(seconds=9), outcome="answered",
        hangup_cause=16, hangup_cause_text="Normal Clearing",
    )  # fmt: skip
    return call_id


async def test_writes_go_through_while_the_database_answers(tmp_path: Path) -> None:
    db = FakeDatabase()
    store = SpoolingStore(db, tmp_path / "calls.jsonl")
    assert await a_call(store, "c1", T0) == 1
    assert db.calls[1]["outcome"] == "answered"
    assert not (tmp_path / "calls.jsonl").exists()


async def test_an_outage_spools_in_order_and_the_return_writes_each_record_once(
    tmp_path: Path,
) -> None:
    db = FakeDatabase()
    store = SpoolingStore(db, tmp_path / "calls.jsonl", retry_s=3600)
    first = await a_call(store, "c1", T0)
    db.down = True
    second = await store.create_call(
        channel_id="c2", linkedid="c2", customer_id=1, dialled_number="4721000001",
        caller_number=None, caller_name="Robert'); DROP TABLE calls;--", arrived_at=T0,
    )  # fmt: skip
    assert second == -1 and store.spooling  # a provisional id, routing goes on
    await store.append_event(second, "arrived", T0)
    await store.append_event(first, "late_note", T0)  # a real id, while spooling
    third = await a_call(store, "c3", T0 + timedelta(seconds=1))
    assert third == -2
    await store.add_message(second, 1, None, "/m/c2.wav", 4.5)
    await store.mark_ended(
        second, ended_at=T0 + timedelta(seconds=20), outcome="message",
        hangup_cause=None, hangup_cause_text=None,
    )  # fmt: skip
    spool = tmp_path / "calls.jsonl"
    assert spool.stat().st_mode & 0o777 == 0o600
    assert len(spool.read_text().splitlines()) == 9
    with pytest.raises(ConnectionRefusedError):
        await store.drain()  # still down: nothing lost, nothing written
    assert store.spooling and len(db.calls) == 1

    db.down = False
    assert await store.drain() == 9
    assert not store.spooling and not spool.exists()
    assert [c["channel_id"] for c in db.calls.values()] == ["c1", "c2", "c3"]
    assert db.calls[2]["outcome"] == "message" and db.messages[2]["file"] == "/m/c2.wav"
    assert db.calls[3]["answered_at"] == T0 + timedelta(seconds=4)
    assert db.calls[2]["caller_name"] == "Robert'); DROP TABLE calls;--"
    assert [e.type for e in db.journal[1]] == ["arrived", "late_note"]
    # Back to writing through; a call begun in the outage goes on under its real id.
    assert await a_call(store, "c4", T0) == 4
    await store.append_event(second, "agent_hung_up", T0 + timedelta(seconds=30))
    assert [e.type for e in db.journal[2]] == ["arrived", "agent_hung_up"]


async def test_a_restart_resumes_a_half_drained_spool_without_duplicates(
    tmp_path: Path,
) -> None:
    db = FakeDatabase(down=True)
    store = SpoolingStore(db, tmp_path / "calls.jsonl", retry_s=3600)
    await a_call(store, "c1", T0)
    await a_call(store, "c2", T0)
    # A drain that dies after committing line 6 but before counting it: 5 counted.
    db.down = False
    lines = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    first = await db.create_call(**{k: v for k, v in lines[0].items() if k not in ("op", "ref")})
    await db.append_event(first, "arrived", T0)
    await db.mark_answered(first, 7, T0 + timedelta(seconds=3))
    await db.mark_ended(first, ended_at=T0 + timedelta(seconds=9), outcome="answered")
    second = await db.create_call(**{k: v for k, v in lines[4].items() if k not in ("op", "ref")})
    await db.append_event(second, "arrived", T0)
    (tmp_path / "calls.jsonl.done").write_text("5")

    restarted = SpoolingStore(db, tmp_path / "calls.jsonl", retry_s=3600)
    assert restarted.spooling
    assert await restarted.drain() == 3
    assert len(db.calls) == 2
    assert [e.type for e in db.journal[2]] == ["arrived"]  # not twice
    assert db.calls[2]["outcome"] == "answered"


async def test_errors_that_are_not_an_outage_are_not_spooled(tmp_path: Path) -> None:
    class Broken(FakeDatabase):
        async def mark_ended(self, call_id: int, **fields: Any) -> None:
            raise ValueError("unknown outcome 'x'")

    store = SpoolingStore(Broken(), tmp_path / "calls.jsonl")
    with pytest.raises(ValueError, match="unknown outcome"):
        await store.mark_ended(1, outcome="x")
    assert not store.spooling


async def test_a_call_begun_in_an_outage_keeps_its_arrival_entry(tmp_path: Path) -> None:
    """The arrival is written with the row (create_call's first_event); through the spool
    it comes back from JSON with its type, data and the row's time, once."""
    db = FakeDatabase(down=True)
    store = SpoolingStore(db, tmp_path / "calls.jsonl", retry_s=3600)
    call_id = await store.create_call(
        channel_id="c1", linkedid="c1", customer_id=1, dialled_number="4721000001",
        caller_number="4790000001", caller_name=None, arrived_at=T0,
        first_event=("arrived", {"dialled": "4721000001", "caller": "4790000001"}),
    )  # fmt: skip
    assert call_id == -1 and not db.calls
    db.down = False
    assert await store.drain() == 1
    assert db.journal[1] == [Event("arrived", T0)]
    assert db.first_data[1] == {"dialled": "4721000001", "caller": "4790000001"}
    assert await store.drain() == 0  # nothing twice


# --- written behind the routing (``batch``) ---------------------------------------------


@dataclass
class Batches:
    """``batch`` for a FakeDatabase: each transaction is recorded (its ops), rolled back
    when it raises, and can be held open until ``release`` is set."""

    db: FakeDatabase
    done: list[list[str]] = field(default_factory=list)
    release: asyncio.Event | None = None

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeDatabase]:
        if self.release is not None:
            await self.release.wait()
        before = len(self.db.writes)
        saved = copy.deepcopy((self.db.calls, self.db.journal, self.db.messages))
        try:
            yield self.db
        except BaseException:  # a transaction: nothing of it stays
            self.db.calls, self.db.journal, self.db.messages = saved
            raise
        self.done.append(self.db.writes[before:])


def behind(db: FakeDatabase, tmp_path: Path, **kw: Any) -> tuple[SpoolingStore, Batches]:
    batches = Batches(db)
    return SpoolingStore(db, tmp_path / "calls.jsonl", batch=batches, **kw), batches


async def test_behind_the_routing_records_wait_for_no_database_and_arrive_in_order(
    tmp_path: Path,
) -> None:
    db = FakeDatabase()
    store, batches = behind(db, tmp_path)
    batches.release = asyncio.Event()  # the database is slow: nothing is written yet
    first = await a_call(store, "c1", T0)
    second = await a_call(store, "c2", T0)
    assert (first, second) == (1, 2)  # the rows themselves are written at once
    assert db.writes == ["create_call", "create_call"]
    assert len((tmp_path / "calls.jsonl").read_text().splitlines()) == 6  # queued, on disk
    flushed = asyncio.create_task(store.flush())
    await asyncio.sleep(0.01)
    assert not flushed.done()
    batches.release.set()
    await flushed
    assert batches.done == [["append_event", "mark_answered", "mark_ended"] * 2]  # one batch
    assert db.calls[1]["outcome"] == db.calls[2]["outcome"] == "answered"
    assert not (tmp_path / "calls.jsonl").exists() and not store.spooling
    await store.close()


async def test_reads_wait_for_what_was_written_behind_before_them(tmp_path: Path) -> None:
    db = FakeDatabase()
    store, batches = behind(db, tmp_path)
    batches.release = asyncio.Event()
    call_id = await a_call(store, "c1", T0)
    read = asyncio.create_task(store.events(call_id))
    await asyncio.sleep(0.01)
    assert not read.done()
    batches.release.set()
    assert [e.type for e in await read] == ["arrived"]
    await store.close()


async def test_an_outage_behind_the_routing_hands_the_queue_to_the_spool(tmp_path: Path) -> None:
    db = FakeDatabase()
    store, _ = behind(db, tmp_path, retry_s=3600)
    first = await a_call(store, "c1", T0)
    await store.flush()
    db.down = True
    await store.append_event(first, "late_note", T0)  # queued; its batch fails
    await store.flush()  # does not wait for the database to come back
    assert store.spooling
    second = await store.create_call(
        channel_id="c2", linkedid="c2", customer_id=1, dialled_number="4721000001",
        caller_number=None, caller_name=None, arrived_at=T0,
    )  # fmt: skip
    assert second == -1
    await store.append_event(second, "arrived", T0)  # spooled behind the queued line
    db.down = False
    assert await store.drain() == 3
    assert [e.type for e in db.journal[1]] == ["arrived", "late_note"]
    assert [e.type for e in db.journal[2]] == ["arrived"]
    assert not store.spooling and not (tmp_path / "calls.jsonl").exists()
    await store.append_event(second, "agent_hung_up", T0)  # behind again, by its real id
    await store.flush()
    assert [e.type for e in db.journal[2]] == ["arrived", "agent_hung_up"]
    await store.close()


async def test_a_record_the_database_refuses_is_left_out_and_the_rest_written(
    tmp_path: Path,
) -> None:
    class Refuses(FakeDatabase):
        async def mark_ended(self, call_id: int, **fields: Any) -> None:
            if fields["outcome"] == "x":
                raise ValueError("unknown outcome 'x'")
            await super().mark_ended(call_id, **fields)

    db = Refuses()
    store, _ = behind(db, tmp_path)
    call_id = await a_call(store, "c1", T0)
    await store.mark_ended(call_id, outcome="x")
    await store.append_event(call_id, "after", T0)
    await store.flush()
    assert [e.type for e in db.journal[1]] == ["arrived", "after"]
    assert db.calls[1]["outcome"] == "answered" and not store.spooling
    await store.close()


async def test_close_writes_what_is_queued(tmp_path: Path) -> None:
    db = FakeDatabase()
    store, _ = behind(db, tmp_path)
    await a_call(store, "c1", T0)
    await store.close()
    assert db.calls[1]["outcome"] == "answered"
    assert not (tmp_path / "calls.jsonl").exists()


async def test_a_crash_before_the_batch_leaves_the_records_to_the_next_start(
    tmp_path: Path,
) -> None:
    """What was queued but not written (the process killed) is replayed at the next start,
    once, even when part of it was written (the count of done lines is behind)."""
    db = FakeDatabase()
    store, batches = behind(db, tmp_path, retry_s=3600)
    batches.release = asyncio.Event()  # never: the process dies first
    call_id = await a_call(store, "c1", T0)
    await db.append_event(call_id, "arrived", T0)  # committed, not counted: a kill -9
    restarted = SpoolingStore(db, tmp_path / "calls.jsonl", retry_s=3600, batch=Batches(db))
    assert restarted.spooling
    assert await restarted.drain() == 3
    assert [e.type for e in db.journal[1]] == ["arrived"]
    assert db.calls[1]["outcome"] == "answered"
    await store.close(flush_s=0.01)
    await restarted.close()


async def test_records_gather_into_one_batch_and_a_flush_does_not_wait_for_it(
    tmp_path: Path,
) -> None:
    db = FakeDatabase()
    store, batches = behind(db, tmp_path, gather_s=0.2)
    await a_call(store, "c1", T0)
    await asyncio.sleep(0.01)
    await a_call(store, "c2", T0)
    await asyncio.sleep(0.4)
    assert len(batches.done) == 1 and len(batches.done[0]) == 6  # two calls, one transaction
    slow, _ = behind(FakeDatabase(), tmp_path / "other", gather_s=3600)
    await a_call(slow, "c1", T0)
    await asyncio.wait_for(slow.flush(), 5)  # a reader does not wait for the gathering
    await store.close()
    await slow.close()

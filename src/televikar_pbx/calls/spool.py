"""Call records through a database outage: a local append-only spool.

:class:`SpoolingStore` stands in front of the database repository as the call shell's
:class:`~televikar_pbx.calls.ports.CallStore`. While the database answers, every write
goes straight through. When a write fails because the database is unreachable, that
write and every later one go to the spool, a JSON-lines file, each line flushed and
fsync'ed before the call goes on: routing never waits for the database, and a crash
loses nothing that was acknowledged. A drainer retries every ``retry_s`` and writes the
spooled records to the database in order, once each, then empties the spool.

A call created while spooling gets a *provisional* id (a negative number, unique within
the spool) that the desk uses like any other; when the drainer creates the real row,
later records of that call are written with the real id.

Once each: the drainer records how many lines it has written in a second file
(``<spool>.done``, fsync'ed after each line), so a restart resumes where it stopped. A
crash between a database commit and that count would replay one line, so each replay is
idempotent: a call is looked up by its channel id before it is created, a message by its
call, an event by its call, type and instant; setting the answer or the end again
writes the same values; the availability log's writes are idempotent themselves
(db/agent_log_repo.py).

Written behind the routing (``batch`` given, as ``serve`` does): the journal entries,
the row's answer and end, and the agents' availability log (:data:`BEHIND_OPS`) do not
wait for the database at all. Each is appended to the same spool file (without
``fsync``: a ``kill -9`` does not lose what the kernel holds, a power cut may lose the
last milliseconds, as the database's own ``synchronous = NORMAL`` does) and queued; a
writer task writes the queue in order, up to :data:`MAX_BATCH` records in one
transaction, after letting them gather for :data:`GATHER_S` (the lag: that, and the
write of one batch), and counts them done. A restart after a crash replays the lines
not counted, with the same idempotent replay.
The call's row itself (``create_call``) and a voice message are still written at once
while the database answers (the screen pop and the messages need the row's id), but the
routing does not wait for the row: the desk offers the call while it is written
(``ActiveCall.row``), and only what needs the id awaits it. Reads
(recovery's) first wait for what was queued before them (:meth:`SpoolingStore.flush`,
which does not wait for the gathering); ``close`` flushes. A record the database
refuses for another reason than an outage (a bug, bad data) is logged and left out, as
a write that raised did before; the rest of its batch is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import exc as sa_exc

log = structlog.get_logger("televikar_pbx.calls.spool")

_DATETIME_FIELDS = ("arrived_at", "at", "answered_at", "ended_at")

# What is written behind the routing when the store has a ``batch`` (module doc): the
# journal, the row's answer and end, and the agents' availability log.
BEHIND_OPS = frozenset(
    {"append_event", "mark_answered", "mark_ended", "log_agent_state", "close_agent_log"}
)
# Records in one transaction of the writer: a call's own row (create_call) waits for at
# most one batch.
MAX_BATCH = 100
# How long the writer lets records gather before a batch that is not full: at a few
# calls a second a transaction per record or two cost more of our CPU per call than
# the routing; this bounds the lag (a flush does not wait for it).
GATHER_S = 0.05


# SQLSTATE classes that mean "no usable connection": 08 connection exception, 57P
# operator intervention (admin/crash shutdown, cannot connect now), 53300 too many
# connections.
_OUTAGE_SQLSTATES = ("08", "57P", "53300")


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached (not a bug or bad data)."""
    if isinstance(error, sa_exc.IntegrityError):
        return False
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        if isinstance(seen, OSError | TimeoutError | ConnectionError):
            return True
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(state, str) and state.startswith(_OUTAGE_SQLSTATES):
            return True
        if type(seen).__module__.startswith("asyncpg") and "Connect" in type(seen).__name__:
            return True  # ConnectionDoesNotExistError, CannotConnectNowError, ...
        seen = seen.__cause__ or seen.__context__
    return False


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    """A queued record's arguments (without its op and provisional ref)."""
    return {k: v for k, v in record.items() if k not in ("op", "ref")}


def _decode(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        k: datetime.fromisoformat(v) if k in _DATETIME_FIELDS and isinstance(v, str) else v
        for k, v in fields.items()
    }


class SpoolingStore:
    """A CallStore that spools writes while the database is away (see module doc)."""

    def __init__(
        self, inner: Any, spool_file: Path, *, retry_s: float = 1.0,
        outage: Callable[[BaseException], bool] = is_outage,
        batch: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
        gather_s: float = GATHER_S,
    ) -> None:  # fmt: skip
        """``batch``: one transaction, as a store like ``inner`` (write behind the routing,
        module doc); None: every write goes straight through while the database answers."""
        self._inner = inner
        self._batch = batch
        self._queue: list[dict[str, Any]] = []  # written behind, not yet in the database
        self._queued = 0  # records ever queued behind; and of those, written (for flush)
        self._written = 0
        self._done = 0  # lines of the spool file in the database (its .done count)
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()  # someone flushes: no gathering
        self._gather_s = gather_s
        self._progress = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._fd: int | None = None  # the spool file, open while lines are written behind
        self._file = spool_file
        self._done_file = spool_file.with_name(spool_file.name + ".done")
        self._retry_s = retry_s
        self._outage = outage
        self._lock = asyncio.Lock()  # one writer of the spool and the database at a time
        self._backlog = 0  # lines in the spool not yet written to the database
        self._provisional = 0  # the last provisional id handed out (negative)
        self._real: dict[int, int] = {}  # provisional id -> the row's id, once written
        self._drainer: asyncio.Task[None] | None = None
        self._load()

    # --- the spool on disk -----------------------------------------------------------

    def _load(self) -> None:
        """Resume a spool a previous run left (it died during an outage)."""
        lines = self._lines()
        done = self._done_count()
        self._done = done
        self._backlog = max(0, len(lines) - done)
        for line in lines:
            ref = line.get("ref")
            if isinstance(ref, int) and ref < self._provisional:
                self._provisional = ref
        if self._backlog:
            log.warning("spool.pending", records=self._backlog, file=str(self._file))

    def _lines(self) -> list[dict[str, Any]]:
        if not self._file.exists():
            return []
        records = []
        for raw in self._file.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(raw))
            except json.JSONDecodeError:
                log.error("spool.torn_line", file=str(self._file))  # a crash mid-write
        return records

    def _done_count(self) -> int:
        try:
            return int(self._done_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _open(self) -> int:
        try:
            return os.open(self._file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except FileNotFoundError:
            self._file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(self._file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _append(self, record: dict[str, Any], *, sync: bool = True) -> None:
        """One line; ``sync``: on disk (fsync) before returning (its own descriptor:
        it runs in a thread), else in the kernel's hands (safe from a kill -9, not from
        a power cut) through the descriptor kept open while lines are written behind."""
        line = (json.dumps({k: _encode(v) for k, v in record.items()}) + "\n").encode()
        if not sync:
            if self._fd is None:
                self._fd = self._open()
            os.write(self._fd, line)
            return
        fd = self._open()
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _mark_done(self, count: int, *, sync: bool = True) -> None:
        tmp = self._done_file.with_name(self._done_file.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, str(count).encode())
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._done_file)

    def _clear(self) -> None:
        self._done = 0
        self._close_fd()
        for path in (self._file, self._done_file):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # --- writes ----------------------------------------------------------------------

    @property
    def spooling(self) -> bool:
        return self._backlog > 0

    async def _write(self, op: str, fields: dict[str, Any], ref: int | None = None) -> Any:
        if self._batch is not None and op in BEHIND_OPS and not self._backlog:
            self._enqueue(op, fields)
            return None
        async with self._lock:
            call_id = fields.get("call_id")
            if isinstance(call_id, int) and call_id in self._real:
                fields = {**fields, "call_id": self._real[call_id]}
            if not self._backlog:
                try:
                    return await getattr(self._inner, op)(**fields)
                except Exception as exc:
                    if not self._outage(exc):
                        raise
                    self._to_outage(exc)
            if op == "create_call":
                self._provisional -= 1
                ref = self._provisional
            record = {"op": op, "ref": ref, **fields}
            self._backlog += 1  # first: a write behind now queues after this line
            try:
                await asyncio.to_thread(self._append, record)
            except BaseException:
                self._backlog -= 1
                raise
            self._start_drainer()
            return ref

    def _to_outage(self, exc: BaseException) -> None:
        """The database is away: every line not yet written, the queue's too, is the
        drainer's now (it replays them in order, idempotently). Under the lock."""
        log.error("spool.database_unavailable", error=str(exc).splitlines()[0])
        self._backlog += len(self._queue)
        self._written += len(self._queue)  # the drainer's: flush() no longer waits for them
        self._queue.clear()
        self._progress.set()  # flush() does not wait for an outage to end
        self._progress = asyncio.Event()
        self._start_drainer()

    # --- written behind the routing --------------------------------------------------

    def _enqueue(self, op: str, fields: dict[str, Any]) -> None:
        """Append and queue, without awaiting: the two writes of a journal method (the
        row, then its entry) are in one batch, and the routing never waits here."""
        call_id = fields.get("call_id")
        if isinstance(call_id, int) and call_id in self._real:
            fields = {**fields, "call_id": self._real[call_id]}
        record = {"op": op, "ref": None, **fields}
        self._append(record, sync=False)
        self._queue.append(record)
        self._queued += 1
        self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_behind(), name="spool-writer")

    async def _write_behind(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._queue) < MAX_BATCH and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), self._gather_s)
            while self._queue and not self._backlog:
                try:
                    async with self._lock:
                        if self._queue and not self._backlog:
                            await self._write_batch(self._queue[:MAX_BATCH])
                except Exception:  # the spool file itself (a full disk): try again
                    log.exception("spool.writer_failed")
                    await asyncio.sleep(self._retry_s)

    async def _write_batch(self, batch: list[dict[str, Any]]) -> None:
        """Under the lock: the batch in one transaction; when that fails for another
        reason than an outage, one record per transaction, leaving out the refused."""
        assert self._batch is not None
        try:
            async with self._batch() as unit:
                many = getattr(unit, "write_records", None)
                if many is None:
                    for record in batch:
                        await self._apply(unit, record)
                else:  # the repository's few statements for the whole batch
                    await many([(r["op"], _fields(r)) for r in batch])
        except Exception as exc:
            if self._outage(exc):
                self._to_outage(exc)
                return
            log.warning("spool.batch_refused", records=len(batch), error=str(exc).splitlines()[0])
            for n, record in enumerate(batch):
                try:
                    async with self._batch() as unit:
                        await self._apply(unit, record)
                except Exception as one:
                    if self._outage(one):
                        self._advance(n)
                        self._to_outage(one)
                        return
                    log.error(
                        "spool.record_refused", op=record["op"], call_id=record.get("call_id"),
                        error=str(one).splitlines()[0],
                    )  # fmt: skip
        self._advance(len(batch))

    @staticmethod
    async def _apply(unit: Any, record: dict[str, Any]) -> None:
        await getattr(unit, record["op"])(**_fields(record))

    def _advance(self, n: int) -> None:
        """``n`` records at the head of the queue are in the database."""
        if not n:
            return
        del self._queue[:n]
        self._written += n
        self._done += n
        if not self._queue and not self._backlog:
            self._clear()
        else:
            self._mark_done(self._done, sync=False)
        self._progress.set()
        self._progress = asyncio.Event()

    async def flush(self) -> None:
        """Wait until what was written behind before this call is in the database (or
        the database went away: then it waits in the spool)."""
        target = self._queued
        while self._written < target and not self._backlog:
            self._hurry.set()
            await self._progress.wait()
        if not self._queue:
            self._hurry.clear()

    async def create_call(self, **fields: Any) -> int:
        result: int = await self._write("create_call", fields)
        return result

    async def append_event(
        self,
        call_id: int,
        type: str,
        at: datetime,
        agent_id: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        fields = {"call_id": call_id, "type": type, "at": at, "agent_id": agent_id, "data": data}
        await self._write("append_event", fields)

    async def mark_answered(self, call_id: int, agent_id: int, answered_at: datetime) -> None:
        fields = {"call_id": call_id, "agent_id": agent_id, "answered_at": answered_at}
        await self._write("mark_answered", fields)

    async def mark_ended(self, call_id: int, **fields: Any) -> None:
        await self._write("mark_ended", {"call_id": call_id, **fields})

    async def log_agent_state(self, agent_id: int, state: str, at: datetime) -> None:
        """The agents' availability log (db/agent_log_repo.py), behind the routing."""
        await self._write("log_agent_state", {"agent_id": agent_id, "state": state, "at": at})

    async def close_agent_log(self, at: datetime) -> None:
        await self._write("close_agent_log", {"at": at})

    async def add_message(
        self,
        call_id: int,
        customer_id: int,
        caller_number: str | None,
        file: str,
        duration_s: float,
    ) -> int:
        fields = {
            "call_id": call_id,
            "customer_id": customer_id,
            "caller_number": caller_number,
            "file": file,
            "duration_s": duration_s,
        }
        result: int = await self._write("add_message", fields)
        return result

    # Reads go to the database (they are for recovery, which retries on its next run),
    # after what was written behind before them.
    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if self._batch is None or not inspect.iscoroutinefunction(attr):
            return attr

        async def after_flush(*args: Any, **kwargs: Any) -> Any:
            await self.flush()
            return await attr(*args, **kwargs)

        return after_flush

    # --- draining --------------------------------------------------------------------

    def start(self) -> None:
        """Drain what a previous run left, if anything."""
        if self._backlog:
            self._start_drainer()

    def _start_drainer(self) -> None:
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain_loop(), name="spool-drainer")

    async def close(self, flush_s: float = 5.0) -> None:
        """Write what is queued behind (up to ``flush_s``; what is left stays in the
        spool for the next start), then stop the writer and the drainer."""
        if self._queue and not self._backlog:
            try:
                await asyncio.wait_for(self.flush(), flush_s)
            except TimeoutError:
                log.warning("spool.not_flushed", records=len(self._queue), file=str(self._file))
        for task in (self._writer, self._drainer):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._close_fd()

    async def _drain_loop(self) -> None:
        while self._backlog:
            await asyncio.sleep(self._retry_s)
            try:
                await self.drain()
            except Exception as exc:
                if not self._outage(exc):
                    log.exception("spool.drain_failed")
                    raise

    async def drain(self) -> int:
        """Write the spooled records to the database; returns how many were written."""
        async with self._lock:
            lines = await asyncio.to_thread(self._lines)
            done = self._done
            ids: dict[int, int] = {}  # provisional -> real (earlier drains: _resolve)
            written = 0
            for n in range(done, len(lines)):
                await self._replay(lines[n], ids)
                await asyncio.to_thread(self._mark_done, n + 1)
                self._done = n + 1
                written += 1
            self._backlog = 0
            self._real.update(ids)
            await asyncio.to_thread(self._clear)
        log.info("spool.drained", records=written)
        return written

    async def _replay(self, line: dict[str, Any], ids: dict[int, int]) -> None:
        op, ref = line["op"], line.get("ref")
        fields = _decode({k: v for k, v in line.items() if k not in ("op", "ref")})
        call_id = fields.get("call_id")
        if isinstance(call_id, int) and call_id < 0:
            if call_id not in ids:
                await self._resolve(call_id, ids)
            fields["call_id"] = ids[call_id]
        if op == "create_call":
            existing = await self._inner.find_by_channel(fields["channel_id"])
            real = existing.id if existing else await self._inner.create_call(**fields)
            assert isinstance(ref, int)
            ids[ref] = real
        elif op == "add_message":
            if await self._inner.message_for_call(fields["call_id"]) is None:
                await self._inner.add_message(**fields)
        elif op == "append_event":
            journal = await self._inner.events(fields["call_id"])
            if not any(e.type == fields["type"] and e.at == fields["at"] for e in journal):
                await self._inner.append_event(**fields)
        else:
            await getattr(self._inner, op)(**fields)

    async def _resolve(self, ref: int, ids: dict[int, int]) -> None:
        """The real id of a provisional call written by an earlier drain (a restart)."""
        for line in await asyncio.to_thread(self._lines):
            if line["op"] == "create_call" and line["ref"] == ref:
                existing = await self._inner.find_by_channel(line["channel_id"])
                if existing is not None:
                    ids[ref] = existing.id
                    return
        raise LookupError(f"spool: no call for provisional id {ref}")

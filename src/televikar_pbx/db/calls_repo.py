"""The call log: one summary row per call, and each call's append-only event journal."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    SQLColumnExpression,
    String,
    Table,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from televikar_pbx.db import models
from televikar_pbx.db.messages_repo import MessageRepository, message_record
from televikar_pbx.db.records import CallEventRecord, CallOutcome, CallRecord, MessageRecord
from televikar_pbx.db.repo_base import CallNotFound, Conflict, Repository, require_aware
from televikar_pbx.domain.call_facts import WAIT_ENDS_AT_QUEUE_EXIT, CallTimes, facts_of, wait_ends
from televikar_pbx.domain.journal import QUEUE_EXITS, JournalEntry
from televikar_pbx.domain.sla import CallFacts


@dataclass(frozen=True, slots=True)
class CallLogEntry:
    """One line of a customer's call log: the call, who answered, its message."""

    call: CallRecord
    # The name of ``call.agent_id``: the agent last offered the call, or who answered it.
    agent_name: str | None
    # The first journal entry in domain.journal.QUEUE_EXITS; None: none happened.
    left_queue_at: dt.datetime | None
    # The caller's voice message, if it left one.
    message: MessageRecord | None
    # Every message the call produced (voice, and messages or orders agents took on it).
    messages: tuple[MessageRecord, ...] = ()

    @property
    def answered_by(self) -> str | None:
        """The agent who answered; None when nobody did."""
        return self.agent_name if self.call.answered_at is not None else None

    @property
    def wait(self) -> dt.timedelta | None:
        """Arrival to where the wait ends (``domain.call_facts.wait_ends``); None while
        the call goes on (or was never closed)."""
        call = self.call
        until = wait_ends(call.answered_at, self.left_queue_at, call.ended_at)
        return None if until is None else until - call.arrived_at

    def facts(self) -> CallFacts | None:
        """What the SLA figures need of this call (``domain.call_facts.facts_of``); None
        while it has not ended."""
        call = self.call
        if call.ended_at is None or call.outcome is None:
            return None
        return facts_of(
            (
                call.id,
                call.arrived_at,
                call.answered_at,
                call.ended_at,
                call.outcome,
                call.agent_id,
                self.left_queue_at,
            )
        )

    @property
    def talk(self) -> dt.timedelta | None:
        """Answer to end, for answered calls that ended."""
        call = self.call
        if call.answered_at is None or call.ended_at is None:
            return None
        return call.ended_at - call.answered_at


# ``ended_calls_between`` may read a million calls a night, so it keeps per-row Python work
# down (benchmarks/sla_job.py):
# - instants are read as plain DateTime and come out aware UTC without Python code:
#   asyncpg returns timestamptz aware in UTC, and SQLite's naive UTC text gets "+00:00"
#   appended in the query, which the driver's parser (datetime.fromisoformat) reads as
#   aware UTC. UTCDateTime's per-value hook would cost more than the query;
# - rows become plain tuples a few hundred at a time: fewer than the cyclic GC's first
#   threshold (700), they die young instead of filling the old generation, which the
#   collector would otherwise walk again and again (a quarter of the job's time).
_INSTANT = DateTime(timezone=True)
_PARTITION = 500
# The journal entry types stored for a queue exit, in a fixed order for the SQL.
_QUEUE_EXITS = sorted(entry.value for entry in QUEUE_EXITS)
_WAIT_ENDS_AT_QUEUE_EXIT = [outcome.value for outcome in WAIT_ENDS_AT_QUEUE_EXIT]


def _left_queue_at() -> SQLColumnExpression[dt.datetime]:
    """The call's first queue exit in its journal (correlated to the calls row)."""
    call, event = models.Call, models.CallEvent
    return (
        select(func.min(event.at))
        .where(event.call_id == call.id, event.type.in_(_QUEUE_EXITS))
        .correlate(call)
        .scalar_subquery()
    )


class CallRepository(Repository):
    """The calls table (one summary row per call) and its append-only event journal."""

    async def create_call(
        self,
        channel_id: str,
        linkedid: str | None,
        customer_id: int | None,
        dialled_number: str,
        caller_number: str | None,
        caller_name: str | None,
        arrived_at: dt.datetime,
        first_event: tuple[str, Mapping[str, Any]] | None = None,
    ) -> int:
        """Insert the call's row; returns its id. ``customer_id`` None: unknown number.
        ``first_event`` (type, data): its first journal entry, at ``arrived_at``, in the
        same transaction (one write while the caller waits for an agent, not two).

        ``linkedid`` None is stored as ``channel_id``: the caller's channel starts the call,
        so Asterisk gives it its own uniqueid as linkedid. What the caller chose (number,
        name) is data: kept as given, cut to its column, without NUL characters (which
        PostgreSQL's text refuses), so no caller can make the row fail.
        """
        require_aware("arrived_at", arrived_at)
        dialled_number = fit(dialled_number, 32) or ""
        caller_number, caller_name = fit(caller_number, 64), fit(caller_name, 128)
        stmt = (
            insert(models.Call)
            .values(
                channel_id=channel_id,
                linkedid=linkedid or channel_id,
                customer_id=customer_id,
                dialled_number=dialled_number,
                caller_number=caller_number,
                caller_name=caller_name,
                arrived_at=arrived_at,
                last_event_seq=0 if first_event is None else 1,
            )
            .returning(models.Call.id)
        )
        async with self._unit() as s:
            try:
                call_id: int = (await s.execute(stmt)).scalar_one()
            except IntegrityError as exc:
                raise Conflict(f"call on channel {channel_id!r}: {exc.orig}") from exc
            if first_event is not None:
                type_, data = first_event
                await s.execute(
                    insert(models.CallEvent).values(
                        call_id=call_id, seq=1, type=type_, at=arrived_at, data=dict(data)
                    )
                )
            return call_id

    async def append_event(
        self,
        call_id: int,
        type: str,
        at: dt.datetime,
        agent_id: int | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Append to the call's journal with the call's next seq (1, 2, ...)."""
        require_aware("at", at)
        async with self._unit() as s:
            # Bumping the counter on the call's row first takes its write lock, so two
            # writers of one call queue up instead of both reading max(seq) and colliding.
            seq = await s.scalar(
                update(models.Call)
                .where(models.Call.id == call_id)
                .values(last_event_seq=models.Call.last_event_seq + 1)
                .returning(models.Call.last_event_seq)
                .execution_options(synchronize_session=False)
            )
            if seq is None:
                raise CallNotFound(f"no call with id {call_id}")
            try:
                await s.execute(
                    insert(models.CallEvent).values(
                        call_id=call_id,
                        seq=seq,
                        type=type,
                        at=at,
                        agent_id=agent_id,
                        data=dict(data or {}),
                    )
                )
            except IntegrityError as exc:
                raise Conflict(f"event {type!r} of call {call_id}: {exc.orig}") from exc

    async def write_records(self, records: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Records written behind the routing (calls/spool.py), in order, as if each
        ``(op, fields)`` were :meth:`append_event`, :meth:`mark_answered` or
        :meth:`mark_ended` called in turn, in a few statements for any number: one
        UPDATE moves every call's event counter at once (RETURNING the new values), one
        INSERT takes all the entries, one UPDATE per kind of row change (executemany).
        A call that does not exist raises :class:`CallNotFound` (the caller then writes
        the records one by one to find it); an unknown ``op`` raises ValueError."""
        events: list[Mapping[str, Any]] = []
        answered: list[dict[str, Any]] = []
        ended: list[dict[str, Any]] = []
        for op, fields in records:
            if op == "append_event":
                require_aware("at", fields["at"])
                events.append(fields)
            elif op == "mark_answered":
                require_aware("answered_at", fields["answered_at"])
                answered.append({"call_id": fields["call_id"], "agent_id": fields["agent_id"],
                                 "answered_at": fields["answered_at"]})  # fmt: skip
            elif op == "mark_ended":
                require_aware("ended_at", fields["ended_at"])
                ended.append({
                    "call_id": fields["call_id"], "ended_at": fields["ended_at"],
                    "outcome": CallOutcome(fields["outcome"]).value,
                    "hangup_cause": fields.get("hangup_cause"),
                    "hangup_cause_text": fields.get("hangup_cause_text"),
                })  # fmt: skip
            else:
                raise ValueError(f"not a record written behind: {op!r}")
        calls = cast(Table, models.Call.__table__)
        seen: set[int] = set()  # calls known to exist (their event counter moved)
        async with self._unit() as s:
            if events:
                per_call = Counter(int(e["call_id"]) for e in events)
                bump = case(
                    *((calls.c.id == call_id, n) for call_id, n in per_call.items()), else_=0
                )
                rows = await s.execute(
                    update(calls)
                    .where(calls.c.id.in_(list(per_call)))
                    .values(last_event_seq=calls.c.last_event_seq + bump)
                    .returning(calls.c.id, calls.c.last_event_seq)
                )
                next_seq = {int(i): int(last) - per_call[int(i)] + 1 for i, last in rows}
                seen = set(next_seq)
                missing = set(per_call) - seen
                if missing:
                    raise CallNotFound(f"no call with id {min(missing)}")
                values = []
                for e in events:
                    call_id = int(e["call_id"])
                    values.append({
                        "call_id": call_id, "seq": next_seq[call_id], "type": e["type"],
                        "at": e["at"], "agent_id": e.get("agent_id"),
                        "data": dict(e.get("data") or {}),
                    })  # fmt: skip
                    next_seq[call_id] += 1
                try:
                    await s.execute(insert(models.CallEvent), values)
                except IntegrityError as exc:
                    raise Conflict(f"events of calls {sorted(per_call)}: {exc.orig}") from exc
            unseen = {int(c["call_id"]) for c in answered + ended} - seen
            if unseen:  # executemany's rowcount cannot tell (asyncpg): ask
                found = set(await s.scalars(select(calls.c.id).where(calls.c.id.in_(unseen))))
                if unseen - found:
                    raise CallNotFound(f"no call with id {min(unseen - found)}")
            for changes, columns in ((answered, ("agent_id", "answered_at")),
                                     (ended, ("ended_at", "outcome", "hangup_cause",
                                              "hangup_cause_text"))):  # fmt: skip
                if not changes:
                    continue
                await s.execute(
                    update(calls)
                    .where(calls.c.id == bindparam("call_id"))
                    .values({c: bindparam(c) for c in columns}),
                    changes,
                )

    async def mark_offered(self, call_id: int, agent_id: int) -> None:
        """The call rings at ``agent_id`` (the last agent offered is kept)."""
        await self._update(call_id, agent_id=agent_id)

    async def mark_answered(self, call_id: int, agent_id: int, answered_at: dt.datetime) -> None:
        require_aware("answered_at", answered_at)
        await self._update(call_id, agent_id=agent_id, answered_at=answered_at)

    async def mark_ended(
        self,
        call_id: int,
        ended_at: dt.datetime,
        outcome: CallOutcome | str,
        hangup_cause: int | None = None,
        hangup_cause_text: str | None = None,
    ) -> None:
        """``outcome`` must be a ``CallOutcome`` value (ValueError otherwise)."""
        require_aware("ended_at", ended_at)
        await self._update(
            call_id,
            ended_at=ended_at,
            outcome=CallOutcome(outcome).value,
            hangup_cause=hangup_cause,
            hangup_cause_text=hangup_cause_text,
        )

    async def get_call(self, call_id: int) -> CallRecord:
        record = await self._find_call(models.Call.id == call_id)
        if record is None:
            raise CallNotFound(f"no call with id {call_id}")
        return record

    async def find_by_channel(self, channel_id: str) -> CallRecord | None:
        return await self._find_call(models.Call.channel_id == channel_id)

    async def open_calls(self, arrived_before: dt.datetime) -> list[CallRecord]:
        """Calls not ended that arrived before ``arrived_before``, oldest first: after a
        restart, the calls a previous run left open."""
        require_aware("arrived_before", arrived_before)
        query = (
            select(models.Call)
            .where(models.Call.ended_at.is_(None), models.Call.arrived_at < arrived_before)
            .order_by(models.Call.arrived_at, models.Call.id)
        )
        async with self._unit() as s:
            rows = await s.scalars(query.execution_options(populate_existing=True))
            return [_record(row) for row in rows]

    async def list_calls(self, customer_id: int | None = None) -> list[CallRecord]:
        """All calls, or one customer's, in order of arrival."""
        query = select(models.Call).order_by(models.Call.arrived_at, models.Call.id)
        if customer_id is not None:
            query = query.where(models.Call.customer_id == customer_id)
        async with self._unit() as s:
            rows = await s.scalars(query.execution_options(populate_existing=True))
            return [_record(row) for row in rows]

    async def recent_calls_from(
        self, customer_id: int, caller_number: str, limit: int = 5, before: int | None = None
    ) -> list[CallRecord]:
        """The customer's last ``limit`` calls from ``caller_number``, newest first
        (``before``: leave out that call and later ones, e.g. the one ringing now)."""
        c = models.Call
        query = select(c).where(c.customer_id == customer_id, c.caller_number == caller_number)
        if before is not None:
            query = query.where(c.id < before)
        query = query.order_by(c.arrived_at.desc(), c.id.desc()).limit(limit)
        async with self._unit() as s:
            return [_record(row) for row in await s.scalars(query)]

    async def calls_between(
        self, customer_id: int, start: dt.datetime, end: dt.datetime
    ) -> list[CallLogEntry]:
        """The calls of ``customer_id`` (only) that arrived in ``[start, end)``, in order of
        arrival, with the agent's name, when the queue was left, the voice message and
        every message taken on the call."""
        require_aware("start", start)
        require_aware("end", end)
        call, agent, message = models.Call, models.Agent, models.Message
        query = (
            select(call, agent.name, _left_queue_at(), message)
            .outerjoin(agent, agent.id == call.agent_id)
            # One voice message per call at most (a partial unique index); the messages
            # agents took come apart, so a call stays one row.
            .outerjoin(message, (message.call_id == call.id) & (message.kind == "voice"))
            .where(call.customer_id == customer_id, call.arrived_at >= start, call.arrived_at < end)
            .order_by(call.arrived_at, call.id)
            .execution_options(populate_existing=True)
        )
        async with self._unit() as s:
            rows = [
                (_record(row), agent_name, left_at, None if msg is None else message_record(msg))
                for row, agent_name, left_at, msg in await s.execute(query)
            ]
        taken = await MessageRepository(self.source).messages_of_calls([r[0].id for r in rows])
        return [
            CallLogEntry(
                call=record,
                agent_name=agent_name,
                left_queue_at=left_at,
                message=msg,
                messages=tuple(taken.get(record.id, ())),
            )
            for record, agent_name, left_at, msg in rows
        ]

    async def ended_calls_between(
        self, customer_id: int, start: dt.datetime, end: dt.datetime
    ) -> list[CallTimes]:
        """The ended calls of ``customer_id`` (only) that arrived in ``[start, end)``, in
        order of arrival: just the columns the SLA figures read, without ORM objects."""
        rows = await self._ended_calls(start, end, customer_id)
        return cast("list[CallTimes]", rows)

    async def ended_calls_of_day(
        self, start: dt.datetime, end: dt.datetime
    ) -> list[tuple[int, CallTimes, dt.datetime | None]]:
        """Every customer's ended calls that arrived in ``[start, end)`` (calls of no
        customer left out), in order of arrival, for ``staffing replay``: the customer,
        the columns the SLA figures read, and for an answered call when it was last
        offered (the journal's last ``offered`` entry up to the answer)."""
        event = models.CallEvent
        offered = (
            select(func.max(event.at))
            .where(
                event.call_id == models.Call.id,
                event.type == JournalEntry.OFFERED.value,
                event.at <= models.Call.answered_at,
            )
            .correlate(models.Call)
            .scalar_subquery()
        )
        last_offered = case((models.Call.answered_at.is_not(None), offered))
        rows = await self._ended_calls(start, end, None, last_offered)
        return [(row[0], row[1:8], row[8]) for row in rows]

    async def _ended_calls(
        self,
        start: dt.datetime,
        end: dt.datetime,
        customer_id: int | None,
        extra: SQLColumnExpression[Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Ended calls that arrived in ``[start, end)`` as plain tuples, in order of
        arrival: :data:`CallTimes`, after the customer's id when ``customer_id`` is None
        (every customer's calls), before ``extra`` (an instant) when given."""
        require_aware("start", start)
        require_aware("end", end)
        call = models.Call
        # Looked up only where facts_of reads it.
        left_queue = case((call.outcome.in_(_WAIT_ENDS_AT_QUEUE_EXIT), _left_queue_at()))
        async with self._unit() as s:
            # Core, not the session's ORM execution: plain rows, no per-row entity work.
            conn = await s.connection()
            if conn.dialect.name == "postgresql":
                # The subquery is costed for every call, not for the few message calls that
                # run it, so the planner would JIT-compile the query: 0.7 s per customer
                # for a query that runs in a tenth of that. Off for this transaction.
                await conn.execute(text("SET LOCAL jit = off"))
            instant = _aware_instant(conn.dialect.name)
            columns: list[Any] = [
                call.id,
                instant(call.arrived_at),
                instant(call.answered_at),
                instant(call.ended_at),
                call.outcome,
                call.agent_id,
                instant(left_queue),
            ]
            whose: ColumnElement[bool]
            if customer_id is None:
                columns.insert(0, call.customer_id)
                whose = call.customer_id.is_not(None)
            else:
                whose = call.customer_id == customer_id
            if extra is not None:
                columns.append(instant(extra))
            query = (
                select(*columns)
                .where(
                    whose,
                    call.arrived_at >= start,
                    call.arrived_at < end,
                    call.ended_at.is_not(None),
                    call.outcome.is_not(None),
                )
                .order_by(call.arrived_at, call.id)
            )
            result = await conn.execute(query)
            times: list[tuple[Any, ...]] = []
            for rows in result.partitions(_PARTITION):
                # The query leaves out NULL outcomes and ends, which the Row type allows.
                times.extend(map(tuple, rows))
            return times

    async def events(self, call_id: int) -> list[CallEventRecord]:
        """The call's journal in order of seq."""
        ev = models.CallEvent
        async with self._unit() as s:
            rows = await s.scalars(select(ev).where(ev.call_id == call_id).order_by(ev.seq))
            return [
                CallEventRecord(
                    call_id=r.call_id,
                    seq=r.seq,
                    type=r.type,
                    at=r.at,
                    agent_id=r.agent_id,
                    data=dict(r.data),
                )
                for r in rows
            ]

    async def _update(self, call_id: int, **values: Any) -> None:
        async with self._unit() as s:
            try:
                updated = await s.scalar(
                    update(models.Call)
                    .where(models.Call.id == call_id)
                    .values(**values)
                    .returning(models.Call.id)
                    .execution_options(synchronize_session=False)
                )
            except IntegrityError as exc:
                raise Conflict(f"call {call_id}: {exc.orig}") from exc
            if updated is None:
                raise CallNotFound(f"no call with id {call_id}")

    async def _find_call(self, where: Any) -> CallRecord | None:
        async with self._unit() as s:
            # populate_existing: the UPDATEs above bypass the identity map.
            row = await s.scalar(
                select(models.Call).where(where).execution_options(populate_existing=True)
            )
            return None if row is None else _record(row)


def _record(row: models.Call) -> CallRecord:
    return CallRecord(
        id=row.id,
        channel_id=row.channel_id,
        linkedid=row.linkedid,
        customer_id=row.customer_id,
        dialled_number=row.dialled_number,
        caller_number=row.caller_number,
        caller_name=row.caller_name,
        arrived_at=row.arrived_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        agent_id=row.agent_id,
        outcome=row.outcome,
        hangup_cause=row.hangup_cause,
        hangup_cause_text=row.hangup_cause_text,
    )


def _aware_instant(
    dialect: str,
) -> Callable[[SQLColumnExpression[Any]], ColumnElement[dt.datetime]]:
    """How ``ended_calls_between`` selects an instant on ``dialect`` (see ``_INSTANT``)."""

    def instant(column: SQLColumnExpression[Any]) -> ColumnElement[dt.datetime]:
        if dialect == "sqlite":
            column = column.op("||")(literal("+00:00", String()))
        return type_coerce(column, _INSTANT)

    return instant


def fit(value: str | None, length: int) -> str | None:
    """A caller-supplied value as a column can hold it (see ``create_call``)."""
    return None if value is None else value.replace("\x00", "")[:length]

"""Repositories: rows in, domain objects and records out.

A repository is built on either
- an ``AsyncSession``: it never commits; the caller owns the unit of work, typically
  ``async with sessionmaker.begin() as session``. After an error the session's
  transaction is dead: let the ``begin()`` block roll it back. Or on
- an ``async_sessionmaker``: each method is its own transaction, committed on return and
  rolled back on error (what the call service wants: one write per ARI event).

Writes are flushed, so database errors surface at the call that caused them, translated
into the exceptions below.

Exceptions::

    RepositoryError            anything this module raises on purpose
     ├── NotFound              (also a LookupError) a row named by id does not exist
     │    └── CallNotFound
     └── Conflict              a unique key is taken (customer name, number, endpoint,
                               channel id) or a referenced row is missing

Arguments that are wrong whatever the database holds (a naive datetime, an unknown
outcome) raise ``ValueError``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.db import models
from televikar_pbx.db.records import CallEventRecord, CallOutcome, CallRecord
from televikar_pbx.domain.directory import Agent, Customer, Directory

DEFAULT_TIMEZONE = "Europe/Oslo"

SessionSource = AsyncSession | async_sessionmaker[AsyncSession]


class RepositoryError(Exception):
    """Base of the errors the repositories raise."""


class NotFound(RepositoryError, LookupError):
    """A row named by its id does not exist."""


class CallNotFound(NotFound):
    pass


class Conflict(RepositoryError):
    """A unique key is already taken, or a referenced row is missing."""


def _require_aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")


async def _flush(session: AsyncSession, what: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{what}: {exc.orig}") from exc


class _Repository:
    def __init__(self, source: SessionSource) -> None:
        self._source = source

    @asynccontextmanager
    async def _unit(self) -> AsyncIterator[AsyncSession]:
        """The caller's session, or a transaction of our own around one method."""
        if isinstance(self._source, AsyncSession):
            yield self._source
        else:
            async with self._source.begin() as session:
                yield session


async def load_directory(source: SessionSource) -> Directory:
    return await DirectoryRepository(source).load()


class DirectoryRepository(_Repository):
    """Customers, their numbers, agents and whom they answer for."""

    async def load(self) -> Directory:
        async with self._unit() as s:
            return await self._load(s)

    async def _load(self, s: AsyncSession) -> Directory:
        numbers: defaultdict[int, list[str]] = defaultdict(list)
        forwarded: defaultdict[int, list[str]] = defaultdict(list)
        cn = models.CustomerNumber
        for customer_id, number, kind in await s.execute(
            select(cn.customer_id, cn.number, cn.kind).order_by(cn.id)
        ):
            (numbers if kind == "did" else forwarded)[customer_id].append(number)
        customers = tuple(
            Customer(
                id=row.id,
                name=row.name,
                display_name=row.display_name,
                timezone=row.timezone,
                numbers=tuple(numbers[row.id]),
                forwarded_from=tuple(forwarded[row.id]),
            )
            for row in await s.scalars(select(models.Customer).order_by(models.Customer.id))
        )
        served: defaultdict[int, set[int]] = defaultdict(set)
        ac = models.AgentCustomer
        for agent_id, customer_id in await s.execute(select(ac.agent_id, ac.customer_id)):
            served[agent_id].add(customer_id)
        agents = tuple(
            Agent(
                id=row.id,
                name=row.name,
                endpoint=row.endpoint,
                customer_ids=frozenset(served[row.id]),
            )
            for row in await s.scalars(select(models.Agent).order_by(models.Agent.id))
        )
        return Directory(customers=customers, agents=agents)

    async def has_customers(self) -> bool:
        async with self._unit() as s:
            return bool(await s.scalar(select(exists().select_from(models.Customer))))

    async def add_customer(
        self,
        name: str,
        display_name: str,
        numbers: Iterable[str] = (),
        *,
        timezone: str = DEFAULT_TIMEZONE,
        forwarded_from: Iterable[str] = (),
    ) -> Customer:
        """Add a customer with its DIDs (``numbers``) and forwarded-from numbers."""
        dids, forwards = tuple(numbers), tuple(forwarded_from)
        async with self._unit() as s:
            row = models.Customer(name=name, display_name=display_name, timezone=timezone)
            s.add(row)
            await _flush(s, f"customer {name!r}")
            s.add_all(
                [models.CustomerNumber(customer_id=row.id, number=n, kind="did") for n in dids]
                + [
                    models.CustomerNumber(customer_id=row.id, number=n, kind="forwarded_from")
                    for n in forwards
                ]
            )
            await _flush(s, f"numbers of customer {name!r} ({', '.join(dids + forwards)})")
            customer_id = row.id
        return Customer(
            id=customer_id,
            name=name,
            display_name=display_name,
            timezone=timezone,
            numbers=dids,
            forwarded_from=forwards,
        )

    async def add_agent(
        self, name: str, endpoint: str, customer_ids: Iterable[int] | Mapping[int, int] = ()
    ) -> Agent:
        """Add an agent serving ``customer_ids`` (or a mapping customer id -> priority)."""
        priorities = (
            dict(customer_ids)
            if isinstance(customer_ids, Mapping)
            else dict.fromkeys(customer_ids, 0)
        )
        async with self._unit() as s:
            if priorities:
                known = set(
                    await s.scalars(
                        select(models.Customer.id).where(models.Customer.id.in_(priorities))
                    )
                )
                missing = sorted(set(priorities) - known)
                if missing:
                    raise NotFound(f"agent {endpoint!r}: no customer with id {missing}")
            row = models.Agent(name=name, endpoint=endpoint)
            s.add(row)
            await _flush(s, f"agent {endpoint!r}")
            s.add_all(
                models.AgentCustomer(agent_id=row.id, customer_id=cid, priority=prio)
                for cid, prio in priorities.items()
            )
            await _flush(s, f"customers of agent {endpoint!r}")
            agent_id = row.id
        return Agent(id=agent_id, name=name, endpoint=endpoint, customer_ids=frozenset(priorities))


class CallRepository(_Repository):
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
    ) -> int:
        """Insert the call's row; returns its id. ``customer_id`` None: unknown number.

        ``linkedid`` None is stored as ``channel_id``: the caller's channel starts the call,
        so Asterisk gives it its own uniqueid as linkedid.
        """
        _require_aware("arrived_at", arrived_at)
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
            )
            .returning(models.Call.id)
        )
        async with self._unit() as s:
            try:
                return (await s.execute(stmt)).scalar_one()
            except IntegrityError as exc:
                raise Conflict(f"call on channel {channel_id!r}: {exc.orig}") from exc

    async def append_event(
        self,
        call_id: int,
        type: str,
        at: dt.datetime,
        agent_id: int | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Append to the call's journal with the call's next seq (1, 2, ...)."""
        _require_aware("at", at)
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

    async def mark_offered(self, call_id: int, agent_id: int) -> None:
        """The call rings at ``agent_id`` (the last agent offered is kept)."""
        await self._update(call_id, agent_id=agent_id)

    async def mark_answered(self, call_id: int, agent_id: int, answered_at: dt.datetime) -> None:
        _require_aware("answered_at", answered_at)
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
        _require_aware("ended_at", ended_at)
        await self._update(
            call_id,
            ended_at=ended_at,
            outcome=CallOutcome(outcome).value,
            hangup_cause=hangup_cause,
            hangup_cause_text=hangup_cause_text,
        )

    async def get_call(self, call_id: int) -> CallRecord:
        record = await self._find(models.Call.id == call_id)
        if record is None:
            raise CallNotFound(f"no call with id {call_id}")
        return record

    async def find_by_channel(self, channel_id: str) -> CallRecord | None:
        return await self._find(models.Call.channel_id == channel_id)

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

    async def _find(self, where: Any) -> CallRecord | None:
        async with self._unit() as s:
            # populate_existing: the UPDATEs above bypass the identity map.
            row = await s.scalar(
                select(models.Call).where(where).execution_options(populate_existing=True)
            )
            if row is None:
                return None
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

"""The delivery outbox: claim what is due, record what happened.

A claim sets ``state = 'sending'`` with a lease (``claimed_until``); a worker that dies
mid-send leaves the row to be claimed again when the lease runs out, with the same
``message_key``, so the duplicate that may follow is recognisable (docs/messages.md).
The outcomes of a round are one transaction (:meth:`OutboxRepository.finish`): the
outbox rows, the messages' log and their status.

Short write transactions: on SQLite the database has one writer at a time, and the call
service writes each call's records while the caller waits for an agent. A claim is one
UPDATE, and a round's ``sent`` rows are three statements whatever their number
(executemany), so the worker holds the write lock for a few milliseconds per round, not
per e-mail (docs/performance.md, the burst beside routing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from televikar_pbx.db import models
from televikar_pbx.db.messages_repo import _log, set_status, set_statuses
from televikar_pbx.db.records import MessageLogRecord, OutboxJob
from televikar_pbx.db.repo_base import Repository, require_aware


def _due(now: dt.datetime) -> ColumnElement[bool]:
    """Pending and due, or claimed by a worker whose lease ran out."""
    o = models.OutboxItem
    return or_(
        and_(o.state == "pending", o.due_at <= now),
        and_(o.state == "sending", o.claimed_until <= now),
    )


def _job(r: models.OutboxItem, attempts: int | None = None) -> OutboxJob:
    return OutboxJob(
        r.id, r.message_id, r.channel, r.address, r.message_key,
        r.attempts if attempts is None else attempts, r.generation, r.batch_key,
    )  # fmt: skip


class OutboxRepository(Repository):
    async def claim_due(self, now: dt.datetime, limit: int, lease_s: float) -> list[OutboxJob]:
        """Take up to ``limit`` deliveries that are due (pending, or sending with an
        expired lease), oldest first, and lease them until ``now + lease_s``."""
        require_aware("now", now)
        o = models.OutboxItem
        async with self._unit() as s:
            stmt = (
                select(o)
                .where(_due(now), o.channel != "digest")
                .order_by(o.due_at, o.id)
                .limit(limit)
            )
            if s.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(await s.scalars(stmt))
            if not rows:
                return []
            until = now + dt.timedelta(seconds=lease_s)
            # One statement, not one per row; the due condition again, so a row another
            # worker claimed since the SELECT (SQLite has no SKIP LOCKED) is not taken.
            result = await s.execute(
                update(o)
                .where(o.id.in_([r.id for r in rows]), _due(now))
                .values(state="sending", claimed_until=until, attempts=o.attempts + 1)
                .returning(o.id)
                .execution_options(synchronize_session=False)
            )
            taken = set(result.scalars())
            return [_job(r, r.attempts + 1) for r in rows if r.id in taken]

    async def claim_digests(self, now: dt.datetime, lease_s: float) -> list[list[OutboxJob]]:
        """Take every digest delivery that is due, whole batches at a time (one e-mail
        each), and lease them until ``now + lease_s``."""
        require_aware("now", now)
        o = models.OutboxItem
        async with self._unit() as s:
            keys = select(o.batch_key).where(_due(now), o.channel == "digest").distinct()
            stmt = select(o).where(o.batch_key.in_(keys), o.state.in_(("pending", "sending")))
            stmt = stmt.order_by(o.batch_key, o.id)
            if s.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(await s.scalars(stmt))
            until = now + dt.timedelta(seconds=lease_s)
            batches: dict[str, list[OutboxJob]] = {}
            for row in rows:
                row.state, row.claimed_until = "sending", until
                row.attempts += 1
                batches.setdefault(row.batch_key or "", []).append(_job(row))
            return list(batches.values())

    async def finish(
        self,
        now: dt.datetime,
        sent: Sequence[tuple[OutboxJob, str | None]] = (),
        retries: Sequence[tuple[OutboxJob, str, dt.datetime]] = (),
        failures: Sequence[tuple[OutboxJob, str]] = (),
    ) -> None:
        """Record a round's outcomes in one transaction: deliveries ``sent`` (with the
        provider's reference), attempts that failed and are ``retries`` (error, next due
        time), and deliveries given up (``failures``: the last retry failed)."""
        async with self._unit() as s:
            if sent:
                await _record_sent(s, now, sent)
            for job, error, due_at in retries:
                await _record_retry(s, now, job, error, due_at)
            for job, error in failures:
                await _record_failure(s, now, job, error)

    async def bring_forward(self, channel: str, now: dt.datetime) -> int:
        """Make the deliveries of ``channel`` that wait for a retry due at ``now`` (its
        server was away and is back). Returns how many."""
        o = models.OutboxItem
        async with self._unit() as s:
            ids = select(o.id).where(
                o.channel == channel, o.state == "pending", o.attempts > 0, o.due_at > now
            )
            result = await s.execute(
                update(o)
                .where(o.id.in_(ids.scalar_subquery()))
                .values(due_at=now)
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def sent(self, job: OutboxJob, now: dt.datetime, provider_ref: str | None = None) -> None:
        await self.finish(now, sent=[(job, provider_ref)])

    async def retry(
        self, job: OutboxJob, now: dt.datetime, error: str, due_at: dt.datetime
    ) -> None:
        await self.finish(now, retries=[(job, error, due_at)])

    async def failed(self, job: OutboxJob, now: dt.datetime, error: str) -> None:
        """The last retry failed: this delivery is given up. The message is ``failed``
        unless another delivery of it went out."""
        await self.finish(now, failures=[(job, error)])

    async def delivered(self, provider_ref: str, now: dt.datetime, result: str) -> bool:
        """A channel's delivery report (an SMS gateway's webhook) for ``provider_ref``."""
        async with self._unit() as s:
            row = await _reported(s, provider_ref, now)
            if row is None:
                return False
            row.state = "delivered"
            await _log(
                s, row.message_id, now, "delivered", "gateway",
                channel=row.channel, recipient=row.address, result=result,
            )  # fmt: skip
            await set_status(s, row.message_id, "delivered")
            return True

    async def undeliverable(self, provider_ref: str, now: dt.datetime, result: str) -> bool:
        """The gateway reported that it could not deliver ``provider_ref``: that delivery
        failed (the message too, unless another delivery of it went out)."""
        async with self._unit() as s:
            row = await _reported(s, provider_ref, now)
            if row is None:
                return False
            row.state, row.last_error = "failed", result
            await _log(
                s, row.message_id, now, "failed", "gateway",
                channel=row.channel, recipient=row.address, result=result,
            )  # fmt: skip
            await _failed_unless_another_went_out(s, row.message_id)
            return True

    async def counts(self) -> dict[str, int]:
        """Deliveries by state, for ``status``."""
        o = models.OutboxItem
        async with self._unit() as s:
            rows = await s.execute(select(o.state, func.count()).group_by(o.state))
            return {str(state): int(n) for state, n in rows}

    async def last_failure(self) -> MessageLogRecord | None:
        """The newest failed attempt (a retry to come, or given up), for ``status``."""
        e = models.MessageLogEntry
        async with self._unit() as s:
            row = await s.scalar(
                select(e)
                .where(e.status.in_(("retry", "failed")))
                .order_by(e.at.desc(), e.id.desc())
                .limit(1)
            )
            if row is None:
                return None
            return MessageLogRecord(
                row.at, row.status, row.actor, row.channel, row.recipient, row.result,
                message_id=row.message_id,
            )  # fmt: skip

    async def next_due(self) -> dt.datetime | None:
        o = models.OutboxItem
        async with self._unit() as s:
            return await s.scalar(select(func.min(o.due_at)).where(o.state == "pending"))


async def _reported(s: AsyncSession, reference: str, now: dt.datetime) -> models.OutboxItem | None:
    """The delivery a gateway's report names. Our reference is the delivery's
    ``message_key``, known from the start: a report can come back before the worker's
    round has recorded the send (the gateway reports within milliseconds, the round
    ends when its last delivery is done). Such a delivery is recorded as sent here,
    first, so its log reads "sent", then what the report says; the round then leaves it
    alone (:func:`_record_sent` changes only deliveries still ``sending``).

    Who records the send is decided by one conditional UPDATE, not by a read and a
    later write: the worker's round may commit between the two (on SQLite a unit of
    work takes the write lock at its first write; on PostgreSQL a plain read takes no
    lock), and both would then log "sent". After that UPDATE this transaction holds the
    write lock (SQLite) or, with ``FOR UPDATE``, the row (PostgreSQL)."""
    o = models.OutboxItem
    named = or_(o.provider_ref == reference, o.message_key == reference)
    recorded_here = await s.scalar(
        update(o)
        .where(named, o.state == "sending")
        .values(state="sent", sent_at=now, provider_ref=reference, last_error=None)
        .returning(o.id)
        .execution_options(synchronize_session=False)
    )
    row = await s.scalar(
        select(o).where(named).with_for_update().execution_options(populate_existing=True)
    )
    if row is None or recorded_here is None:
        return row
    await _log(
        s, row.message_id, now, "sent", "delivery",
        channel=row.channel, recipient=row.address, result=reference,
    )  # fmt: skip
    await set_status(s, row.message_id, "sent")
    return row


async def _record_sent(
    s: AsyncSession, now: dt.datetime, sent: Sequence[tuple[OutboxJob, str | None]]
) -> None:
    """Four statements for any number of deliveries (executemany). Each row changes
    only while it is still ``sending``, decided by the UPDATE itself: a delivery whose
    report came first (:func:`_reported`) is left alone, even when that report commits
    while this round is being recorded. The UPDATE makes this transaction the writer
    (SQLite) or locks the rows (PostgreSQL), so the read after it sees which rows this
    round changed: those now ``sent`` (a reported one is ``delivered`` or ``failed``)."""
    t = cast(Table, models.OutboxItem.__table__)
    log = cast(Table, models.MessageLogEntry.__table__)
    await s.execute(
        update(t)
        .where(t.c.id == bindparam("job_id"), t.c.state == "sending")
        .values(state="sent", sent_at=now, provider_ref=bindparam("ref"), last_error=None),
        [{"job_id": job.id, "ref": ref} for job, ref in sent],
    )
    ours = set(
        await s.scalars(
            select(t.c.id).where(t.c.id.in_([job.id for job, _ in sent]), t.c.state == "sent")
        )
    )
    sent = [(job, ref) for job, ref in sent if job.id in ours]
    if not sent:
        return
    await s.execute(
        insert(log),
        [
            {
                "message_id": job.message_id, "at": now, "status": "sent",
                "actor": "delivery", "channel": job.channel, "recipient": job.address,
                "result": ref or "accepted",
            }
            for job, ref in sent
        ],
    )  # fmt: skip
    await set_statuses(s, sorted({job.message_id for job, _ in sent}), "sent")


async def _record_retry(
    s: AsyncSession, now: dt.datetime, job: OutboxJob, error: str, due_at: dt.datetime
) -> None:
    o = models.OutboxItem
    await s.execute(
        update(o)
        .where(o.id == job.id)
        .values(state="pending", due_at=due_at, claimed_until=None, last_error=error)
    )
    await _log(
        s, job.message_id, now, "retry", "delivery",
        channel=job.channel, recipient=job.address,
        result=f"attempt {job.attempts} failed: {error}; next at {due_at.isoformat()}",
    )  # fmt: skip


async def _record_failure(s: AsyncSession, now: dt.datetime, job: OutboxJob, error: str) -> None:
    o = models.OutboxItem
    await s.execute(
        update(o).where(o.id == job.id).values(state="failed", claimed_until=None, last_error=error)
    )
    await _log(
        s, job.message_id, now, "failed", "delivery",
        channel=job.channel, recipient=job.address,
        result=f"gave up after {job.attempts} attempts: {error}",
    )  # fmt: skip
    await _failed_unless_another_went_out(s, job.message_id)


async def _failed_unless_another_went_out(s: AsyncSession, message_id: int) -> None:
    """A delivery of the message failed for good: the message is ``failed`` unless
    another of its deliveries went out."""
    o = models.OutboxItem
    went_out = await s.scalar(
        select(func.count())
        .select_from(o)
        .where(o.message_id == message_id, o.state.in_(("sent", "delivered")))
    )
    if not went_out:
        await set_status(s, message_id, "failed")

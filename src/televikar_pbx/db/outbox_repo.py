"""The delivery outbox: claim what is due, record what happened.

A claim sets ``state = 'sending'`` with a lease (``claimed_until``); a worker that dies
mid-send leaves the row to be claimed again when the lease runs out, with the same
``message_key``, so the duplicate that may follow is recognisable (docs/messages.md).
Each outcome is one transaction: the outbox row, the message's log and its status.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from televikar_pbx.db import models
from televikar_pbx.db.messages_repo import _log, set_status
from televikar_pbx.db.records import MessageLogRecord, OutboxJob
from televikar_pbx.db.repo_base import Repository, require_aware


def _due(now: dt.datetime) -> ColumnElement[bool]:
    """Pending and due, or claimed by a worker whose lease ran out."""
    o = models.OutboxItem
    return or_(
        and_(o.state == "pending", o.due_at <= now),
        and_(o.state == "sending", o.claimed_until <= now),
    )


def _job(r: models.OutboxItem) -> OutboxJob:
    return OutboxJob(
        r.id, r.message_id, r.channel, r.address, r.message_key, r.attempts, r.generation,
        r.batch_key,
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
            until = now + dt.timedelta(seconds=lease_s)
            for row in rows:
                row.state, row.claimed_until = "sending", until
                row.attempts += 1
            return [_job(r) for r in rows]

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

    async def sent(self, job: OutboxJob, now: dt.datetime, provider_ref: str | None = None) -> None:
        o = models.OutboxItem
        async with self._unit() as s:
            await s.execute(
                update(o)
                .where(o.id == job.id)
                .values(state="sent", sent_at=now, provider_ref=provider_ref, last_error=None)
            )
            await _log(
                s, job.message_id, now, "sent", "delivery",
                channel=job.channel, recipient=job.address, result=provider_ref or "accepted",
            )  # fmt: skip
            await set_status(s, job.message_id, "sent")

    async def retry(
        self, job: OutboxJob, now: dt.datetime, error: str, due_at: dt.datetime
    ) -> None:
        o = models.OutboxItem
        async with self._unit() as s:
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

    async def failed(self, job: OutboxJob, now: dt.datetime, error: str) -> None:
        """The last retry failed: this delivery is given up. The message is ``failed``
        unless another delivery of it went out."""
        o = models.OutboxItem
        async with self._unit() as s:
            await s.execute(
                update(o)
                .where(o.id == job.id)
                .values(state="failed", claimed_until=None, last_error=error)
            )
            await _log(
                s, job.message_id, now, "failed", "delivery",
                channel=job.channel, recipient=job.address,
                result=f"gave up after {job.attempts} attempts: {error}",
            )  # fmt: skip
            went_out = await s.scalar(
                select(func.count())
                .select_from(o)
                .where(o.message_id == job.message_id, o.state.in_(("sent", "delivered")))
            )
            if not went_out:
                await set_status(s, job.message_id, "failed")

    async def delivered(self, provider_ref: str, now: dt.datetime, result: str) -> bool:
        """A channel's delivery report (an SMS gateway's webhook) for ``provider_ref``."""
        o = models.OutboxItem
        async with self._unit() as s:
            row = await s.scalar(select(o).where(o.provider_ref == provider_ref))
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
        o = models.OutboxItem
        async with self._unit() as s:
            row = await s.scalar(select(o).where(o.provider_ref == provider_ref))
            if row is None:
                return False
            row.state, row.last_error = "failed", result
            await _log(
                s, row.message_id, now, "failed", "gateway",
                channel=row.channel, recipient=row.address, result=result,
            )  # fmt: skip
            went_out = await s.scalar(
                select(func.count())
                .select_from(o)
                .where(o.message_id == row.message_id, o.state.in_(("sent", "delivered")))
            )
            if not went_out:
                await set_status(s, row.message_id, "failed")
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

"""The delivery worker: the running service sends what the outbox holds.

Theory of operation
-------------------
Saving a message writes its outbox rows in the same transaction (db/messages_repo.py).
This worker, inside ``televikar-pbx serve``, claims due rows (a lease, so a worker that
dies mid-send leaves them to be claimed again), hands each to its channel (e-mail, SMS)
and records the result: ``sent``; a temporary failure is retried after the delays of
``domain/message_delivery.py``; after the last one the delivery is ``failed`` with its
reason. It wakes at once when the service saved a message (:meth:`poke`), and otherwise
polls, so rows written by another process (``messages take`` on the command line) go out
within ``poll_s``.

Exactly once, as far as it can be: a crash after the server accepted an e-mail and before
``sent`` was recorded sends it again after the lease, with the same Message-ID.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from televikar_pbx.clock import Clock
from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.outbox_repo import OutboxRepository
from televikar_pbx.db.records import MessageRecord, OutboxJob
from televikar_pbx.domain.message_delivery import next_attempt

log = structlog.get_logger("televikar_pbx.delivery")


class DeliveryFailed(Exception):
    """A channel could not deliver; ``permanent`` skips the remaining retries (the
    server refused the address for good)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Channel(Protocol):
    async def deliver(self, job: OutboxJob, message: MessageRecord) -> str | None:
        """Send one delivery; the provider's reference (for delivery reports), if any.
        Raises :class:`DeliveryFailed`."""
        ...


class BatchChannel(Protocol):
    async def deliver_batch(
        self, jobs: list[OutboxJob], messages: list[MessageRecord]
    ) -> str | None:
        """Send one e-mail for a batch of deliveries (a recipient's daily digest)."""
        ...


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    poll_s: float = 2.0
    batch: int = 50
    lease_s: float = 120.0
    concurrency: int = 8


class DeliveryWorker:
    def __init__(
        self,
        outbox: OutboxRepository,
        messages: MessageRepository,
        channels: Mapping[str, Channel],
        clock: Clock,
        settings: WorkerSettings | None = None,
        digest: BatchChannel | None = None,
    ) -> None:
        self._outbox = outbox
        self._messages = messages
        self._channels = dict(channels)
        self._digest = digest
        self._clock = clock
        self._settings = settings or WorkerSettings()
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(self._settings.concurrency)

    def poke(self) -> None:
        """A message was saved: look at the outbox now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        log.info("delivery.started", channels=sorted(self._channels))
        while not stop.is_set():
            try:
                while await self.run_once() >= self._settings.batch:
                    pass  # a full batch: there may be more
            except Exception:
                # The database is away, or a bug: keep the service up, try again later.
                log.exception("delivery.round_failed")
            self._wake.clear()
            waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            _, pending = await asyncio.wait(
                waits, timeout=self._settings.poll_s, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()

    async def run_once(self) -> int:
        """Claim and deliver one batch; returns how many were claimed."""
        s = self._settings
        now = self._clock.now()
        jobs = await self._outbox.claim_due(now, s.batch, s.lease_s)
        batches = await self._outbox.claim_digests(now, s.lease_s)
        await asyncio.gather(
            *(self._deliver(job) for job in jobs), *(self._deliver_batch(b) for b in batches)
        )
        return len(jobs) + sum(len(b) for b in batches)

    async def _deliver_batch(self, jobs: list[OutboxJob]) -> None:
        """A daily digest: one e-mail for all its messages; each delivery is recorded."""
        async with self._limit:
            bound = log.bind(batch=jobs[0].batch_key, messages=len(jobs))
            try:
                if self._digest is None:
                    raise DeliveryFailed("the e-mail channel is not configured (digest)")
                messages = [await self._messages.get_message(j.message_id) for j in jobs]
                ref = await self._digest.deliver_batch(jobs, messages)
            except DeliveryFailed as exc:
                for job in jobs:
                    await self._failed(job, str(exc), exc.permanent, bound)
                return
            except Exception as exc:
                bound.exception("delivery.crashed")
                for job in jobs:
                    await self._failed(job, f"{type(exc).__name__}: {exc}", False, bound)
                return
            now = self._clock.now()
            for job in jobs:
                await self._outbox.sent(job, now, ref)
            bound.info("delivery.digest_sent")

    async def _deliver(self, job: OutboxJob) -> None:
        async with self._limit:
            bound = log.bind(message_id=job.message_id, channel=job.channel, key=job.message_key)
            channel = self._channels.get(job.channel)
            try:
                if channel is None:
                    raise DeliveryFailed(f"channel {job.channel} is not configured")
                message = await self._messages.get_message(job.message_id)
                ref = await channel.deliver(job, message)
            except DeliveryFailed as exc:
                await self._failed(job, str(exc), exc.permanent, bound)
                return
            except Exception as exc:  # a bug in a channel must not stop the others
                bound.exception("delivery.crashed")
                await self._failed(job, f"{type(exc).__name__}: {exc}", False, bound)
                return
            await self._outbox.sent(job, self._clock.now(), ref)
            bound.info("delivery.sent", attempt=job.attempts)

    async def _failed(self, job: OutboxJob, reason: str, permanent: bool, bound: object) -> None:
        now = self._clock.now()
        again = None if permanent else next_attempt(job.attempts, now)
        if again is None:
            await self._outbox.failed(job, now, reason)
            log.error(
                "delivery.failed", message_id=job.message_id, key=job.message_key, reason=reason
            )
        else:
            await self._outbox.retry(job, now, reason, again)
            log.warning(
                "delivery.retry", message_id=job.message_id, attempt=job.attempts,
                next_at=again.isoformat(), reason=reason,
            )  # fmt: skip

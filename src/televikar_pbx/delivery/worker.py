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

Rounds and pace: a round claims up to ``batch`` deliveries (one UPDATE), sends them
``concurrency`` at a time and records every outcome in one transaction at its end, so
the worker writes twice per round, not four times per e-mail: on SQLite, where the call
service's writes wait for the one write lock, that keeps routing from queueing behind a
burst. ``rate`` caps the deliveries per second (the next round waits), which spreads a
burst over time and keeps a mail server's rate limits; 0 sends as fast as it can.

A server that is down: its deliveries wait on the retry schedule (10 s, 30 s, 1 min,
2 min, ...), which would leave them waiting up to as long again as the outage after it
ends. So while a channel's server is unreachable the worker asks the channel every
``probe_s`` whether it is back (e-mail: connect, greeting, NOOP; no message, no attempt
counted). When it is, or when any delivery over it succeeds, the channel's waiting
deliveries are made due at once: messages held by an outage go out within ``probe_s``
of the server's return, each once; the retry schedule (and its 8 hours before
``failed``) is unchanged.

Escalation: each round first asks for the urgent messages whose escalation is due (one
indexed query, ``db/escalation_repo.py``); each takes its next step (its outbox rows,
sent in the same round) or ends, as ``domain/escalation.py`` decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from televikar_pbx.clock import Clock
from televikar_pbx.db.escalation_repo import EscalationRepository
from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.outbox_repo import OutboxRepository
from televikar_pbx.db.records import MessageRecord, OutboxJob
from televikar_pbx.domain.message_delivery import next_attempt

log = structlog.get_logger("televikar_pbx.delivery")


class DeliveryFailed(Exception):
    """A channel could not deliver; ``permanent`` skips the remaining retries (the
    server refused the address for good); ``unreachable``: the server itself could not
    be reached (down, refused the connection, timed out), so every delivery over that
    channel waits for it, and one success means it is back."""

    def __init__(self, reason: str, *, permanent: bool = False, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.unreachable = unreachable


class Channel(Protocol):
    async def deliver(self, job: OutboxJob, message: MessageRecord) -> str | None:
        """Send one delivery; the provider's reference (for delivery reports), if any.
        Raises :class:`DeliveryFailed`."""
        ...


class Probed(Protocol):
    async def reachable(self) -> bool:
        """Whether the channel's server answers again (after ``unreachable``)."""
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
    batch: int = 20
    lease_s: float = 120.0
    concurrency: int = 8
    rate: float = 0.0  # deliveries per second at most; 0: no limit
    probe_s: float = 15.0  # while a channel's server is unreachable, try one this often


@dataclass(slots=True)
class _Round:
    """The outcomes of one round, recorded together at its end."""

    sent: list[tuple[OutboxJob, str | None]] = field(default_factory=list)
    retries: list[tuple[OutboxJob, str, datetime]] = field(default_factory=list)
    failures: list[tuple[OutboxJob, str]] = field(default_factory=list)
    unreachable: set[str] = field(default_factory=set)  # channels whose server was away


class DeliveryWorker:
    def __init__(
        self,
        outbox: OutboxRepository,
        messages: MessageRepository,
        channels: Mapping[str, Channel],
        clock: Clock,
        settings: WorkerSettings | None = None,
        digest: BatchChannel | None = None,
        escalations: EscalationRepository | None = None,
    ) -> None:
        self._outbox = outbox
        self._messages = messages
        self._escalations = escalations or EscalationRepository(messages.source)
        self._channels = dict(channels)
        self._digest = digest
        self._clock = clock
        self._settings = settings or WorkerSettings()
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(self._settings.concurrency)
        self._probe_at: dict[str, datetime] = {}  # unreachable channel -> its next probe

    def poke(self) -> None:
        """A message was saved: look at the outbox now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        log.info("delivery.started", channels=sorted(self._channels))
        while not stop.is_set():
            try:
                while not stop.is_set():
                    started = time.monotonic()
                    done = await self.run_once()
                    if done < self._settings.batch:
                        break
                    await self._pace(done, started, stop)  # a full batch: there may be more
            except Exception:
                # The database is away, or a bug: keep the service up, try again later.
                log.exception("delivery.round_failed")
            self._wake.clear()
            timeout = self._settings.poll_s
            if self._probe_at:
                until = (min(self._probe_at.values()) - self._clock.now()).total_seconds()
                timeout = max(0.0, min(timeout, until))
            waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            _, pending = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()

    async def _pace(self, done: int, started: float, stop: asyncio.Event) -> None:
        """Wait until ``done`` deliveries since ``started`` are within ``rate``."""
        if self._settings.rate <= 0:
            return
        wait = done / self._settings.rate - (time.monotonic() - started)
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def probe(self) -> None:
        """Ask each unreachable channel whose probe is due whether its server is back;
        if so, what waits for it is due now (see the module's doc)."""
        now = self._clock.now()
        for name, at in list(self._probe_at.items()):
            if at > now:
                continue
            channel = self._digest if name == "digest" else self._channels.get(name)
            check = getattr(channel, "reachable", None)
            if check is None:  # no way to ask: the retry schedule alone
                del self._probe_at[name]
            elif await check():
                await self._back(name, now)
            else:
                self._probe_at[name] = now + timedelta(seconds=self._settings.probe_s)

    async def _back(self, channel: str, now: datetime) -> None:
        self._probe_at.pop(channel, None)
        waiting = await self._outbox.bring_forward(channel, now)
        log.info("delivery.reachable_again", channel=channel, waiting=waiting)

    async def run_once(self) -> int:
        """Claim and deliver one round; returns how many deliveries were claimed."""
        s = self._settings
        await self.probe()
        now = self._clock.now()
        await self.escalate(now)
        jobs = await self._outbox.claim_due(now, s.batch, s.lease_s)
        batches = await self._outbox.claim_digests(now, s.lease_s)
        if not jobs and not batches:
            return 0
        outcomes = _Round()
        await asyncio.gather(
            *(self._deliver(job, outcomes) for job in jobs),
            *(self._deliver_batch(b, outcomes) for b in batches),
        )
        now = self._clock.now()
        await self._outbox.finish(now, outcomes.sent, outcomes.retries, outcomes.failures)
        await self._track_reachability(outcomes, now)
        for job, _ in outcomes.sent:
            log.info("delivery.sent", message_id=job.message_id, channel=job.channel,
                     key=job.message_key, attempt=job.attempts)  # fmt: skip
        return len(jobs) + sum(len(b) for b in batches)

    async def escalate(self, now: datetime) -> int:
        """The escalation pass: urgent messages not acknowledged in time go to the next
        step of their customer's list (their rows are due now). Returns how many
        messages took a step or ended. A failure here never holds up the deliveries."""
        try:
            done = await self._escalations.escalate_due(now)
        except Exception:
            log.exception("delivery.escalation_failed")
            return 0
        for e in done:
            log.info("delivery.escalated", message_id=e.message_id, step=e.step,
                     deliveries=e.deliveries, note=e.note)  # fmt: skip
        return len(done)

    async def _track_reachability(self, outcomes: _Round, now: datetime) -> None:
        """A success on a channel that was unreachable: it is back, and what waits for
        it goes now. A channel found unreachable: probe it every ``probe_s``."""
        for channel in {job.channel for job, _ in outcomes.sent}:
            if channel in self._probe_at:
                await self._back(channel, now)
        for channel in outcomes.unreachable - {job.channel for job, _ in outcomes.sent}:
            if channel not in self._probe_at:
                self._probe_at[channel] = now + timedelta(seconds=self._settings.probe_s)
                log.warning("delivery.unreachable", channel=channel)

    async def _deliver_batch(self, jobs: list[OutboxJob], outcomes: _Round) -> None:
        """A daily digest: one e-mail for all its messages; each delivery is recorded."""
        async with self._limit:
            bound = log.bind(batch=jobs[0].batch_key, messages=len(jobs))
            try:
                if self._digest is None:
                    raise DeliveryFailed("the e-mail channel is not configured (digest)")
                messages = [await self._messages.get_message(j.message_id) for j in jobs]
                ref = await self._digest.deliver_batch(jobs, messages)
            except DeliveryFailed as exc:
                if exc.unreachable:
                    outcomes.unreachable.add(jobs[0].channel)
                for job in jobs:
                    self._failed(job, str(exc), exc.permanent, outcomes)
                return
            except Exception as exc:
                bound.exception("delivery.crashed")
                for job in jobs:
                    self._failed(job, f"{type(exc).__name__}: {exc}", False, outcomes)
                return
            outcomes.sent.extend((job, ref) for job in jobs)
            bound.info("delivery.digest_sent")

    async def _deliver(self, job: OutboxJob, outcomes: _Round) -> None:
        async with self._limit:
            bound = log.bind(message_id=job.message_id, channel=job.channel, key=job.message_key)
            channel = self._channels.get(job.channel)
            try:
                if channel is None:
                    raise DeliveryFailed(f"channel {job.channel} is not configured")
                message = await self._messages.get_message(job.message_id)
                ref = await channel.deliver(job, message)
            except DeliveryFailed as exc:
                if exc.unreachable:
                    outcomes.unreachable.add(job.channel)
                self._failed(job, str(exc), exc.permanent, outcomes)
                return
            except Exception as exc:  # a bug in a channel must not stop the others
                bound.exception("delivery.crashed")
                self._failed(job, f"{type(exc).__name__}: {exc}", False, outcomes)
                return
            outcomes.sent.append((job, ref))

    def _failed(self, job: OutboxJob, reason: str, permanent: bool, outcomes: _Round) -> None:
        now = self._clock.now()
        again = None if permanent else next_attempt(job.attempts, now)
        if again is None:
            outcomes.failures.append((job, reason))
            log.error(
                "delivery.failed", message_id=job.message_id, key=job.message_key, reason=reason
            )
        else:
            outcomes.retries.append((job, reason, again))
            log.warning(
                "delivery.retry", message_id=job.message_id, attempt=job.attempts,
                next_at=again.isoformat(), reason=reason,
            )  # fmt: skip

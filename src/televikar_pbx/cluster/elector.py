"""The leader election task: take the lease as a standby, keep it as the leader.

As a standby it tries :func:`~televikar_pbx.db.leases_repo.acquire` every ``retry_s``;
as the leader it renews every ``renew_s``. Its :class:`~.term.LeaderTerm` ends the
leadership by this process's own clock when renewals stop succeeding, whether the
database answers "no" or does not answer at all; every database call is bounded by the
time the term has left, so a hung connection cannot keep a leader leading.

Transitions call ``on_lead(token)`` and ``on_lose(reason)``, alternately and exactly
once each; they are plain functions called in the elector's task, so they must not
block: start work with ``asyncio.create_task`` and stop it with ``cancel``. One log line
each: ``cluster.leading``, ``cluster.standby`` (and when the observed leader changes),
``cluster.lost``, ``cluster.released``; trouble: ``cluster.renew_failed`` (each time),
``cluster.acquire_failed`` (once until an attempt succeeds again).

Cancelling the task (:meth:`LeaderElector.start`'s) is what a crash is: nothing is
released, the lease runs out, a standby takes over after it. :meth:`LeaderElector.stop`
is the clean shutdown: stop acting (``on_lose("released")``), then release the lease,
so a standby takes over at its next try.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.cluster.config import ClusterConfig
from televikar_pbx.cluster.term import LeaderTerm
from televikar_pbx.db.leases_repo import FenceToken, LeaseState, acquire, read_lease, release, renew

log = structlog.get_logger("televikar_pbx.cluster")

# What a database that is down, cut off or too slow raises through SQLAlchemy/asyncpg.
UNREACHABLE = (SQLAlchemyError, OSError, TimeoutError)
T = TypeVar("T")


def _retrieve(task: asyncio.Task[Any]) -> None:
    # An attempt given up on may still fail later; its error was already dealt with.
    if not task.cancelled():
        task.exception()


def _abort(driver_connection: Any) -> None:
    # asyncpg's terminate(): close the socket now, without a goodbye to the server.
    with contextlib.suppress(Exception):
        driver_connection.terminate()


class LeaderElector:
    """One process's part in the election; build one, ``start()`` it once."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        config: ClusterConfig,
        *,
        on_lead: Callable[[FenceToken], None],
        on_lose: Callable[[str], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._config = config
        self._on_lead = on_lead
        self._on_lose = on_lose
        self._monotonic = monotonic
        self._term = LeaderTerm(config.lease_s, config.margin_s)
        self._token: FenceToken | None = None
        self._next_renew = 0.0
        self._seen: tuple[str, int] | None = None  # the other leader a standby last logged
        self._acquire_failing = False
        self._task: asyncio.Task[None] | None = None
        self._attempting: asyncio.Task[Any] | None = None  # the last database attempt
        self._log = log.bind(holder=config.holder, lease=config.name)

    @property
    def config(self) -> ClusterConfig:
        return self._config

    @property
    def token(self) -> FenceToken | None:
        """The token to fence writes with while this process leads, else None."""
        return self._token if self.is_leading() else None

    @property
    def leading_until(self) -> float | None:
        """The monotonic instant this leader's term ends (None: not leading)."""
        return self._term.until

    def is_leading(self) -> bool:
        """True only within the term: it turns False when the term ends, even before the
        elector's task has run to notice."""
        return self._token is not None and self._term.leading(self._monotonic())

    def start(self) -> asyncio.Task[None]:
        if self._task is not None:
            raise RuntimeError("LeaderElector.start() called twice")
        self._task = asyncio.create_task(self._run(), name=f"elector:{self._config.holder}")
        return self._task

    async def stop(self) -> None:
        """Clean shutdown: stop the task; if leading, stop acting, then release."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        token = self._token
        if token is None:
            return
        self._lose("released", event="cluster.released")
        try:
            await self._attempt(self._config.lease_s, lambda session: release(session, token))
        except UNREACHABLE as exc:
            # Nothing lost: the lease runs out by itself and the standby takes over then.
            self._log.warning("cluster.release_failed", error=repr(exc))

    async def _attempt(self, seconds: float, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``work`` in a transaction of its own, done within ``seconds`` or TimeoutError.

        The transaction runs in a task of its own, and the elector only waits for it
        with a deadline. A timeout around the transaction would not do: on cancellation
        SQLAlchemy finishes its clean-up before it lets go (a rollback, or a "graceful"
        close with its own 2 s timeout, shielded from the cancel), and on a connection to
        a database that has gone silent that makes the elector late, and a leader late to
        notice it lost is what this module is about. At the deadline the connection is
        also aborted (closed without a word to the server), which ends the clean-up's
        waits at once; until that task has finished no new attempt starts, so a silent
        database holds at most one connection of ours."""
        deadline = self._monotonic() + seconds
        if self._attempting is not None and not self._attempting.done():
            await asyncio.wait({self._attempting}, timeout=seconds)
            if not self._attempting.done():
                raise TimeoutError("the previous attempt is still being cleaned up")
        connection: list[Any] = []

        async def run() -> T:
            async with self._sessionmaker.begin() as session:
                raw = await (await session.connection()).get_raw_connection()
                connection.append(raw.driver_connection)
                return await work(session)

        task = asyncio.create_task(run())
        task.add_done_callback(_retrieve)
        self._attempting = task
        done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - self._monotonic()))
        if not done:
            for driver_connection in connection:
                _abort(driver_connection)
            task.cancel()
            raise TimeoutError(f"no answer from the database within {seconds:.2f} s")
        return task.result()

    async def _run(self) -> None:
        while True:
            if self._token is None:
                if not await self._try_acquire():
                    await asyncio.sleep(self._config.retry_s)
            else:
                await self._hold()

    async def _try_acquire(self) -> bool:
        cfg = self._config
        sent_at = self._monotonic()
        try:
            token, current = await self._attempt(cfg.lease_s, self._acquire)
        except UNREACHABLE as exc:
            if not self._acquire_failing:
                self._acquire_failing = True
                self._log.warning("cluster.acquire_failed", error=repr(exc))
            return False
        self._acquire_failing = False
        if token is None:
            self._standby(current)
            return False
        self._term.confirmed(sent_at)
        self._token = token
        self._next_renew = sent_at + cfg.renew_s
        self._seen = None
        self._log.info("cluster.leading", generation=token.generation)
        self._on_lead(token)
        return True

    async def _acquire(self, session: AsyncSession) -> tuple[FenceToken | None, LeaseState | None]:
        cfg = self._config
        token = await acquire(session, cfg.name, cfg.holder, cfg.lease_s)
        return token, None if token else await read_lease(session, cfg.name)

    def _standby(self, current: LeaseState | None) -> None:
        seen = None if current is None else (current.holder, current.generation)
        if seen != self._seen:
            self._seen = seen
            self._log.info(
                "cluster.standby",
                leader=None if current is None else current.holder,
                generation=None if current is None else current.generation,
            )

    async def _hold(self) -> None:
        """One renewal, at its time; ends the leadership when the term runs out."""
        cfg, token = self._config, self._token
        assert token is not None
        now = self._monotonic()
        wait = min(self._next_renew - now, self._term.remaining(now))
        if wait > 0:
            await asyncio.sleep(wait)
        sent_at = self._monotonic()
        left = self._term.remaining(sent_at)
        if left <= 0:
            self._lose("the lease was not renewed in time (database unreachable or slow)")
            return
        try:
            renewed = await self._attempt(left, lambda s: renew(s, token, cfg.lease_s))
        except UNREACHABLE as exc:
            self._log.warning("cluster.renew_failed", generation=token.generation, error=repr(exc))
            self._next_renew = self._monotonic() + min(cfg.retry_s, cfg.renew_s)
            return
        if not renewed:
            self._lose("the lease was taken over or had expired")
            return
        self._term.confirmed(sent_at)
        self._next_renew = sent_at + cfg.renew_s

    def _lose(self, reason: str, *, event: str = "cluster.lost") -> None:
        token = self._token
        assert token is not None
        self._token = None
        self._term.end()
        emit = self._log.info if event == "cluster.released" else self._log.warning
        emit(event, generation=token.generation, reason=reason)
        self._on_lose(reason)

"""The agents' availability log, kept by the service (domain/availability.py).

The shell asks the desk for an agent's availability (``Desk.availability``) wherever
it can change: after every agent request (``CallService.agent_event``: feature codes,
the desk's web buttons, the operator's ``agents login|logout|pause|resume`` through the
control API; a request during a call counts from then) and at every
``AgentStateChanged`` command (three missed offers, the end of a call); then
:meth:`AgentLog.changed` writes a row only when the agent moves between available,
paused and logged out. A start (and a reload of the directory, which adds or retires
agents without commands) compares the whole desk with what was logged
(:meth:`AgentLog.sync`); a clean stop closes every open row (:meth:`AgentLog.close`), so
the time the service is down counts as nobody's.

The store is the call spool (calls/spool.py): the rows are written behind the routing,
and survive a database outage like the calls' records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

import structlog

from televikar_pbx.domain.availability import Availability, AvailabilityTracker

log = structlog.get_logger("televikar_pbx.agent_log")


class AgentLogStore(Protocol):
    async def log_agent_state(self, agent_id: int, state: str, at: datetime) -> None: ...

    async def close_agent_log(self, at: datetime) -> None: ...


class AgentLog:
    def __init__(self, store: AgentLogStore) -> None:
        self._store = store
        self._tracker = AvailabilityTracker()
        # Events carry Asterisk's time or ours: the log's instants never go back, or
        # the repository would take a change for a stale replay.
        self._last_at: datetime | None = None

    async def changed(self, agent_id: int, availability: Availability, at: datetime) -> None:
        if self._tracker.changed(agent_id, availability):
            await self._write(agent_id, availability, at)

    async def sync(self, availabilities: Iterable[tuple[int, Availability]], at: datetime) -> None:
        for agent_id, availability in self._tracker.sync(availabilities):
            await self._write(agent_id, availability, at)

    async def close(self, at: datetime) -> None:
        self._tracker.forget()
        try:
            await self._store.close_agent_log(self._instant(at))
        except Exception as exc:
            log.error("agent_log.write_failed", error=str(exc).splitlines()[0])

    def _instant(self, at: datetime) -> datetime:
        if self._last_at is not None and at < self._last_at:
            at = self._last_at
        self._last_at = at
        return at

    async def _write(self, agent_id: int, availability: Availability, at: datetime) -> None:
        try:
            await self._store.log_agent_state(agent_id, availability.value, self._instant(at))
        except Exception as exc:  # a bug or refused data: routing goes on, the log says so
            log.error("agent_log.write_failed", agent_id=agent_id, error=str(exc).splitlines()[0])

"""The agents' availability log (``agent_availability``, domain/availability.py).

Each row is a stretch of time an agent spent in one availability, ``[started_at,
ended_at)``, ``ended_at`` None while it lasts. ``serve`` writes it behind the routing
through the call spool (calls/spool.py), so the two writes are idempotent when the spool
replays a suffix of its lines in order after a crash: a change older than the agent's
latest row is stale and left out, a change to the state the agent is in is no change,
and closing leaves alone what started later.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, update

from televikar_pbx.db import models
from televikar_pbx.db.repo_base import Repository, require_aware
from televikar_pbx.domain.availability import Availability

Interval = tuple[int, dt.datetime, dt.datetime]

# The ops the call spool writes behind the routing for this log (calls/spool.py).
AGENT_LOG_OPS = frozenset({"log_agent_state", "close_agent_log"})


class AgentLogRepository(Repository):
    async def log_agent_state(self, agent_id: int, state: str, at: dt.datetime) -> None:
        """From ``at`` the agent is in availability ``state`` (an ``Availability``
        value; ValueError otherwise): its open row ends at ``at`` and a new one opens.
        Two changes at one instant: the later one's state replaces the first's row."""
        require_aware("at", at)
        state = Availability(state).value
        log = models.AgentAvailability
        async with self._unit() as s:
            last = await s.scalar(
                select(log)
                .where(log.agent_id == agent_id)
                .order_by(log.started_at.desc(), log.id.desc())
                .limit(1)
            )
            if last is not None:
                if last.started_at > at or (last.ended_at is not None and last.ended_at > at):
                    return  # stale: a replay of a change already followed by another
                if last.ended_at is None:
                    if last.state == state:
                        return
                    if last.started_at == at:
                        last.state = state
                        await s.flush()
                        return
                    last.ended_at = at
            s.add(log(agent_id=agent_id, state=state, started_at=at))
            await s.flush()

    async def close_agent_log(self, at: dt.datetime) -> None:
        """Every open row that started by ``at`` ends at ``at`` (the service stops)."""
        require_aware("at", at)
        log = models.AgentAvailability
        async with self._unit() as s:
            await s.execute(
                update(log)
                .where(log.ended_at.is_(None), log.started_at <= at)
                .values(ended_at=at)
                .execution_options(synchronize_session=False)
            )

    async def available_intervals(self, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        """When each agent was available (logged in, not paused) within ``[start, end)``:
        ``(agent id, from, to)`` clipped to it, by agent then time, touching stretches of
        one agent joined. A row still open counts until ``end``."""
        require_aware("start", start)
        require_aware("end", end)
        log = models.AgentAvailability
        query = (
            select(log.agent_id, log.started_at, log.ended_at)
            .where(
                log.state == Availability.AVAILABLE.value,
                log.started_at < end,
                or_(log.ended_at.is_(None), log.ended_at > start),
            )
            .order_by(log.agent_id, log.started_at)
        )
        start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
        intervals: list[Interval] = []
        async with self._unit() as s:
            for agent_id, started_at, ended_at in await s.execute(query):
                since, until = max(started_at, start), min(ended_at or end, end)
                if since >= until:
                    continue
                if intervals and intervals[-1][0] == agent_id and intervals[-1][2] >= since:
                    _, first, last = intervals[-1]
                    intervals[-1] = (agent_id, first, max(last, until))
                else:
                    intervals.append((agent_id, since, until))
        return intervals

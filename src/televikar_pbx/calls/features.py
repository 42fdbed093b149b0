"""Feature codes dialled from agent phones: ``*45`` log in, ``*46`` log out, ``*47`` pause
or resume. The FastAGI server asks :meth:`FeatureCodes.on_feature` and plays the prompt
it returns."""

from __future__ import annotations

from typing import Protocol

import structlog

from televikar_pbx.calls.services import CallService
from televikar_pbx.domain import acd

log = structlog.get_logger("televikar_pbx.features")


class AgentStateStore(Protocol):
    async def set_agent_state(
        self, agent_id: int, *, logged_in: bool | None = None, paused: bool | None = None
    ) -> None: ...


class FeatureCodes:
    def __init__(self, calls: CallService, store: AgentStateStore) -> None:
        self._calls = calls
        self._store = store

    async def on_feature(self, endpoint: str, code: str) -> str:
        agent_id = next(
            (a.id for a in self._calls.directory.agents if a.endpoint == endpoint), None
        )
        if agent_id is None or code not in ("*45", "*46", "*47"):
            log.warning("feature.refused", endpoint=endpoint, code=code)
            return "not-allowed"
        slot = self._calls.desk.agents[agent_id]
        event: acd.AgentEvent
        if code == "*45":
            event, prompt, saved = acd.AgentLoggedIn(agent_id), "logged-in", {"logged_in": True}
        elif code == "*46":
            event, prompt, saved = acd.AgentLoggedOut(agent_id), "logged-out", {"logged_in": False}
        elif slot.state is acd.AgentState.LOGGED_OUT:
            return "logged-out"  # pausing means nothing before logging in
        elif slot.state is acd.AgentState.PAUSED or slot.after_call is acd.AgentState.PAUSED:
            event, prompt, saved = acd.AgentResumed(agent_id), "resumed", {"paused": False}
        else:
            event, prompt, saved = acd.AgentPaused(agent_id), "paused", {"paused": True}
        if code in ("*45", "*46"):
            saved["paused"] = False
        error = await self._calls.agent_event(event, self._calls.clock.now())
        if error:
            log.warning("feature.rejected_by_desk", endpoint=endpoint, code=code, error=error)
            return "not-allowed"
        await self._store.set_agent_state(agent_id, **saved)
        log.info("feature.done", endpoint=endpoint, code=code, state=slot.state.value)
        return prompt

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
        event: acd.AgentEvent
        if code == "*45":
            event, prompt, saved = acd.AgentLoggedIn(agent_id), "logged-in", {"logged_in": True}
        elif code == "*46":
            event, prompt, saved = acd.AgentLoggedOut(agent_id), "logged-out", {"logged_in": False}
        else:
            event, prompt, saved = acd.AgentPauseToggled(agent_id), "", {}
        if code in ("*45", "*46"):
            saved["paused"] = False
        try:
            commands = await self._calls.agent_event(event, self._calls.clock.now())
        except acd.IllegalEvent as exc:
            log.warning("feature.rejected_by_desk", endpoint=endpoint, code=code, error=str(exc))
            return "not-allowed"
        toggled = [c.paused for c in commands if isinstance(c, acd.PauseToggled)]
        if toggled == [None]:
            return "logged-out"  # pausing means nothing before logging in
        if toggled:
            prompt, saved = (
                ("paused", {"paused": True}) if toggled[0] else ("resumed", {"paused": False})
            )
        await self._store.set_agent_state(agent_id, **saved)
        view = self._calls.view().agent(agent_id)
        log.info("feature.done", endpoint=endpoint, code=code, state=view and view.state.value)
        return prompt


# The agent desk's buttons (web/desk.py): the same events and stored state as the
# feature codes, but explicit (a button pressed twice pauses once; *47 toggles).
PAGE_ACTIONS: dict[str, tuple[type[acd.AgentEvent], dict[str, bool]]] = {
    "login": (acd.AgentLoggedIn, {"logged_in": True, "paused": False}),
    "logout": (acd.AgentLoggedOut, {"logged_in": False, "paused": False}),
    "pause": (acd.AgentPaused, {"paused": True}),
    "resume": (acd.AgentResumed, {"paused": False}),
}


class AgentActions:
    """Log in or out, pause or resume an agent from its desk page: the desk first (it
    may refuse: :class:`acd.IllegalEvent`), then the state kept for a restart."""

    def __init__(self, calls: CallService, store: AgentStateStore) -> None:
        self._calls = calls
        self._store = store

    async def __call__(self, agent_id: int, action: str) -> None:
        event_type, saved = PAGE_ACTIONS[action]
        await self._calls.agent_event(event_type(agent_id), self._calls.clock.now())
        await self._store.set_agent_state(agent_id, **saved)
        view = self._calls.view().agent(agent_id)
        state = view and view.state.value
        log.info("desk_web.agent", agent_id=agent_id, action=action, state=state)

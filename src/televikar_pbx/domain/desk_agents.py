"""The agents' side of the desk: each agent's state, its requests (log in and out, pause,
resume, the ``*47`` toggle), its phone's reachability, and what a call does to it
(missed offers, wrap-up, release). :class:`~televikar_pbx.domain.acd.Desk` builds on
:class:`AgentDesk`; the rules are in ``acd.py``'s docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from televikar_pbx.domain.availability import Availability, availability_of
from televikar_pbx.domain.desk_messages import (
    AgentEvent,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentPauseToggled,
    AgentResumed,
    AgentState,
    AgentStateChanged,
    Command,
    PauseToggled,
    PhoneEvent,
    PhoneReachable,
    PhoneUnreachable,
)
from televikar_pbx.domain.directory import CustomerRules

MISSES_BEFORE_PAUSE = 3


class IllegalEvent(Exception):
    """An event that the current state does not allow; the state is unchanged."""


@dataclass(slots=True)
class AgentSlot:
    agent_id: int
    priorities: dict[int, int]  # customer id -> priority (0 = first choice)
    state: AgentState = AgentState.IDLE
    idle_since: datetime | None = None
    call_id: str | None = None
    wrap_up_until: datetime | None = None
    misses: int = 0
    reachable: bool = True  # the phone is registered / answers (AMI presence)
    # What the agent asked for while busy, applied when the call and wrap-up are over.
    after_call: AgentState | None = None

    @property
    def present(self) -> bool:
        """Logged in, not paused, phone reachable (busy or not)."""
        if self.state in (AgentState.LOGGED_OUT, AgentState.PAUSED) or not self.reachable:
            return False
        return self.after_call is None


class AgentDesk:
    """The agents and the rules that concern them alone."""

    agents: dict[int, AgentSlot]

    def rules(self, customer_id: int | None) -> CustomerRules:
        raise NotImplementedError  # the desk knows the customers

    def availability(self, agent_id: int) -> Availability:
        """Available, paused or logged out (domain/availability.py): what the agent
        asked for during a call counts from the request, as for routing."""
        agent = self.agents[agent_id]
        return availability_of(agent.after_call or agent.state)

    def availabilities(self) -> list[tuple[int, Availability]]:
        return [(agent_id, self.availability(agent_id)) for agent_id in self.agents]

    def _miss(self, agent_id: int, now: datetime) -> list[Command]:
        agent = self.agents[agent_id]
        agent.misses += 1
        if agent.misses >= MISSES_BEFORE_PAUSE and agent.after_call is None:
            agent.after_call = AgentState.PAUSED
            return self._release(agent_id, now, f"{agent.misses} missed offers in a row")
        return self._release(agent_id, now, "missed_offer")

    def _wrap_up(self, agent_id: int, customer_id: int | None, now: datetime) -> list[Command]:
        agent = self.agents[agent_id]
        agent.call_id = None
        wrap = self.rules(customer_id).wrap_up_s
        if wrap <= 0:
            return self._release(agent_id, now, "call_ended")
        agent.state, agent.wrap_up_until = AgentState.WRAP_UP, now + timedelta(seconds=wrap)
        return [AgentStateChanged(agent_id, AgentState.WRAP_UP, "call_ended")]

    def _release(self, agent_id: int, now: datetime, reason: str) -> list[Command]:
        """The agent is done with a call: idle, or what was asked for meanwhile."""
        agent = self.agents[agent_id]
        agent.call_id, agent.wrap_up_until = None, None
        agent.state = agent.after_call or AgentState.IDLE
        agent.after_call = None
        if agent.state is AgentState.IDLE:
            agent.idle_since = now
        return [AgentStateChanged(agent_id, agent.state, reason)]

    def _agent_event(self, event: AgentEvent | PhoneEvent, now: datetime) -> list[Command]:
        agent = self.agents.get(event.agent_id)
        if agent is None:
            raise IllegalEvent(f"{type(event).__name__} for unknown agent {event.agent_id}")
        handler = AGENT_TRANSITIONS[agent.state].get(type(event))
        if handler is None:
            raise IllegalEvent(f"{type(event).__name__} not allowed for a {agent.state} agent")
        return handler(self, agent, event, now)

    # Agent handlers, one per row of AGENT_TRANSITIONS: (agent, event, now) -> commands.

    def _agent_now(self, agent: AgentSlot, event: AgentEvent, now: datetime) -> list[Command]:
        wanted = WANTED[type(event)]
        if wanted is agent.state:
            return []
        agent.state, agent.misses = wanted, 0
        if wanted is AgentState.IDLE:
            agent.idle_since = now
        return [AgentStateChanged(agent.agent_id, wanted, type(event).__name__)]

    def _agent_after_call(
        self, agent: AgentSlot, event: AgentEvent, now: datetime
    ) -> list[Command]:
        """Busy agents: the change takes effect when the call (and wrap-up) is over."""
        wanted = WANTED[type(event)]
        agent.after_call = None if wanted is AgentState.IDLE else wanted
        return []

    def _toggle_now(self, agent: AgentSlot, event: AgentEvent, now: datetime) -> list[Command]:
        paused = agent.state is not AgentState.PAUSED
        request = AgentPaused(agent.agent_id) if paused else AgentResumed(agent.agent_id)
        return [PauseToggled(agent.agent_id, paused), *self._agent_now(agent, request, now)]

    def _toggle_after_call(
        self, agent: AgentSlot, event: AgentEvent, now: datetime
    ) -> list[Command]:
        paused = agent.after_call is not AgentState.PAUSED
        request = AgentPaused(agent.agent_id) if paused else AgentResumed(agent.agent_id)
        return [PauseToggled(agent.agent_id, paused), *self._agent_after_call(agent, request, now)]

    def _toggle_logged_out(
        self, agent: AgentSlot, event: AgentEvent, now: datetime
    ) -> list[Command]:
        return [PauseToggled(agent.agent_id, None)]  # pausing means nothing before login

    def _phone(self, agent: AgentSlot, event: PhoneEvent, now: datetime) -> list[Command]:
        agent.reachable = isinstance(event, PhoneReachable)
        return []


AgentHandler = Callable[[AgentDesk, AgentSlot, Any, datetime], list[Command]]

# What each request asks for.
WANTED: dict[type[AgentEvent], AgentState] = {
    AgentLoggedIn: AgentState.IDLE,
    AgentResumed: AgentState.IDLE,
    AgentLoggedOut: AgentState.LOGGED_OUT,
    AgentPaused: AgentState.PAUSED,
}
_PHONE: dict[type[AgentEvent | PhoneEvent], AgentHandler] = {
    PhoneReachable: AgentDesk._phone,
    PhoneUnreachable: AgentDesk._phone,
}
_FREE: dict[type[AgentEvent | PhoneEvent], AgentHandler] = {
    **_PHONE,
    **dict.fromkeys(WANTED, AgentDesk._agent_now),
    AgentPauseToggled: AgentDesk._toggle_now,
}
_BUSY: dict[type[AgentEvent | PhoneEvent], AgentHandler] = {
    **_PHONE,
    **dict.fromkeys(WANTED, AgentDesk._agent_after_call),
    AgentPauseToggled: AgentDesk._toggle_after_call,
}

AGENT_TRANSITIONS: dict[AgentState, dict[type[AgentEvent | PhoneEvent], AgentHandler]] = {
    AgentState.LOGGED_OUT: {
        **_PHONE,
        AgentLoggedIn: AgentDesk._agent_now,
        AgentLoggedOut: AgentDesk._agent_now,
        AgentPauseToggled: AgentDesk._toggle_logged_out,
    },
    AgentState.IDLE: _FREE,
    AgentState.PAUSED: _FREE,
    AgentState.OFFERED: _BUSY,
    AgentState.ON_CALL: _BUSY,
    AgentState.WRAP_UP: _BUSY,
}

AGENT_EVENT_TYPES = (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentResumed,
    AgentPauseToggled,
    PhoneReachable,
    PhoneUnreachable,
)

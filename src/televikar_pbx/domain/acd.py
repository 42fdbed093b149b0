"""The answering desk (ACD) as a pure state machine.

Theory of operation
-------------------
The shell (``calls/``) turns Asterisk events into the small *events* below and feeds
them to :meth:`Desk.handle` together with the current time. The desk updates its state
and answers with *commands* (ring this agent, connect that call, close this record),
which the shell carries out against Asterisk and the database. The desk itself does no
I/O and reads no clock, so the same core runs under ARI and in tests with simulated time.

Rules (grown issue by issue):

* A call is ``queued`` on arrival; the caller hears ringing and is not answered.
* While a call is queued and a qualified agent is idle, the call is offered to the agent
  who has been idle longest. One offer per agent at a time; one offer per call at a time.
* When an offer fails (no answer, busy, unreachable) the agent returns to idle and the
  call is queued again: the next agent is tried.
* When the agent answers, the call is ``connected``: the caller is answered and bridged.
* When an agent becomes free and callers of several of its customers wait, it takes the
  caller closest to breaching its customer's answer target (wait relative to threshold).
* A hang-up on either side of a connected call ends both legs; a caller who hangs up
  before being answered ends the call as ``abandoned`` and cancels any ringing offer.

An event that is illegal in the current state raises :class:`IllegalEvent` and leaves
the state unchanged: the checks all happen before the first mutation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from televikar_pbx.domain.outcomes import Outcome


class IllegalEvent(Exception):
    """An event that the current state does not allow; the state is unchanged."""


class CallState(StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    CONNECTED = "connected"
    ENDED = "ended"


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    IDLE = "idle"
    OFFERED = "offered"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


# --- events (past tense) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallerArrived:
    call_id: str
    customer_id: int


@dataclass(frozen=True, slots=True)
class OfferFailed:
    call_id: str
    agent_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class AgentAnswered:
    call_id: str
    agent_id: int


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    call_id: str


@dataclass(frozen=True, slots=True)
class AgentHungUp:
    call_id: str
    agent_id: int


Event = CallerArrived | OfferFailed | AgentAnswered | CallerHungUp | AgentHungUp


# --- commands (imperative) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RingAgent:
    call_id: str
    agent_id: int


@dataclass(frozen=True, slots=True)
class CancelOffer:
    call_id: str
    agent_id: int


@dataclass(frozen=True, slots=True)
class ConnectCall:
    """Answer the caller and bridge it with the agent leg."""

    call_id: str
    agent_id: int


@dataclass(frozen=True, slots=True)
class HangUpCaller:
    call_id: str


@dataclass(frozen=True, slots=True)
class HangUpAgent:
    call_id: str
    agent_id: int


@dataclass(frozen=True, slots=True)
class CloseCall:
    call_id: str
    outcome: Outcome


Command = RingAgent | CancelOffer | ConnectCall | HangUpCaller | HangUpAgent | CloseCall

# Which call state allows which event, and where it leads. ``None`` marks events whose
# next state depends on more than the event type (resolved in the handler).
CALL_TRANSITIONS: dict[CallState, dict[type[Event], CallState]] = {
    CallState.QUEUED: {CallerHungUp: CallState.ENDED},
    CallState.OFFERED: {
        OfferFailed: CallState.QUEUED,
        AgentAnswered: CallState.CONNECTED,
        CallerHungUp: CallState.ENDED,
    },
    CallState.CONNECTED: {CallerHungUp: CallState.ENDED, AgentHungUp: CallState.ENDED},
    CallState.ENDED: {},
}


@dataclass(slots=True)
class AgentSlot:
    agent_id: int
    customer_ids: frozenset[int]
    state: AgentState = AgentState.IDLE
    idle_since: datetime | None = None
    call_id: str | None = None


@dataclass(slots=True)
class CallSlot:
    call_id: str
    customer_id: int
    arrived_at: datetime
    state: CallState = CallState.QUEUED
    agent_id: int | None = None
    tried: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CustomerRules:
    """Per-customer numbers the router needs (overridable later per customer)."""

    answer_target_s: float = 12.0


class Desk:
    """Callers waiting, agents available, and who is offered to whom."""

    def __init__(self, rules: dict[int, CustomerRules] | None = None) -> None:
        self.calls: dict[str, CallSlot] = {}
        self.agents: dict[int, AgentSlot] = {}
        self._rules = rules or {}

    # --- agents ------------------------------------------------------------------------

    def add_agent(
        self,
        agent_id: int,
        customer_ids: Iterable[int],
        now: datetime,
        state: AgentState = AgentState.IDLE,
    ) -> list[Command]:
        """Register an agent (idle from ``now`` unless told otherwise) and route."""
        self.agents[agent_id] = AgentSlot(
            agent_id, frozenset(customer_ids), state, now if state is AgentState.IDLE else None
        )
        return self._route(now)

    # --- events ------------------------------------------------------------------------

    def handle(self, event: Event, now: datetime) -> list[Command]:
        if isinstance(event, CallerArrived):
            if event.call_id in self.calls:
                raise IllegalEvent(f"call {event.call_id} arrived twice")
            self.calls[event.call_id] = CallSlot(event.call_id, event.customer_id, now)
            return self._route(now)

        call = self.calls.get(event.call_id)
        if call is None:
            raise IllegalEvent(f"{type(event).__name__} for unknown call {event.call_id}")
        allowed = CALL_TRANSITIONS[call.state]
        if type(event) not in allowed:
            raise IllegalEvent(f"{type(event).__name__} not allowed for a {call.state} call")
        if isinstance(event, OfferFailed | AgentAnswered | AgentHungUp) and (
            event.agent_id != call.agent_id
        ):
            raise IllegalEvent(
                f"{type(event).__name__} from agent {event.agent_id}, "
                f"call {call.call_id} is with agent {call.agent_id}"
            )

        commands: list[Command] = []
        if isinstance(event, OfferFailed):
            self._free_agent(event.agent_id, now)
            call.state, call.agent_id = CallState.QUEUED, None
        elif isinstance(event, AgentAnswered):
            self.agents[event.agent_id].state = AgentState.ON_CALL
            call.state = CallState.CONNECTED
            commands.append(ConnectCall(call.call_id, event.agent_id))
        elif isinstance(event, CallerHungUp):
            commands += self._end_by_caller(call, now)
        elif isinstance(event, AgentHungUp):
            self._free_agent(event.agent_id, now)
            call.state = CallState.ENDED
            commands += [HangUpCaller(call.call_id), CloseCall(call.call_id, Outcome.ANSWERED)]
        if call.state is CallState.ENDED:
            del self.calls[call.call_id]
        return commands + self._route(now)

    def _end_by_caller(self, call: CallSlot, now: datetime) -> list[Command]:
        commands: list[Command] = []
        outcome = Outcome.ABANDONED
        if call.state is CallState.OFFERED and call.agent_id is not None:
            commands.append(CancelOffer(call.call_id, call.agent_id))
            self._free_agent(call.agent_id, now)
        elif call.state is CallState.CONNECTED and call.agent_id is not None:
            commands.append(HangUpAgent(call.call_id, call.agent_id))
            self._free_agent(call.agent_id, now)
            outcome = Outcome.ANSWERED
        call.state = CallState.ENDED
        commands.append(CloseCall(call.call_id, outcome))
        return commands

    def _free_agent(self, agent_id: int, now: datetime) -> None:
        agent = self.agents.get(agent_id)
        if agent is None:
            return
        agent.call_id = None
        if agent.state in (AgentState.OFFERED, AgentState.ON_CALL):
            agent.state, agent.idle_since = AgentState.IDLE, now

    # --- routing -----------------------------------------------------------------------

    def _urgency(self, call: CallSlot, now: datetime) -> float:
        target = self._rules.get(call.customer_id, CustomerRules()).answer_target_s
        return (now - call.arrived_at).total_seconds() / target

    def _route(self, now: datetime) -> list[Command]:
        """Pair idle agents with queued callers until no pair is left."""
        commands: list[Command] = []
        while True:
            waiting = [c for c in self.calls.values() if c.state is CallState.QUEUED]
            idle = [a for a in self.agents.values() if a.state is AgentState.IDLE]
            best: tuple[CallSlot, AgentSlot] | None = None
            # Most urgent caller first; among its qualified agents, the one idle longest.
            for call in sorted(waiting, key=lambda c: (-self._urgency(c, now), c.arrived_at)):
                qualified = [a for a in idle if call.customer_id in a.customer_ids]
                if qualified:
                    agent = min(qualified, key=lambda a: (a.idle_since or now, a.agent_id))
                    best = (call, agent)
                    break
            if best is None:
                return commands
            call, agent = best
            call.state, call.agent_id = CallState.OFFERED, agent.agent_id
            call.tried.append(agent.agent_id)
            agent.state, agent.call_id = AgentState.OFFERED, call.call_id
            commands.append(RingAgent(call.call_id, agent.agent_id))

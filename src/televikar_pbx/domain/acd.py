"""The answering desk (ACD) as a pure state machine.

Theory of operation
-------------------
The shell (``calls/``) turns Asterisk events into the small *events* below and feeds
them to :meth:`Desk.handle` with the current time. The desk updates its state and
answers with *commands* (ring this agent, connect that call, take a message, close this
record), which the shell carries out against Asterisk and the database. The desk does no
I/O and reads no clock, so the same core runs under ARI and in tests with simulated time.
Time-driven rules (wrap-up ending, maximum wait) run on :class:`Tick`; the shell asks
:meth:`Desk.next_deadline` when to send the next one.

Rules
-----
Arrival, in this order:

1. Unknown dialled number: the caller hears an announcement; outcome ``unknown_number``.
2. Outside every active agreement and booking: the customer's policy, take a message
   (default) or play the rejection announcement (outcome ``rejected``).
3. Outside service hours: take a message (default) or play the closed announcement
   (outcome ``rejected``).
4. No agent serving the customer is logged in and unpaused: take a message at once.
5. Otherwise the caller is queued and hears ringing (or the customer's hold style).

A caller the dialplan held while no desk was connected (a standby taking over) arrives
with the moment it rang (``CallerArrived.rang_at``): the rules above, its place in the
queue and its maximum wait count from then, so it is not served after a caller who rang
later.

Routing: while a caller is queued and a qualified agent is idle, the most urgent caller
(longest wait relative to its customer's answer target) is offered to an idle agent who
serves its customer: agents not yet tried for this caller first, then the lowest priority
number, then the one idle longest. An agent is offered one call at a time.

Agents whose phone is unreachable (AMI presence) are neither offered calls nor counted as
staffing a customer.

Offers: a failed offer (no answer within the ring timeout, busy, rejected, unreachable)
is a *miss*: the caller stays queued and the next agent is tried. Three misses in a row
pause the agent. A caller who hangs up while an agent rings cancels the offer at once.

After a connected call the agent is in wrap-up for the customer's wrap-up time before
being offered again. A caller who waits longer than the customer's maximum is taken to
message capture (an offer ringing at that moment is cancelled, not counted as a miss).
A recorded message of under one second is outcome ``no_message``. A caller who hangs up
during the recording ends the call when the recording is reported done; if that report
has not come :data:`RECORDING_GRACE_S` later, the desk asks for the recording itself
(:class:`FinishRecording`), so no call waits for an event that never comes.

An event that is illegal in the current state raises :class:`IllegalEvent` and leaves
the state unchanged: all checks happen before the first mutation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from televikar_pbx.domain.desk_agents import (
    AGENT_EVENT_TYPES,
    AGENT_TRANSITIONS,
    MISSES_BEFORE_PAUSE,
    AgentDesk,
    AgentSlot,
    IllegalEvent,
)
from televikar_pbx.domain.desk_messages import (
    AgentAnswered,
    AgentEvent,
    AgentHungUp,
    AgentLegGone,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentPauseToggled,
    AgentResumed,
    AgentState,
    AgentStateChanged,
    Announce,
    AnnouncementDone,
    CallAdopted,
    CallerArrived,
    CallerHungUp,
    CallEvent,
    CallState,
    CancelOffer,
    CaptureMessage,
    CloseCall,
    Command,
    ConnectCall,
    Event,
    FinishRecording,
    HangUpAgent,
    HangUpCaller,
    KeepHangupCause,
    MessageRecorded,
    OfferFailed,
    OfferMissed,
    PauseToggled,
    PhoneEvent,
    PhoneReachable,
    PhoneUnreachable,
    RecordingStarted,
    RingAgent,
    StartWaiting,
    Tick,
)
from televikar_pbx.domain.desk_view import AgentView, CallView, DeskView
from televikar_pbx.domain.directory import (
    Agent,
    ClosedAction,
    Customer,
    CustomerRules,
    Directory,
    OutsidePolicy,
)
from televikar_pbx.domain.outcomes import Outcome

__all__ = [
    "AGENT_TRANSITIONS",
    "CALL_TRANSITIONS",
    "MIN_MESSAGE_S",
    "MISSES_BEFORE_PAUSE",
    "RECORDING_GRACE_S",
    "AgentAnswered",
    "AgentEvent",
    "AgentHungUp",
    "AgentLegGone",
    "AgentLoggedIn",
    "AgentLoggedOut",
    "AgentPauseToggled",
    "AgentPaused",
    "AgentResumed",
    "AgentSlot",
    "AgentState",
    "AgentStateChanged",
    "AgentView",
    "Announce",
    "AnnouncementDone",
    "CallAdopted",
    "CallEvent",
    "CallSlot",
    "CallState",
    "CallView",
    "CallerArrived",
    "CallerHungUp",
    "CancelOffer",
    "CaptureMessage",
    "CloseCall",
    "Command",
    "ConnectCall",
    "Desk",
    "DeskView",
    "Event",
    "FinishRecording",
    "HangUpAgent",
    "HangUpCaller",
    "IllegalEvent",
    "KeepHangupCause",
    "MessageRecorded",
    "OfferFailed",
    "OfferMissed",
    "PauseToggled",
    "PhoneEvent",
    "PhoneReachable",
    "PhoneUnreachable",
    "RecordingStarted",
    "RingAgent",
    "StartWaiting",
    "Tick",
]

MIN_MESSAGE_S = 1.0
_DEFAULT_MAX_WAIT = timedelta(seconds=CustomerRules().max_wait_s)
_DEFAULT_TARGET_S = CustomerRules().answer_target_s
# The call states with a deadline: the maximum wait, or chasing a recording.
_TIMED = frozenset({CallState.QUEUED, CallState.OFFERED, CallState.RECORDING})
# How long after the caller hung up during a recording the desk waits for Asterisk's
# RecordingFinished before it asks for the recording itself (FinishRecording).
RECORDING_GRACE_S = 5.0


@dataclass(slots=True)
class CallSlot:
    call_id: str
    customer_id: int | None
    arrived_at: datetime
    max_wait_at: datetime  # arrived_at + the customer's maximum wait
    state: CallState = CallState.QUEUED
    agent_id: int | None = None
    tried: list[int] = field(default_factory=list)
    caller_gone_at: datetime | None = None
    outcome: Outcome | None = None  # for announcements: decided on arrival
    recording_chased: bool = False  # FinishRecording was asked for


class Desk(AgentDesk):
    """Callers waiting, agents available, and who is offered to whom."""

    def __init__(self, directory: Directory, now: datetime, ring_timeout_s: float = 15) -> None:
        self.calls: dict[str, CallSlot] = {}
        self.agents: dict[int, AgentSlot] = {}
        self.ring_timeout_s = ring_timeout_s
        self._set_customers(directory)
        for agent in directory.agents:
            self._add_agent(agent, now)

    def _add_agent(self, agent: Agent, now: datetime) -> None:
        if not agent.logged_in:
            state = AgentState.LOGGED_OUT
        elif agent.paused:
            state = AgentState.PAUSED
        else:
            state = AgentState.IDLE
        priorities = {cid: agent.priority(cid) for cid in agent.customer_ids}
        self.agents[agent.id] = AgentSlot(agent.id, priorities, state, now)

    def reload(self, directory: Directory, now: datetime) -> list[Command]:
        """Take a new directory (customers or agents added or changed by the operator).

        Agents keep their live state; new agents start as the database says; agents no
        longer in the directory serve nobody from now on (and leave after a call).
        """
        self._set_customers(directory)
        listed = {a.id for a in directory.agents}
        for agent in directory.agents:
            slot = self.agents.get(agent.id)
            if slot is None:
                self._add_agent(agent, now)
            else:
                slot.priorities = {cid: agent.priority(cid) for cid in agent.customer_ids}
        for agent_id, slot in self.agents.items():
            if agent_id not in listed:
                slot.priorities = {}
                if slot.state in (AgentState.IDLE, AgentState.PAUSED):
                    slot.state = AgentState.LOGGED_OUT
        return self._overflow_and_route(now)

    def _set_customers(self, directory: Directory) -> None:
        self._customers: dict[int, Customer] = {c.id: c for c in directory.customers}
        # What the deadlines and the routing read of every waiting call, on every event.
        self._max_wait = {c.id: timedelta(seconds=c.rules.max_wait_s) for c in directory.customers}
        self._target = {c.id: c.rules.answer_target_s for c in directory.customers}
        for call in self.calls.values():
            call.max_wait_at = call.arrived_at + self._limit(call.customer_id)

    def _limit(self, customer_id: int | None) -> timedelta:
        """The customer's maximum wait (the service's for a call of no customer)."""
        if customer_id is None:
            return _DEFAULT_MAX_WAIT
        return self._max_wait.get(customer_id, _DEFAULT_MAX_WAIT)

    def rules(self, customer_id: int | None) -> CustomerRules:
        customer = self._customers.get(customer_id) if customer_id is not None else None
        return customer.rules if customer else CustomerRules()

    # --- the one entry point ----------------------------------------------------------

    def handle(self, event: Event, now: datetime) -> list[Command]:
        if isinstance(event, Tick):
            commands = self._tick(now)
        elif isinstance(event, CallerArrived):
            if event.call_id in self.calls:
                raise IllegalEvent(f"call {event.call_id} arrived twice")
            commands = self._arrive(event, now)
        elif isinstance(event, CallAdopted):
            commands = self._adopt(event, now)
        elif isinstance(event, AGENT_EVENT_TYPES):
            commands = self._agent_event(event, now)
        else:
            commands = self._call_event(event, now)
        return commands + self._overflow_and_route(now)

    def view(self) -> DeskView:
        """A frozen copy of what presence, control and status may see."""
        agents = tuple(
            AgentView(a.agent_id, a.state, a.call_id, a.misses, a.reachable, a.wrap_up_until)
            for a in self.agents.values()
        )
        calls = tuple(
            CallView(c.call_id, c.customer_id, c.arrived_at, c.state, c.agent_id)
            for c in sorted(self.calls.values(), key=lambda c: c.arrived_at)
        )
        return DeskView(agents, calls)

    def next_deadline(self) -> datetime | None:
        """When the next :class:`Tick` is due (wrap-up end or maximum wait)."""
        # Asked after every event (by the shell, and by a simulation a day at a time):
        # one quick pass over the agents and one over the calls.
        deadlines: list[datetime | None]
        deadlines = [a.wrap_up_until for a in self.agents.values() if a.wrap_up_until]
        recording, timed = CallState.RECORDING, _TIMED
        deadlines += [
            self._recording_deadline(c) if c.state is recording else c.max_wait_at
            for c in self.calls.values()
            if c.state in timed
        ]
        return min(filter(None, deadlines), default=None)

    @staticmethod
    def _recording_deadline(call: CallSlot) -> datetime | None:
        """When a recording whose caller left is fetched if Asterisk has not reported
        it done (None: not such a call, or already asked)."""
        if call.state is not CallState.RECORDING or call.caller_gone_at is None:
            return None
        if call.recording_chased:
            return None
        return call.caller_gone_at + timedelta(seconds=RECORDING_GRACE_S)

    # --- arrivals ---------------------------------------------------------------------

    def _arrive(self, event: CallerArrived, now: datetime) -> list[Command]:
        # A caller who rang before the desk heard of it keeps its place from then.
        rang = event.rang_at
        if rang is not None and rang < now:
            now = rang
        call = CallSlot(event.call_id, event.customer_id, now, now + self._limit(event.customer_id))
        self.calls[call.call_id] = call
        customer = self._customers.get(event.customer_id) if event.customer_id else None
        if customer is None:
            return self._announce(call, "unknown-number", Outcome.UNKNOWN_NUMBER)
        rules = customer.rules
        if not customer.calendar.under_agreement(now):
            if rules.outside_policy is OutsidePolicy.REJECT:
                return self._announce(call, "rejected", Outcome.REJECTED)
            return self._capture(call, "outside_agreement")
        if not customer.calendar.is_open(now):
            if rules.closed_action is ClosedAction.ANNOUNCEMENT:
                return self._announce(call, "closed", Outcome.REJECTED)
            return self._capture(call, "closed")
        if not self._staffed(customer.id):
            return self._capture(call, "no_agent")
        return [StartWaiting(call.call_id, rules.hold_style, rules.hold_media)]

    def _adopt(self, event: CallAdopted, now: datetime) -> list[Command]:
        """Take back a call found in Asterisk after a restart or reconnect. A queued
        caller keeps its arrival time (its place and maximum wait); the agent of a
        connected call is on that call whatever its state was (what it had asked for
        applies after it)."""
        if event.call_id in self.calls:
            raise IllegalEvent(f"call {event.call_id} is already on the desk")
        if event.state not in ADOPTABLE:
            raise IllegalEvent(f"a call cannot be adopted as {event.state}")
        if event.customer_id not in self._customers:
            raise IllegalEvent(f"adopted call {event.call_id}: unknown customer")
        agent = self.agents.get(event.agent_id) if event.agent_id is not None else None
        if (event.state is CallState.CONNECTED) != (agent is not None):
            raise IllegalEvent(f"adopted call {event.call_id}: a connected call needs its agent")
        if agent is not None and agent.call_id is not None:
            raise IllegalEvent(f"agent {agent.agent_id} is already on call {agent.call_id}")
        until = event.arrived_at + self._limit(event.customer_id)
        call = CallSlot(event.call_id, event.customer_id, event.arrived_at, until, event.state)
        self.calls[call.call_id] = call
        if agent is None:
            return []
        call.agent_id = agent.agent_id
        if agent.state in (AgentState.LOGGED_OUT, AgentState.PAUSED):
            agent.after_call = agent.state
        agent.state, agent.call_id, agent.wrap_up_until = AgentState.ON_CALL, call.call_id, None
        return [AgentStateChanged(agent.agent_id, agent.state, "adopted")]

    def _announce(self, call: CallSlot, announcement: str, outcome: Outcome) -> list[Command]:
        call.state, call.outcome = CallState.ANNOUNCING, outcome
        return [Announce(call.call_id, announcement)]

    def _capture(self, call: CallSlot, reason: str) -> list[Command]:
        call.state = CallState.CAPTURING
        return [CaptureMessage(call.call_id, reason, self.rules(call.customer_id).message_prompt)]

    def _staffed(self, customer_id: int) -> bool:
        return any(a.present and customer_id in a.priorities for a in self.agents.values())

    # --- call events ------------------------------------------------------------------

    def _call_event(self, event: CallEvent, now: datetime) -> list[Command]:
        call = self.calls.get(event.call_id)
        if call is None:
            raise IllegalEvent(f"{type(event).__name__} for unknown call {event.call_id}")
        handler = CALL_TRANSITIONS[call.state].get(type(event))
        if handler is None:
            raise IllegalEvent(f"{type(event).__name__} not allowed for a {call.state} call")
        agent_id = getattr(event, "agent_id", call.agent_id)
        if call.state in (CallState.OFFERED, CallState.CONNECTED) and agent_id != call.agent_id:
            raise IllegalEvent(
                f"{type(event).__name__} from agent {agent_id}, "
                f"call {call.call_id} is with agent {call.agent_id}"
            )
        return handler(self, call, event, now)

    # Call handlers, one per row of CALL_TRANSITIONS: (call, event, now) -> commands.

    def _offer_failed(self, call: CallSlot, event: OfferFailed, now: datetime) -> list[Command]:
        commands = self._miss(event.agent_id, now)
        call.state, call.agent_id = CallState.QUEUED, None
        return commands

    def _offer_leg_gone(self, call: CallSlot, event: AgentLegGone, now: datetime) -> list[Command]:
        missed = OfferMissed(call.call_id, event.agent_id, event.cause, event.cause_txt)
        if event.ours:  # our failure, not the agent's: no miss counts towards a pause
            call.state, call.agent_id = CallState.QUEUED, None
            return [missed, *self._release(event.agent_id, now, "offer_lost")]
        reason = str(event.cause_txt or event.cause)
        return [
            missed,
            *self._offer_failed(call, OfferFailed(call.call_id, event.agent_id, reason), now),
        ]

    def _answered(self, call: CallSlot, event: AgentAnswered, now: datetime) -> list[Command]:
        agent = self.agents[event.agent_id]
        agent.state, agent.misses = AgentState.ON_CALL, 0
        call.state = CallState.CONNECTED
        return [
            ConnectCall(call.call_id, event.agent_id),
            AgentStateChanged(agent.agent_id, agent.state, "answered"),
        ]

    def _agent_hung_up(self, call: CallSlot, event: CallEvent, now: datetime) -> list[Command]:
        return [HangUpCaller(call.call_id), *self._end(call, Outcome.ANSWERED, now)]

    def _talk_leg_gone(self, call: CallSlot, event: AgentLegGone, now: datetime) -> list[Command]:
        cause = KeepHangupCause(call.call_id, event.cause, event.cause_txt)
        return [cause, *self._agent_hung_up(call, event, now)]

    def _stale_leg_gone(self, call: CallSlot, event: CallEvent, now: datetime) -> list[Command]:
        """The leg of an offer we withdrew (maximum wait) ended: nothing changes."""
        return []

    def _abandoned(self, call: CallSlot, event: CallEvent, now: datetime) -> list[Command]:
        return self._end(call, Outcome.ABANDONED, now)

    def _abandoned_ringing(self, call: CallSlot, event: CallEvent, now: datetime) -> list[Command]:
        assert call.agent_id is not None  # an offered call has its agent
        commands: list[Command] = [CancelOffer(call.call_id, call.agent_id)]
        commands += self._release(call.agent_id, now, "caller_hung_up")
        return commands + self._end(call, Outcome.ABANDONED, now)

    def _caller_left_talk(self, call: CallSlot, event: CallEvent, now: datetime) -> list[Command]:
        assert call.agent_id is not None  # a connected call has its agent
        return [HangUpAgent(call.call_id, call.agent_id), *self._end(call, Outcome.ANSWERED, now)]

    def _caller_left_prompt(self, call: CallSlot, event: CallEvent, now: datetime) -> list[Command]:
        """Gone before the recording started: there will be no message."""
        return self._end(call, Outcome.NO_MESSAGE, now)

    def _caller_left_recording(
        self, call: CallSlot, event: CallEvent, now: datetime
    ) -> list[Command]:
        # The recording finishes on its own; MessageRecorded closes the call.
        call.caller_gone_at = now
        return []

    def _recording(self, call: CallSlot, event: CallEvent, now: datetime) -> list[Command]:
        call.state = CallState.RECORDING
        return []

    def _recorded(self, call: CallSlot, event: MessageRecorded, now: datetime) -> list[Command]:
        outcome = Outcome.MESSAGE if event.duration_s >= MIN_MESSAGE_S else Outcome.NO_MESSAGE
        commands: list[Command] = []
        if call.caller_gone_at is None:
            commands.append(HangUpCaller(call.call_id))
        return commands + self._end(call, outcome, call.caller_gone_at or now)

    def _announced(self, call: CallSlot, event: CallEvent, now: datetime) -> list[Command]:
        return [HangUpCaller(call.call_id)]

    def _caller_left_announcement(
        self, call: CallSlot, event: CallEvent, now: datetime
    ) -> list[Command]:
        return self._end(call, call.outcome or Outcome.FAILED, now)

    def _end(self, call: CallSlot, outcome: Outcome, ended_at: datetime) -> list[Command]:
        commands: list[Command] = []
        if call.state is CallState.CONNECTED and call.agent_id is not None:
            commands += self._wrap_up(call.agent_id, call.customer_id, ended_at)
        call.state = CallState.ENDED
        del self.calls[call.call_id]
        return [*commands, CloseCall(call.call_id, outcome, ended_at)]

    # --- time ---------------------------------------------------------------------------

    def _tick(self, now: datetime) -> list[Command]:
        commands: list[Command] = []
        for agent in self.agents.values():
            if agent.wrap_up_until is not None and agent.wrap_up_until <= now:
                commands += self._release(agent.agent_id, agent.wrap_up_until, "wrap_up_over")
        for call in list(self.calls.values()):
            state = call.state
            if state is CallState.RECORDING:
                chase = self._recording_deadline(call)
                if chase is not None and chase <= now:
                    call.recording_chased = True
                    commands.append(FinishRecording(call.call_id))
            elif (state is CallState.QUEUED or state is CallState.OFFERED) and (
                now >= call.max_wait_at
            ):
                commands += self._withdraw_offer(call, now)
                commands += self._capture(call, "max_wait")
        return commands

    def _withdraw_offer(self, call: CallSlot, now: datetime) -> list[Command]:
        if call.state is not CallState.OFFERED or call.agent_id is None:
            return []
        agent_id, call.agent_id = call.agent_id, None
        return [CancelOffer(call.call_id, agent_id), *self._release(agent_id, now, "withdrawn")]

    def _overflow_and_route(self, now: datetime) -> list[Command]:
        """After every event: queued callers of a customer nobody serves any more go to
        message capture, the others are offered to idle agents."""
        queued = self._queued()
        commands = self._overflow_unstaffed(queued)
        if commands:  # some left the queue
            queued = [c for c in queued if c.state is CallState.QUEUED]
        return commands + self._route(now, queued)

    def _overflow_unstaffed(self, queued: list[CallSlot]) -> list[Command]:
        commands: list[Command] = []
        staffed: dict[int, bool] = {}  # per customer: taking a message changes no agent
        for call in queued:
            customer_id = call.customer_id
            if customer_id is None:
                continue
            if customer_id not in staffed:
                staffed[customer_id] = self._staffed(customer_id)
            if not staffed[customer_id]:
                commands += self._capture(call, "no_agent")
        return commands

    # --- routing ------------------------------------------------------------------------

    def _urgency(self, call: CallSlot, now: datetime) -> float:
        customer_id = call.customer_id
        target = (
            _DEFAULT_TARGET_S
            if customer_id is None
            else self._target.get(customer_id, _DEFAULT_TARGET_S)
        )
        return (now - call.arrived_at).total_seconds() / target

    def _route(self, now: datetime, waiting: list[CallSlot]) -> list[Command]:
        """Pair idle agents with the ``waiting`` (queued) callers until no pair is left."""
        commands: list[Command] = []
        idle = self._idle() if waiting else []
        while waiting and idle:
            pair: tuple[CallSlot, AgentSlot] | None = None
            for call in sorted(waiting, key=lambda c: (-self._urgency(c, now), c.arrived_at)):
                qualified = [a for a in idle if call.customer_id in a.priorities]
                if qualified:
                    pair = (call, self._choose(call, qualified, now))
                    break
            if pair is None:
                return commands
            call, agent = pair
            call.state, call.agent_id = CallState.OFFERED, agent.agent_id
            call.tried.append(agent.agent_id)
            agent.state, agent.call_id = AgentState.OFFERED, call.call_id
            commands.append(RingAgent(call.call_id, agent.agent_id, self.ring_timeout_s))
            waiting.remove(call)  # no longer queued, as the agent is no longer idle
            idle.remove(agent)
        return commands

    # Each runs after every event: the state looked up once, not once per call or agent.

    def _queued(self) -> list[CallSlot]:
        queued = CallState.QUEUED
        return [c for c in self.calls.values() if c.state is queued]

    def _idle(self) -> list[AgentSlot]:
        idle = AgentState.IDLE
        return [a for a in self.agents.values() if a.state is idle and a.reachable]

    @staticmethod
    def _choose(call: CallSlot, qualified: list[AgentSlot], now: datetime) -> AgentSlot:
        fresh = [a for a in qualified if a.agent_id not in call.tried] or qualified
        customer = call.customer_id if call.customer_id is not None else -1
        return min(
            fresh,
            key=lambda a: (a.priorities.get(customer, 0), a.idle_since or now, a.agent_id),
        )


# --- the transition tables --------------------------------------------------------------
# Per state, the events it allows and the handler that carries each out (and so gives
# the next state). An event a state does not list is illegal: IllegalEvent, no change.

CallHandler = Callable[[Desk, CallSlot, Any, datetime], list[Command]]

# Message capture: the prompt plays, then the recording runs; either may end in a
# MessageRecorded (0 s when the prompt or the recording failed).
_CAPTURE: dict[type[CallEvent], CallHandler] = {
    MessageRecorded: Desk._recorded,
    AgentLegGone: Desk._stale_leg_gone,
}

CALL_TRANSITIONS: dict[CallState, dict[type[CallEvent], CallHandler]] = {
    CallState.QUEUED: {
        CallerHungUp: Desk._abandoned,
        AgentLegGone: Desk._stale_leg_gone,
    },
    CallState.OFFERED: {
        CallerHungUp: Desk._abandoned_ringing,
        AgentAnswered: Desk._answered,
        OfferFailed: Desk._offer_failed,
        AgentLegGone: Desk._offer_leg_gone,
    },
    CallState.CONNECTED: {
        CallerHungUp: Desk._caller_left_talk,
        AgentHungUp: Desk._agent_hung_up,
        AgentLegGone: Desk._talk_leg_gone,
    },
    CallState.CAPTURING: {
        **_CAPTURE,
        CallerHungUp: Desk._caller_left_prompt,
        RecordingStarted: Desk._recording,
    },
    CallState.RECORDING: {**_CAPTURE, CallerHungUp: Desk._caller_left_recording},
    CallState.ANNOUNCING: {
        CallerHungUp: Desk._caller_left_announcement,
        AnnouncementDone: Desk._announced,
        AgentLegGone: Desk._stale_leg_gone,
    },
    CallState.ENDED: {},
}

# The states a call found in Asterisk after a restart can be taken back in.
ADOPTABLE = frozenset(
    {CallState.QUEUED, CallState.CONNECTED, CallState.CAPTURING, CallState.RECORDING}
)

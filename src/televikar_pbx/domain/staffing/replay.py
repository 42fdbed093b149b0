"""Replaying a recorded day through the desk with other agents (issue 17): "what if we
had had one more agent 08-10?".

Theory of operation
-------------------
:func:`replay` plays the shell's part around a fresh :class:`~televikar_pbx.domain.acd.Desk`
with a simulated clock: a discrete-event simulation whose events are the recorded
callers' arrivals and behaviour, the simulated agents' answers, the roster's log-ins and
log-outs, and the desk's own deadlines (:meth:`Desk.next_deadline`, fed back as
:class:`Tick`). The desk decides all it decides in service: which caller is offered to
which agent, wrap-up, maximum wait, message capture when nobody serves a customer, the
customer's hours. Each replayed call ends in the desk's :class:`CloseCall`, whose outcome
and instants become :class:`CallFacts`; :func:`figures` computes them with
:func:`~televikar_pbx.domain.sla.sla_reports`, the code of ``sla report``.

What a replayed caller does (a :class:`Caller`, made from its recorded call by
:func:`~televikar_pbx.domain.staffing.replay_callers.callers_of`):

* arrives at its recorded instant, for its customer;
* waiting, hangs up at its **patience**: arrival to hang-up for a caller who abandoned.
  Other callers' patience is censored (they were answered or sent to message capture
  before they gave up): ``"infinite"`` (default) lets them wait until they are answered
  or the customer's maximum wait sends them to message capture; ``"km"`` draws it from
  the Kaplan-Meier survival of the day's waits beyond the wait they showed, with a
  seeded generator per call (``replay_callers.patience_draws``);
* answered, talks for its recorded talk (answer to end); a caller nobody answered in
  reality talks the mean talk of its customer's answered calls that day (of all
  customers if it has none, else :data:`DEFAULT_TALK_S`);
* sent to message capture, stays as long as it did (capture to end) and leaves the
  message it left (``message`` or ``no_message``); one that was not captured in reality
  leaves none (``no_message`` at once: the figures count both alike).

A simulated agent answers an offer ``ring_s`` after it rings (default: the median of the
day's offer-to-answer times) and never misses one; the caller's real talk ends the call
(the caller hangs up). Calls of the day that never reached a queue (unknown numbers,
rejected) are replayed too and stay out of the figures, as in ``sla report``.

No clock, no I/O, no unseeded randomness: the same day, staff and options give the same
facts. Times are integer microseconds from the start, so no float rounding moves a
wait across a limit.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from televikar_pbx.domain.acd import (
    AgentAnswered,
    AgentLoggedIn,
    AgentLoggedOut,
    Announce,
    AnnouncementDone,
    CallerArrived,
    CallerHungUp,
    CancelOffer,
    CaptureMessage,
    CloseCall,
    Command,
    ConnectCall,
    Desk,
    Event,
    HangUpCaller,
    MessageRecorded,
    RingAgent,
    StartWaiting,
    Tick,
)
from televikar_pbx.domain.directory import Agent, Customer, Directory
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.reporting import ReportSettings
from televikar_pbx.domain.sla import By, CallFacts, SlaReport, sla_reports
from televikar_pbx.domain.staffing.replay_callers import (
    DEFAULT_RING_S,
    PATIENCE_MODELS,
    Caller,
    Patience,
)

RING_TIMEOUT_S = 15.0

_US = timedelta(microseconds=1)
_US_PER_S = 1_000_000


@dataclass(frozen=True, slots=True)
class Shift:
    """Agent ``agent_id`` logs in (``logged_in``) or out at ``at``."""

    at: datetime
    agent_id: int
    logged_in: bool


@dataclass(frozen=True, slots=True)
class Staff:
    """Every agent of the replay (as the desk's directory has them at the start) and
    their log-ins and log-outs during the replay."""

    agents: tuple[Agent, ...]
    shifts: tuple[Shift, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """How the simulated agents ring, and the callers' patience model (``patience`` and
    ``seed`` are what ``callers_of`` was given: one value says how a replay was run)."""

    ring_s: float = DEFAULT_RING_S
    ring_timeout_s: float = RING_TIMEOUT_S
    patience: Patience = "infinite"
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.ring_s < self.ring_timeout_s:
            raise ValueError(
                f"the ring delay must be at least 0 s and under the ring timeout "
                f"({self.ring_timeout_s:g} s), got {self.ring_s:g} s"
            )
        if self.patience not in PATIENCE_MODELS:
            raise ValueError(f"patience is one of {', '.join(PATIENCE_MODELS)}")


def agents_for_all(count: int, customers: Iterable[Customer], *, first_id: int = 1) -> Staff:
    """``count`` agents serving every customer, logged in from the start."""
    if count < 0:
        raise ValueError(f"the number of agents must be 0 or more, got {count}")
    ids = frozenset(c.id for c in customers)
    agents = tuple(
        Agent(first_id + n, f"replay-{n + 1}", f"replay{n + 1}", ids, logged_in=True)
        for n in range(count)
    )
    return Staff(agents)


# --- the simulation ------------------------------------------------------------------

# What happens at a simulated instant (the heap's third field).
_SHIFT, _ARRIVE, _TICK, _ANSWER, _GIVE_UP, _TALK_OVER, _RECORDED, _ANNOUNCED, _LEFT = range(9)
# Where a replayed call is, as the simulated phones see it.
_WAITING, _TALKING, _CAPTURING, _ANNOUNCING, _DONE = range(5)


@dataclass(slots=True)
class _Call:
    caller: Caller
    phase: int = _WAITING
    offer: tuple[int, int] | None = None  # (agent, offer number) ringing now
    answered_at: datetime | None = None
    agent_id: int | None = None
    overflowed_at: datetime | None = None


@dataclass(slots=True)
class _Replay:
    desk: Desk
    start: datetime
    options: ReplayOptions
    calls: dict[str, _Call] = field(default_factory=dict)
    facts: dict[str, tuple[int, CallFacts]] = field(default_factory=dict)
    heap: list[tuple[int, int, int, Any]] = field(default_factory=list)
    seq: int = 0
    tick_at: int | None = None
    offers: int = 0

    def at(self, us: int) -> datetime:
        return self.start + timedelta(microseconds=us)

    def push(self, us: int, action: int, subject: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (us, self.seq, action, subject))

    def run(self) -> None:
        ring_us = round(self.options.ring_s * _US_PER_S)
        while self.heap:
            us, _, action, subject = heapq.heappop(self.heap)
            now = self.at(us)
            event: Event | None = None
            if action == _TICK:
                if self.tick_at == us:
                    self.tick_at = None
                deadline = self.desk.next_deadline()
                if deadline is not None and deadline <= now:
                    event = Tick()
            elif action == _ARRIVE:
                caller: Caller = subject
                self.calls[caller.key] = _Call(caller)
                event = CallerArrived(caller.key, caller.customer_id)
            elif action == _SHIFT:
                agent_id, logged_in = subject
                event = AgentLoggedIn(agent_id) if logged_in else AgentLoggedOut(agent_id)
            else:
                event = self._call_event(action, subject)
            if event is not None:
                self._carry_out(self.desk.handle(event, now), us, ring_us)
            elif action != _TICK:
                continue  # nothing changed: the pending tick stands
            deadline = self.desk.next_deadline()
            if deadline is not None:
                due = max((deadline - self.start) // _US, us)
                if self.tick_at is None or due < self.tick_at:
                    self.tick_at = due
                    self.push(due, _TICK, None)

    def _call_event(self, action: int, subject: Any) -> Event | None:
        """The simulated phones' event, unless the call has moved on since it was due."""
        key = subject[0] if action == _ANSWER else subject
        call = self.calls.get(key)
        if call is None:
            return None
        phase = call.phase
        if action == _ANSWER:
            if call.offer != subject[1:]:
                return None  # the offer was withdrawn (caller gone, maximum wait)
            return AgentAnswered(key, subject[1])
        if action == _GIVE_UP:
            return CallerHungUp(key) if phase == _WAITING else None
        if action == _TALK_OVER:
            return CallerHungUp(key) if phase == _TALKING else None
        if action == _RECORDED:
            return MessageRecorded(key, call.caller.message_s) if phase == _CAPTURING else None
        if action == _ANNOUNCED:
            return AnnouncementDone(key) if phase == _ANNOUNCING else None
        return CallerHungUp(key) if phase == _ANNOUNCING else None  # _LEFT

    def _carry_out(self, commands: list[Command], us: int, ring_us: int) -> None:
        for command in commands:
            handler = _COMMANDS.get(type(command))
            if handler is not None:
                handler(self, command, us, ring_us)

    # One method per command the simulated phones act on (the others change nothing).

    def _waiting(self, command: StartWaiting, us: int, ring_us: int) -> None:
        call = self.calls[command.call_id]
        patience = call.caller.patience_us
        if patience is not None:
            arrived = (call.caller.arrived_at - self.start) // _US
            self.push(max(arrived + patience, us), _GIVE_UP, command.call_id)

    def _ring(self, command: RingAgent, us: int, ring_us: int) -> None:
        self.offers += 1
        self.calls[command.call_id].offer = (command.agent_id, self.offers)
        self.push(us + ring_us, _ANSWER, (command.call_id, command.agent_id, self.offers))

    def _cancel(self, command: CancelOffer, us: int, ring_us: int) -> None:
        self.calls[command.call_id].offer = None

    def _connect(self, command: ConnectCall, us: int, ring_us: int) -> None:
        call = self.calls[command.call_id]
        call.phase, call.offer, call.agent_id = _TALKING, None, command.agent_id
        call.answered_at = self.at(us)
        self.push(us + call.caller.talk_us, _TALK_OVER, command.call_id)

    def _capture(self, command: CaptureMessage, us: int, ring_us: int) -> None:
        call = self.calls[command.call_id]
        call.phase, call.offer, call.overflowed_at = _CAPTURING, None, self.at(us)
        self.push(us + call.caller.capture_us, _RECORDED, command.call_id)

    def _announce(self, command: Announce, us: int, ring_us: int) -> None:
        self.calls[command.call_id].phase = _ANNOUNCING
        self.push(us, _ANNOUNCED, command.call_id)

    def _hang_up_caller(self, command: HangUpCaller, us: int, ring_us: int) -> None:
        call = self.calls.get(command.call_id)
        if call is not None and call.phase == _ANNOUNCING:  # the announcement is over
            self.push(us, _LEFT, command.call_id)

    def _close(self, command: CloseCall, us: int, ring_us: int) -> None:
        call = self.calls.pop(command.call_id)
        call.phase = _DONE
        answered = call.answered_at if command.outcome is Outcome.ANSWERED else None
        facts = CallFacts(
            call.caller.arrived_at,
            answered,
            command.ended_at,
            command.outcome,
            call.agent_id,
            call.overflowed_at,
        )
        self.facts[command.call_id] = (call.caller.customer_id, facts)


_COMMANDS: dict[type[Any], Callable[[_Replay, Any, int, int], None]] = {
    StartWaiting: _Replay._waiting,
    RingAgent: _Replay._ring,
    CancelOffer: _Replay._cancel,
    ConnectCall: _Replay._connect,
    CaptureMessage: _Replay._capture,
    Announce: _Replay._announce,
    HangUpCaller: _Replay._hang_up_caller,
    CloseCall: _Replay._close,
}


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """The replayed calls' facts by customer, in order of arrival, and the ring delay
    that was used."""

    facts: dict[int, list[CallFacts]]
    ring_s: float


def replay(
    callers: Sequence[Caller],
    customers: Sequence[Customer],
    staff: Staff,
    start: datetime,
    options: ReplayOptions | None = None,
) -> ReplayResult:
    """Run ``callers`` through a desk with ``customers`` and ``staff`` from ``start``
    (before the first arrival and shift) until every call has ended."""
    options = options or ReplayOptions()
    desk = Desk(Directory(tuple(customers), staff.agents), start, options.ring_timeout_s)
    sim = _Replay(desk, start, options)
    for shift in sorted(staff.shifts, key=lambda s: s.at):
        if shift.at < start:
            raise ValueError(f"a shift change at {shift.at} is before the replay's start")
        sim.push((shift.at - start) // _US, _SHIFT, (shift.agent_id, shift.logged_in))
    for caller in callers:
        if caller.arrived_at < start:
            raise ValueError(f"call {caller.key} arrived before the replay's start")
        sim.push((caller.arrived_at - start) // _US, _ARRIVE, caller)
    sim.run()
    facts: dict[int, list[CallFacts]] = {}
    for caller in callers:
        customer_id, call_facts = sim.facts[caller.key]
        facts.setdefault(customer_id, []).append(call_facts)
    return ReplayResult(facts, options.ring_s)


# --- the figures ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    """SLA reports (by hour and by day) of every customer together (``service``: in the
    replay's time zone, with the default targets) and of each customer."""

    service: dict[By, SlaReport]
    customers: dict[int, dict[By, SlaReport]]


def figures(
    facts: Mapping[int, Sequence[CallFacts]],
    customers: Sequence[Customer],
    settings: Mapping[int, ReportSettings],
    first_day: date,
    last_day: date,
    timezone: str,
) -> Figures:
    """The SLA figures of ``facts`` as ``sla report`` computes them."""
    every = [f for c in customers for f in facts.get(c.id, ())]
    service = sla_reports(every, first_day=first_day, last_day=last_day, timezone=timezone)
    per_customer = {
        c.id: sla_reports(
            facts.get(c.id, ()),
            first_day=first_day,
            last_day=last_day,
            settings=settings.get(c.id),
            timezone=c.timezone,
        )
        for c in customers
    }
    return Figures(service, per_customer)

"""The agents' availability log: the pure tracker, and the call shell writing it at
every desk change that moves an agent between available, paused and logged out."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from structlog.testing import capture_logs

from televikar_pbx.calls.agent_log import AgentLog
from televikar_pbx.calls.events import EventDispatcher
from televikar_pbx.calls.media import MediaFlows
from televikar_pbx.calls.services import CallService
from televikar_pbx.domain import acd
from televikar_pbx.domain.availability import Availability, AvailabilityTracker, availability_of
from televikar_pbx.domain.desk_messages import AgentState
from televikar_pbx.domain.directory import Agent, CustomerRules, Directory
from tests.unit.test_call_service import ACME, T0, FakeAri, FakeStore, HarnessClock, caller, event


def test_every_desk_state_has_one_availability() -> None:
    assert {s: availability_of(s) for s in AgentState} == {
        AgentState.LOGGED_OUT: Availability.LOGGED_OUT,
        AgentState.PAUSED: Availability.PAUSED,
        AgentState.IDLE: Availability.AVAILABLE,
        AgentState.OFFERED: Availability.AVAILABLE,
        AgentState.ON_CALL: Availability.AVAILABLE,
        AgentState.WRAP_UP: Availability.AVAILABLE,
    }


def test_the_tracker_reports_only_moves_between_availabilities() -> None:
    tracker = AvailabilityTracker()
    available, paused = Availability.AVAILABLE, Availability.PAUSED
    assert tracker.changed(1, available)
    assert not tracker.changed(1, available)
    assert tracker.changed(1, paused)
    assert tracker.sync([(1, paused), (2, Availability.LOGGED_OUT)]) == [
        (2, Availability.LOGGED_OUT)
    ]
    tracker.forget()  # all closed: the next sync logs everyone again
    assert tracker.sync([(1, paused), (2, Availability.LOGGED_OUT)]) == [
        (1, paused),
        (2, Availability.LOGGED_OUT),
    ]


def test_a_request_during_a_call_counts_from_the_request_as_for_routing() -> None:
    kari = Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True)
    desk = acd.Desk(Directory((NO_WRAP_UP,), (kari,)), T0)
    assert desk.availabilities() == [(7, Availability.AVAILABLE)]
    desk.handle(acd.CallerArrived("c1", 1), T0)  # offered to Kari
    desk.handle(acd.AgentAnswered("c1", 7), T0)
    assert desk.availability(7) is Availability.AVAILABLE  # on a call: still available
    desk.handle(acd.AgentPaused(7), T0)
    assert desk.view().agent(7).state is AgentState.ON_CALL  # type: ignore[union-attr]
    assert desk.availability(7) is Availability.PAUSED
    desk.handle(acd.AgentResumed(7), T0)
    assert desk.availability(7) is Availability.AVAILABLE
    desk.handle(acd.AgentLoggedOut(7), T0)
    assert desk.availability(7) is Availability.LOGGED_OUT


class FakeLogStore(FakeStore):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, int | None, str | None, datetime]] = []
        self.refuse = False

    async def log_agent_state(self, agent_id: int, state: str, at: datetime) -> None:
        if self.refuse:
            raise RuntimeError("FOREIGN KEY constraint failed")
        self.log.append(("state", agent_id, state, at))

    async def close_agent_log(self, at: datetime) -> None:
        self.log.append(("close", None, None, at))


async def test_the_log_never_goes_back_in_time_and_a_refused_write_is_logged() -> None:
    store = FakeLogStore()
    log = AgentLog(store)
    await log.changed(1, Availability.AVAILABLE, T0 + timedelta(seconds=2))
    await log.changed(1, Availability.PAUSED, T0 + timedelta(seconds=1))  # Asterisk's clock
    store.refuse = True
    with capture_logs() as logs:
        await log.changed(1, Availability.LOGGED_OUT, T0 + timedelta(seconds=3))
    assert [e["event"] for e in logs] == ["agent_log.write_failed"]
    await log.close(T0 + timedelta(seconds=4))
    assert store.log == [
        ("state", 1, "available", T0 + timedelta(seconds=2)),
        ("state", 1, "paused", T0 + timedelta(seconds=2)),
        ("close", None, None, T0 + timedelta(seconds=4)),
    ]


NO_WRAP_UP = replace(ACME, rules=CustomerRules(wrap_up_s=0))


class Service:
    """The call shell over fakes, with its availability log."""

    def __init__(self, tmp_path: Path, agents: tuple[Agent, ...]) -> None:
        self.ari, self.store = FakeAri(), FakeLogStore()
        directory = Directory((NO_WRAP_UP,), agents)
        self.desk = acd.Desk(directory, T0)
        self.log = AgentLog(self.store)
        self.dispatcher = EventDispatcher(lambda e: self.calls.handle(e))
        self.calls = CallService(
            ari=self.ari,
            store=self.store,
            directory=directory,
            desk=self.desk,
            clock=HarnessClock(T0),
            bind=self.dispatcher.bind,
            unbind=self.dispatcher.unbind,
            dispatch=self.dispatcher.dispatch,
            media=MediaFlows(
                self.ari, self.store, recording_spool=tmp_path, messages_dir=tmp_path / "m"
            ),
            agent_log=self.log,
        )

    def states(self) -> list[tuple[int | None, str | None]]:
        return [(agent, state) for kind, agent, state, _ in self.store.log if kind == "state"]


async def test_logins_pauses_and_calls_reach_the_log_as_the_desk_applies_them(
    tmp_path: Path,
) -> None:
    kari = Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True)
    ola = Agent(8, "Ola", "agent2", frozenset({1}))
    s = Service(tmp_path, (kari, ola))
    await s.log.sync(s.desk.availabilities(), T0)  # the service starts
    assert s.states() == [(7, "available"), (8, "logged_out")]

    await s.calls.agent_event(acd.AgentLoggedIn(8), T0 + timedelta(seconds=1))
    await s.calls.agent_event(acd.AgentPaused(8), T0 + timedelta(seconds=2))
    # Kari takes a call: offered, on call, wrap-up are all "available", no row.
    s.dispatcher.dispatch(event("StasisStart", 3, channel=caller(), args=["inbound", "4721000001"]))
    await s.dispatcher.drain()
    s.dispatcher.dispatch(event("StasisStart", 4, channel={"id": "c1-a1"}, args=["agent", "c1"]))
    await s.dispatcher.drain()
    assert s.desk.view().agent(7).state is AgentState.ON_CALL  # type: ignore[union-attr]
    # She asks for a pause while on the call: the desk offers her nothing more from
    # now, so she counts as paused from now; the call's end changes nothing.
    await s.calls.agent_event(acd.AgentPaused(7), T0 + timedelta(seconds=5))
    assert s.store.log[-1] == ("state", 7, "paused", T0 + timedelta(seconds=5))
    s.dispatcher.dispatch(event("ChannelDestroyed", 6, channel={"id": "c1"}, cause=16))
    await s.dispatcher.drain()
    assert s.desk.view().agent(7).state is AgentState.PAUSED  # type: ignore[union-attr]
    assert s.states() == [
        (7, "available"),
        (8, "logged_out"),
        (8, "available"),
        (8, "paused"),
        (7, "paused"),
    ]
    # A reload that retires Ola (no command says so) is caught by the sync.
    await s.calls.reload(Directory((NO_WRAP_UP,), (kari,)))
    assert s.states()[-1] == (8, "logged_out")

"""The desk's rules, with simulated time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from televikar_pbx.domain import acd
from televikar_pbx.domain.acd import (
    AgentAnswered,
    AgentHungUp,
    AgentState,
    CallerArrived,
    CallerHungUp,
    CallState,
    CancelOffer,
    CloseCall,
    ConnectCall,
    CustomerRules,
    Desk,
    HangUpAgent,
    HangUpCaller,
    IllegalEvent,
    OfferFailed,
    Outcome,
    RingAgent,
)

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_caller_is_offered_to_an_idle_agent_who_serves_the_customer() -> None:
    desk = Desk()
    desk.add_agent(1, [10], at(0))
    desk.add_agent(2, [20], at(0))
    assert desk.handle(CallerArrived("c1", 20), at(1)) == [RingAgent("c1", 2)]
    assert desk.calls["c1"].state is CallState.OFFERED
    assert desk.agents[2].state is AgentState.OFFERED
    assert desk.agents[1].state is AgentState.IDLE


def test_agent_idle_longest_gets_the_call() -> None:
    desk = Desk()
    desk.add_agent(1, [10], at(5))
    desk.add_agent(2, [10], at(1))
    desk.add_agent(3, [10], at(3))
    assert desk.handle(CallerArrived("c1", 10), at(6)) == [RingAgent("c1", 2)]
    assert desk.handle(CallerArrived("c2", 10), at(6)) == [RingAgent("c2", 3)]


def test_answer_connects_and_caller_hang_up_ends_both_legs() -> None:
    desk = Desk()
    desk.add_agent(1, [10], at(0))
    desk.handle(CallerArrived("c1", 10), at(1))
    assert desk.handle(AgentAnswered("c1", 1), at(3)) == [ConnectCall("c1", 1)]
    assert desk.agents[1].state is AgentState.ON_CALL
    assert desk.handle(CallerHungUp("c1"), at(6)) == [
        HangUpAgent("c1", 1),
        CloseCall("c1", Outcome.ANSWERED),
    ]
    assert "c1" not in desk.calls
    assert desk.agents[1].state is AgentState.IDLE
    assert desk.agents[1].idle_since == at(6)


def test_agent_hang_up_ends_the_caller_leg() -> None:
    desk = Desk()
    desk.add_agent(1, [10], at(0))
    desk.handle(CallerArrived("c1", 10), at(1))
    desk.handle(AgentAnswered("c1", 1), at(3))
    assert desk.handle(AgentHungUp("c1", 1), at(9)) == [
        HangUpCaller("c1"),
        CloseCall("c1", Outcome.ANSWERED),
    ]


def test_caller_hang_up_while_ringing_cancels_the_offer() -> None:
    desk = Desk()
    desk.add_agent(1, [10], at(0))
    desk.handle(CallerArrived("c1", 10), at(1))
    assert desk.handle(CallerHungUp("c1"), at(4)) == [
        CancelOffer("c1", 1),
        CloseCall("c1", Outcome.ABANDONED),
    ]
    assert desk.agents[1].state is AgentState.IDLE


def test_failed_offer_goes_to_the_next_agent() -> None:
    desk = Desk()
    desk.add_agent(1, [10], at(0))
    desk.add_agent(2, [10], at(1))
    desk.handle(CallerArrived("c1", 10), at(2))
    assert desk.handle(OfferFailed("c1", 1, "no answer"), at(17)) == [RingAgent("c1", 2)]
    assert desk.agents[1].state is AgentState.IDLE


def test_waiting_caller_is_offered_when_an_agent_frees_up() -> None:
    desk = Desk()
    desk.add_agent(1, [10], at(0))
    desk.handle(CallerArrived("c1", 10), at(1))
    assert desk.handle(CallerArrived("c2", 10), at(2)) == []
    assert desk.calls["c2"].state is CallState.QUEUED
    desk.handle(AgentAnswered("c1", 1), at(3))
    commands = desk.handle(CallerHungUp("c1"), at(10))
    assert commands[-1] == RingAgent("c2", 1)


def test_freed_agent_takes_the_caller_closest_to_breaching_its_target() -> None:
    # Customer 10's callers tolerate 12 s; customer 20's only 4 s. The caller of 20 has
    # waited less in absolute terms but is closer to its own threshold.
    desk = Desk({10: CustomerRules(12.0), 20: CustomerRules(4.0)})
    desk.add_agent(1, [10, 20], at(0))
    desk.handle(CallerArrived("busy", 10), at(0))
    desk.handle(AgentAnswered("busy", 1), at(0))
    desk.handle(CallerArrived("a", 10), at(1))  # will have waited 9 s: 9/12 = 0.75
    desk.handle(CallerArrived("b", 20), at(6))  # will have waited 4 s: 4/4 = 1.0
    commands = desk.handle(CallerHungUp("busy"), at(10))
    assert commands[-1] == RingAgent("b", 1)


def test_illegal_event_raises_and_leaves_state_unchanged() -> None:
    desk = Desk()
    desk.add_agent(1, [10], at(0))
    desk.handle(CallerArrived("c1", 10), at(1))
    before = (desk.calls["c1"].state, desk.agents[1].state)
    with pytest.raises(IllegalEvent):
        desk.handle(AgentHungUp("c1", 1), at(2))  # not connected yet
    with pytest.raises(IllegalEvent):
        desk.handle(AgentAnswered("c1", 2), at(2))  # not this agent's offer
    with pytest.raises(IllegalEvent):
        desk.handle(CallerArrived("c1", 10), at(2))  # twice
    with pytest.raises(IllegalEvent):
        desk.handle(CallerHungUp("nope"), at(2))
    assert (desk.calls["c1"].state, desk.agents[1].state) == before


def test_transition_table_covers_every_call_state() -> None:
    assert set(acd.CALL_TRANSITIONS) == set(CallState)

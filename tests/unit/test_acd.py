"""The desk's rules, with simulated time."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from televikar_pbx.domain import acd
from televikar_pbx.domain.acd import (
    AgentAnswered,
    AgentHungUp,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentResumed,
    AgentState,
    AgentStateChanged,
    Announce,
    AnnouncementDone,
    CallerArrived,
    CallerHungUp,
    CallState,
    CancelOffer,
    CaptureMessage,
    CloseCall,
    ConnectCall,
    Desk,
    HangUpAgent,
    HangUpCaller,
    IllegalEvent,
    MessageRecorded,
    OfferFailed,
    RingAgent,
    StartWaiting,
    Tick,
)
from televikar_pbx.domain.calendar import Agreement, Booking, Calendar, DateException, OpeningHours
from televikar_pbx.domain.directory import (
    Agent,
    ClosedAction,
    Customer,
    CustomerRules,
    Directory,
    HoldStyle,
    OutsidePolicy,
)
from televikar_pbx.domain.outcomes import Outcome

# A Friday morning in Oslo (09:00 local = 08:00 UTC in November).
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ALWAYS = Calendar(agreement=Agreement(date(2026, 1, 1)))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def customer(cid: int, rules: CustomerRules | None = None, calendar: Calendar = ALWAYS) -> Customer:
    return Customer(cid, f"C{cid}", f"C{cid}", rules=rules or CustomerRules(), calendar=calendar)


def agent(aid: int, *customers: int, logged_in: bool = True, **priorities: int) -> Agent:
    return Agent(
        aid,
        f"A{aid}",
        f"agent{aid}",
        frozenset(customers),
        {int(k[1:]): v for k, v in priorities.items()},
        logged_in=logged_in,
    )


def desk(customers: list[Customer], agents: list[Agent], now: datetime = T0) -> Desk:
    return Desk(Directory(tuple(customers), tuple(agents)), now, ring_timeout_s=15)


def rings(commands: list[acd.Command]) -> list[tuple[str, int]]:
    return [(c.call_id, c.agent_id) for c in commands if isinstance(c, RingAgent)]


def closes(commands: list[acd.Command]) -> list[tuple[str, Outcome]]:
    return [(c.call_id, c.outcome) for c in commands if isinstance(c, CloseCall)]


# --- routing ---------------------------------------------------------------------------


def test_caller_waits_ringing_and_is_offered_to_an_agent_who_serves_the_customer() -> None:
    d = desk([customer(10), customer(20)], [agent(1, 10), agent(2, 20)])
    commands = d.handle(CallerArrived("c1", 20), at(1))
    assert commands[0] == StartWaiting("c1", HoldStyle.RINGING, None)
    assert rings(commands) == [("c1", 2)]
    assert d.calls["c1"].state is CallState.OFFERED
    assert d.agents[2].state is AgentState.OFFERED
    assert d.agents[1].state is AgentState.IDLE


def test_agent_idle_longest_gets_the_call() -> None:
    d = desk([customer(10)], [agent(1, 10), agent(2, 10), agent(3, 10)])
    d.agents[1].idle_since, d.agents[2].idle_since, d.agents[3].idle_since = at(5), at(1), at(3)
    assert rings(d.handle(CallerArrived("c1", 10), at(6))) == [("c1", 2)]
    assert rings(d.handle(CallerArrived("c2", 10), at(6))) == [("c2", 3)]


def test_priority_prefers_first_choice_agents() -> None:
    d = desk([customer(10)], [agent(1, 10, c10=1), agent(2, 10, c10=0)])
    d.agents[1].idle_since = at(-100)  # idle much longer, but a backup for customer 10
    assert rings(d.handle(CallerArrived("c1", 10), at(1))) == [("c1", 2)]


def test_freed_agent_takes_the_caller_closest_to_breaching_its_target() -> None:
    # Customer 10's callers tolerate 12 s; customer 20's only 4 s. The caller of 20 has
    # waited less in absolute terms but is closer to its own threshold.
    d = desk(
        [customer(10), customer(20, CustomerRules(answer_target_s=4.0, wrap_up_s=0))],
        [agent(1, 10, 20)],
    )
    d.handle(CallerArrived("busy", 20), at(0))
    d.handle(AgentAnswered("busy", 1), at(0))
    d.handle(CallerArrived("a", 10), at(1))  # will have waited 9 s: 9/12 = 0.75
    d.handle(CallerArrived("b", 20), at(6))  # will have waited 4 s: 4/4 = 1.0
    assert rings(d.handle(CallerHungUp("busy"), at(10))) == [("b", 1)]


def test_a_caller_held_while_no_desk_was_connected_keeps_its_place_from_when_it_rang() -> None:
    # A standby taking over: "early" rang at 0 s, but the new desk heard of it only at
    # 7 s, after "late", who rang at 5 s and reached the desk at once.
    d = desk([customer(10, CustomerRules(max_wait_s=30, wrap_up_s=0))], [agent(1, 10)])
    d.handle(CallerArrived("busy", 10), at(4))
    d.handle(AgentAnswered("busy", 1), at(4))
    d.handle(CallerArrived("late", 10), at(5))
    assert d.handle(CallerArrived("early", 10, rang_at=at(0)), at(7)) == [
        StartWaiting("early", HoldStyle.RINGING, None)
    ]
    assert d.calls["early"].arrived_at == at(0)
    assert rings(d.handle(CallerHungUp("busy"), at(9))) == [("early", 1)]
    # Its maximum wait counts from when it rang too.
    d.handle(OfferFailed("early", 1, "no answer"), at(10))
    assert d.next_deadline() == at(30)


def test_a_held_caller_meets_the_rules_of_the_moment_it_rang() -> None:
    # Open until 09:00:05 UTC (10:00:05 local) that day; the caller rang at 09:00:03 and
    # reached the desk at 09:00:08: it rang while open, so it is queued, not sent away.
    calendar = Calendar(
        hours=(OpeningHours(4, time(0, 0), time(10, 0, 5)),),
        agreement=Agreement(date(2026, 1, 1)),
    )
    d = desk([customer(10, calendar=calendar)], [agent(1, 10)])
    rang = at(3600 + 3)
    assert d.handle(CallerArrived("c1", 10, rang_at=rang), at(3600 + 8))[0] == StartWaiting(
        "c1", HoldStyle.RINGING, None
    )
    late = d.handle(CallerArrived("c2", 10), at(3600 + 8))
    assert late[0] != StartWaiting("c2", HoldStyle.RINGING, None)


def test_a_rang_at_after_the_event_is_ignored() -> None:
    d = desk([customer(10)], [agent(1, 10)])
    d.handle(CallerArrived("c1", 10, rang_at=at(9)), at(5))
    assert d.calls["c1"].arrived_at == at(5)


def test_no_agent_is_offered_two_calls_and_callers_wait_their_turn() -> None:
    d = desk([customer(10)], [agent(1, 10)])
    d.handle(CallerArrived("c1", 10), at(1))
    assert rings(d.handle(CallerArrived("c2", 10), at(2))) == []
    assert d.calls["c2"].state is CallState.QUEUED


# --- answer, hang-ups, wrap-up ---------------------------------------------------------


def test_answer_connects_and_caller_hang_up_ends_both_legs_then_wrap_up() -> None:
    d = desk([customer(10)], [agent(1, 10)])
    d.handle(CallerArrived("c1", 10), at(1))
    commands = d.handle(AgentAnswered("c1", 1), at(3))
    assert ConnectCall("c1", 1) in commands
    assert d.agents[1].state is AgentState.ON_CALL
    commands = d.handle(CallerHungUp("c1"), at(6))
    assert HangUpAgent("c1", 1) in commands
    assert CloseCall("c1", Outcome.ANSWERED, at(6)) in commands
    assert "c1" not in d.calls
    assert d.agents[1].state is AgentState.WRAP_UP
    assert d.next_deadline() == at(16)  # default wrap-up 10 s


def test_wrap_up_keeps_the_agent_from_the_next_caller_until_it_ends() -> None:
    d = desk([customer(10, CustomerRules(wrap_up_s=5))], [agent(1, 10)])
    d.handle(CallerArrived("c1", 10), at(0))
    d.handle(AgentAnswered("c1", 1), at(1))
    d.handle(AgentHungUp("c1", 1), at(10))
    assert rings(d.handle(CallerArrived("c2", 10), at(11))) == []
    assert rings(d.handle(Tick(), at(14.9))) == []
    commands = d.handle(Tick(), at(15))
    assert AgentStateChanged(1, AgentState.IDLE, "wrap_up_over") in commands
    assert rings(commands) == [("c2", 1)]


def test_agent_hang_up_ends_the_caller_leg() -> None:
    d = desk([customer(10)], [agent(1, 10)])
    d.handle(CallerArrived("c1", 10), at(1))
    d.handle(AgentAnswered("c1", 1), at(3))
    commands = d.handle(AgentHungUp("c1", 1), at(9))
    assert HangUpCaller("c1") in commands
    assert closes(commands) == [("c1", Outcome.ANSWERED)]


def test_caller_hang_up_while_ringing_cancels_the_offer_and_is_abandoned() -> None:
    d = desk([customer(10)], [agent(1, 10)])
    d.handle(CallerArrived("c1", 10), at(1))
    commands = d.handle(CallerHungUp("c1"), at(4))
    assert CancelOffer("c1", 1) in commands
    assert CloseCall("c1", Outcome.ABANDONED, at(4)) in commands
    assert d.agents[1].state is AgentState.IDLE
    assert d.agents[1].misses == 0


# --- misses ----------------------------------------------------------------------------


def test_failed_offer_goes_to_the_next_agent_and_counts_a_miss() -> None:
    d = desk([customer(10)], [agent(1, 10), agent(2, 10)])
    d.agents[2].idle_since = at(1)
    d.handle(CallerArrived("c1", 10), at(2))
    assert rings(d.handle(OfferFailed("c1", 1, "no answer"), at(17))) == [("c1", 2)]
    assert d.agents[1].state is AgentState.IDLE
    assert d.agents[1].misses == 1


def test_three_misses_in_a_row_pause_the_agent() -> None:
    d = desk([customer(10)], [agent(1, 10), agent(2, 10)])
    d.handle(CallerArrived("c0", 10), at(0))  # keeps agent 1 on a call for a while
    d.handle(AgentAnswered("c0", 1), at(0))
    d.handle(CallerArrived("c1", 10), at(1))  # rings agent 2
    for n in range(2):
        d.handle(OfferFailed("c1", 2, "no answer"), at(16 + 15 * n))  # back to agent 2
        assert d.agents[2].state is AgentState.OFFERED
    commands = d.handle(OfferFailed("c1", 2, "no answer"), at(46))
    assert AgentStateChanged(2, AgentState.PAUSED, "3 missed offers in a row") in commands
    assert d.agents[2].state is AgentState.PAUSED
    assert d.calls["c1"].state is CallState.QUEUED  # agent 1 is still on c0


def test_an_answer_resets_the_miss_count() -> None:
    d = desk([customer(10)], [agent(1, 10)])
    d.handle(CallerArrived("c1", 10), at(0))
    d.handle(OfferFailed("c1", 1, "busy"), at(1))
    d.handle(OfferFailed("c1", 1, "busy"), at(2))
    d.handle(AgentAnswered("c1", 1), at(3))
    assert d.agents[1].misses == 0


# --- when nobody can answer ------------------------------------------------------------


def test_no_agent_logged_in_goes_to_message_capture_at_once() -> None:
    d = desk([customer(10)], [agent(1, 10, logged_in=False)])
    commands = d.handle(CallerArrived("c1", 10), at(0))
    assert commands == [CaptureMessage("c1", "no_agent", None)]
    assert d.calls["c1"].state is CallState.CAPTURING


def test_paused_agents_do_not_count_as_staffing() -> None:
    d = desk([customer(10)], [agent(1, 10)])
    d.handle(AgentPaused(1), at(0))
    assert d.handle(CallerArrived("c1", 10), at(1))[0] == CaptureMessage("c1", "no_agent", None)


def test_waiting_callers_go_to_message_capture_when_the_last_agent_leaves() -> None:
    d = desk([customer(10)], [agent(1, 10), agent(2, 10)])
    d.handle(CallerArrived("c0", 10), at(0))
    d.handle(AgentAnswered("c0", 1), at(0))
    d.handle(AgentLoggedOut(1), at(0))  # takes effect after the call
    d.handle(CallerArrived("c1", 10), at(1))  # rings agent 2
    d.handle(AgentPaused(2), at(2))  # pending while offered
    commands = d.handle(OfferFailed("c1", 2, "no answer"), at(16))
    assert CaptureMessage("c1", "no_agent", None) in commands
    assert d.agents[2].state is AgentState.PAUSED


def test_max_wait_takes_the_caller_to_message_capture_and_cancels_the_ringing_offer() -> None:
    d = desk([customer(10, CustomerRules(max_wait_s=45))], [agent(1, 10)])
    d.handle(CallerArrived("c1", 10), at(0))
    assert d.next_deadline() == at(45)
    assert d.handle(Tick(), at(44.9)) == []
    commands = d.handle(Tick(), at(45))
    assert CancelOffer("c1", 1) in commands
    assert CaptureMessage("c1", "max_wait", None) in commands
    assert d.agents[1].misses == 0  # withdrawn, not missed


def test_message_of_one_second_or_more_is_a_message_shorter_is_no_message() -> None:
    d = desk([customer(10)], [])
    d.handle(CallerArrived("c1", 10), at(0))
    d.handle(CallerArrived("c2", 10), at(0))
    d.handle(acd.RecordingStarted("c1"), at(5))
    d.handle(CallerHungUp("c1"), at(9))  # the recording ends with the hang-up
    assert d.handle(MessageRecorded("c1", 5.2), at(9.1)) == [
        CloseCall("c1", Outcome.MESSAGE, at(9))
    ]
    commands = d.handle(MessageRecorded("c2", 0.6), at(8))  # e.g. # pressed at once
    assert commands == [HangUpCaller("c2"), CloseCall("c2", Outcome.NO_MESSAGE, at(8))]


def test_customers_own_prompt_is_used() -> None:
    d = desk([customer(10, CustomerRules(message_prompt="custom/acme"))], [])
    assert d.handle(CallerArrived("c1", 10), at(0)) == [
        CaptureMessage("c1", "no_agent", "custom/acme")
    ]


# --- which customer, and may we answer -------------------------------------------------

OFFICE_HOURS = tuple(OpeningHours(day, time(8), time(16)) for day in range(5))


def test_unknown_number_hears_an_announcement_and_ends_unknown_number() -> None:
    d = desk([customer(10)], [agent(1, 10)])
    assert d.handle(CallerArrived("c1", None), at(0)) == [Announce("c1", "unknown-number")]
    assert d.handle(AnnouncementDone("c1"), at(3)) == [HangUpCaller("c1")]
    assert closes(d.handle(CallerHungUp("c1"), at(3.1))) == [("c1", Outcome.UNKNOWN_NUMBER)]


def test_outside_service_hours_takes_a_message_or_plays_the_closed_announcement() -> None:
    hours = Calendar(agreement=Agreement(date(2026, 1, 1)), hours=OFFICE_HOURS)
    evening = datetime(2026, 11, 27, 17, 30, tzinfo=UTC)  # 18:30 in Oslo
    d = desk(
        [
            customer(10, calendar=hours),
            customer(20, CustomerRules(closed_action=ClosedAction.ANNOUNCEMENT), hours),
        ],
        [agent(1, 10, 20)],
        evening,
    )
    assert d.handle(CallerArrived("c1", 10), evening) == [CaptureMessage("c1", "closed", None)]
    assert d.handle(CallerArrived("c2", 20), evening) == [Announce("c2", "closed")]
    d.handle(AnnouncementDone("c2"), evening)
    assert closes(d.handle(CallerHungUp("c2"), evening)) == [("c2", Outcome.REJECTED)]


def test_holiday_exception_closes_a_weekday() -> None:
    cal = Calendar(
        agreement=Agreement(date(2026, 1, 1)),
        hours=OFFICE_HOURS,
        exceptions=(DateException(date(2026, 12, 24)),),
    )
    christmas_eve_morning = datetime(2026, 12, 24, 9, 0, tzinfo=UTC)  # a Thursday
    d = desk([customer(10, calendar=cal)], [agent(1, 10)], christmas_eve_morning)
    commands = d.handle(CallerArrived("c1", 10), christmas_eve_morning)
    assert commands == [CaptureMessage("c1", "closed", None)]


def test_outside_agreement_follows_the_customers_policy() -> None:
    ended = Calendar(agreement=Agreement(date(2025, 1, 1), date(2025, 12, 31)))
    booked = Calendar(
        bookings=(Booking(at(-3600), at(3600)),),
    )
    d = desk(
        [
            customer(10, calendar=ended),
            customer(20, CustomerRules(outside_policy=OutsidePolicy.REJECT), ended),
            customer(30, calendar=booked),
        ],
        [agent(1, 10, 20, 30)],
    )
    assert d.handle(CallerArrived("c1", 10), at(0)) == [
        CaptureMessage("c1", "outside_agreement", None)
    ]
    assert d.handle(CallerArrived("c2", 20), at(0)) == [Announce("c2", "rejected")]
    assert rings(d.handle(CallerArrived("c3", 30), at(0))) == [("c3", 1)]  # booked: answered


# --- agents coming and going -----------------------------------------------------------


def test_login_makes_an_agent_available_and_routes_waiting_callers() -> None:
    d = desk([customer(10)], [agent(1, 10), agent(2, 10, logged_in=False)])
    d.handle(CallerArrived("c0", 10), at(0))  # agent 1 is offered c0
    d.handle(CallerArrived("c1", 10), at(1))
    commands = d.handle(AgentLoggedIn(2), at(2))
    assert AgentStateChanged(2, AgentState.IDLE, "AgentLoggedIn") in commands
    assert rings(commands) == [("c1", 2)]


def test_pause_while_on_call_takes_effect_after_the_call() -> None:
    d = desk([customer(10, CustomerRules(wrap_up_s=0))], [agent(1, 10)])
    d.handle(CallerArrived("c1", 10), at(0))
    d.handle(AgentAnswered("c1", 1), at(1))
    assert d.handle(AgentPaused(1), at(2)) == []
    assert d.agents[1].state is AgentState.ON_CALL
    d.handle(CallerHungUp("c1"), at(5))
    assert d.agents[1].state is AgentState.PAUSED
    d.handle(AgentResumed(1), at(6))
    assert d.agents[1].state is AgentState.IDLE


# --- illegal events --------------------------------------------------------------------


def test_illegal_event_raises_and_leaves_state_unchanged() -> None:
    d = desk([customer(10)], [agent(1, 10), agent(2, 10, logged_in=False)])
    d.handle(CallerArrived("c1", 10), at(1))
    before = (d.calls["c1"].state, d.agents[1].state, d.agents[2].state)
    with pytest.raises(IllegalEvent):
        d.handle(AgentHungUp("c1", 1), at(2))  # not connected yet
    with pytest.raises(IllegalEvent):
        d.handle(AgentAnswered("c1", 2), at(2))  # not this agent's offer
    with pytest.raises(IllegalEvent):
        d.handle(CallerArrived("c1", 10), at(2))  # twice
    with pytest.raises(IllegalEvent):
        d.handle(CallerHungUp("nope"), at(2))
    with pytest.raises(IllegalEvent):
        d.handle(MessageRecorded("c1", 3.0), at(2))  # not capturing
    with pytest.raises(IllegalEvent):
        d.handle(AgentResumed(2), at(2))  # logged out: log in instead
    with pytest.raises(IllegalEvent):
        d.handle(AgentPaused(99), at(2))
    assert (d.calls["c1"].state, d.agents[1].state, d.agents[2].state) == before


def test_transition_tables_cover_every_state() -> None:
    assert set(acd.CALL_TRANSITIONS) == set(CallState)
    assert set(acd.AGENT_TRANSITIONS) == set(AgentState)


def test_unreachable_phone_gets_no_offers_and_does_not_staff_the_customer() -> None:
    d = desk([customer(10)], [agent(1, 10), agent(2, 10)])
    d.handle(acd.PhoneUnreachable(1), at(0))
    assert rings(d.handle(CallerArrived("c1", 10), at(1))) == [("c1", 2)]
    d.handle(acd.PhoneUnreachable(2), at(2))
    assert d.handle(CallerArrived("c2", 10), at(3)) == [CaptureMessage("c2", "no_agent", None)]
    d.handle(acd.PhoneReachable(1), at(4))
    assert rings(d.handle(CallerArrived("c3", 10), at(5))) == [("c3", 1)]


# --- adopting calls after a restart or reconnect ---------------------------------------


def test_an_adopted_waiting_caller_keeps_its_place_and_maximum_wait() -> None:
    d = desk([customer(1, CustomerRules(max_wait_s=30, wrap_up_s=0))], [agent(1, 1)])
    # Found in Asterisk after our restart: agent 1 talking (c0), c1 waiting since -20 s.
    d.handle(acd.CallAdopted("c0", 1, at(-60), CallState.CONNECTED, 1), at(0))
    commands = d.handle(acd.CallAdopted("c1", 1, at(-20), CallState.QUEUED), at(0))
    assert commands == []
    assert d.calls["c1"].arrived_at == at(-20)
    assert d.next_deadline() == at(10)
    assert rings(d.handle(CallerHungUp("c0"), at(1))) == [("c1", 1)]
    # The maximum wait counts from the real arrival.
    d.handle(OfferFailed("c1", 1, "no answer"), at(5))
    capture = d.handle(Tick(), at(10))
    assert [c for c in capture if isinstance(c, CaptureMessage)] == [
        CaptureMessage("c1", "max_wait")
    ]


def test_an_adopted_waiting_caller_with_nobody_to_answer_leaves_a_message() -> None:
    d = desk([customer(1)], [agent(1, 1, logged_in=False)])
    commands = d.handle(acd.CallAdopted("c1", 1, at(-5), CallState.QUEUED), at(0))
    assert commands == [CaptureMessage("c1", "no_agent")]


def test_an_adopted_connected_call_keeps_its_agent_busy_until_it_ends() -> None:
    d = desk([customer(1, CustomerRules(wrap_up_s=0))], [agent(1, 1)])
    commands = d.handle(acd.CallAdopted("c1", 1, at(-60), CallState.CONNECTED, 1), at(0))
    assert commands == [AgentStateChanged(1, AgentState.ON_CALL, "adopted")]
    # A new caller is not offered to the busy agent.
    assert rings(d.handle(CallerArrived("c2", 1), at(1))) == []
    ended = d.handle(CallerHungUp("c1"), at(5))
    assert CloseCall("c1", Outcome.ANSWERED, at(5)) in ended
    assert HangUpAgent("c1", 1) in ended
    assert rings(ended) == [("c2", 1)]


def test_an_agent_logged_out_meanwhile_is_logged_out_after_the_adopted_call() -> None:
    d = desk([customer(1, CustomerRules(wrap_up_s=0))], [agent(1, 1, logged_in=False)])
    d.handle(acd.CallAdopted("c1", 1, at(-60), CallState.CONNECTED, 1), at(0))
    assert d.agents[1].state is AgentState.ON_CALL
    d.handle(CallerHungUp("c1"), at(5))
    assert d.agents[1].state is AgentState.LOGGED_OUT


def test_an_adopted_capture_ends_with_its_recording() -> None:
    d = desk([customer(1)], [agent(1, 1)])
    assert d.handle(acd.CallAdopted("c1", 1, at(-30), CallState.CAPTURING), at(0)) == []
    assert rings(d.handle(AgentResumed(1), at(0))) == []  # nothing to route
    ended = d.handle(MessageRecorded("c1", 4.0), at(3))
    assert CloseCall("c1", Outcome.MESSAGE, at(3)) in ended


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (acd.CallAdopted("c1", 1, T0, CallState.OFFERED, 1), "cannot be adopted as offered"),
        (acd.CallAdopted("c1", 9, T0, CallState.QUEUED), "unknown customer"),
        (acd.CallAdopted("c1", 1, T0, CallState.CONNECTED), "needs its agent"),
        (acd.CallAdopted("c1", 1, T0, CallState.QUEUED, 1), "needs its agent"),
        (acd.CallAdopted("c2", 1, T0, CallState.QUEUED), "already on the desk"),
        (acd.CallAdopted("c3", 1, T0, CallState.CONNECTED, 1), "already on call c2"),
    ],
)
def test_adopting_what_cannot_be_is_refused_and_changes_nothing(
    event: acd.CallAdopted, why: str
) -> None:
    d = desk([customer(1)], [agent(1, 1)])
    d.handle(acd.CallAdopted("c2", 1, T0, CallState.CONNECTED, 1), T0)
    before = (dict(d.calls), {k: (v.state, v.call_id) for k, v in d.agents.items()})
    with pytest.raises(IllegalEvent, match=why):
        d.handle(event, at(1))
    assert (dict(d.calls), {k: (v.state, v.call_id) for k, v in d.agents.items()}) == before


# --- the transition tables: everything they do not list is illegal ---------------------

# One instance of each event about a call on the desk (agent 1 where one is needed).
CALL_EVENTS: dict[type[acd.CallEvent], acd.CallEvent] = {
    OfferFailed: OfferFailed("c1", 1, "no answer"),
    AgentAnswered: AgentAnswered("c1", 1),
    CallerHungUp: CallerHungUp("c1"),
    AgentHungUp: AgentHungUp("c1", 1),
    acd.AgentLegGone: acd.AgentLegGone("c1", 1, 16, "Normal Clearing"),
    acd.RecordingStarted: acd.RecordingStarted("c1"),
    MessageRecorded: MessageRecorded("c1", 3.0),
    acd.AnnouncementDone: acd.AnnouncementDone("c1"),
}
AGENT_EVENTS: list[acd.AgentEvent | acd.PhoneEvent] = [
    AgentLoggedIn(1),
    AgentLoggedOut(1),
    AgentPaused(1),
    AgentResumed(1),
    acd.AgentPauseToggled(1),
    acd.PhoneReachable(1),
    acd.PhoneUnreachable(1),
]


def desk_with_call_in(state: CallState) -> Desk:
    """A desk whose call c1 is in ``state`` (agent 1 is its agent where it has one)."""
    d = desk([customer(1)], [agent(1, 1), agent(2, 1)])
    if state is CallState.QUEUED:  # both agents busy
        d.handle(acd.CallAdopted("c8", 1, T0, CallState.CONNECTED, 1), T0)
        d.handle(acd.CallAdopted("c9", 1, T0, CallState.CONNECTED, 2), T0)
        d.handle(CallerArrived("c1", 1), at(1))
    elif state is CallState.OFFERED:
        d.handle(AgentPaused(2), T0)
        d.handle(CallerArrived("c1", 1), at(1))
    elif state is CallState.CONNECTED:
        d.handle(acd.CallAdopted("c1", 1, T0, CallState.CONNECTED, 1), at(1))
    elif state in (CallState.CAPTURING, CallState.RECORDING):
        d.handle(acd.CallAdopted("c1", 1, T0, state), at(1))
    elif state is CallState.ANNOUNCING:
        d.handle(CallerArrived("c1", None), at(1))
    assert d.calls["c1"].state is state
    return d


def desk_with_agent_in(state: AgentState) -> Desk:
    """A desk whose agent 1 is in ``state``."""
    d = desk([customer(1, CustomerRules(wrap_up_s=10))], [agent(1, 1)])
    if state is AgentState.LOGGED_OUT:
        d.handle(AgentLoggedOut(1), T0)
    elif state is AgentState.PAUSED:
        d.handle(AgentPaused(1), T0)
    elif state is AgentState.OFFERED:
        d.handle(CallerArrived("c1", 1), T0)
    elif state is AgentState.ON_CALL:
        d.handle(acd.CallAdopted("c1", 1, T0, CallState.CONNECTED, 1), T0)
    elif state is AgentState.WRAP_UP:
        d.handle(acd.CallAdopted("c1", 1, T0, CallState.CONNECTED, 1), T0)
        d.handle(CallerHungUp("c1"), at(1))
    assert d.agents[1].state is state
    return d


def state_of(d: Desk) -> tuple[Any, ...]:
    return (copy.deepcopy(d.calls), copy.deepcopy(d.agents), d.next_deadline(), d.view())


@pytest.mark.parametrize("state", [s for s in CallState if s is not CallState.ENDED])
def test_every_call_event_the_table_does_not_list_is_illegal_and_changes_nothing(
    state: CallState,
) -> None:
    unlisted = [e for t, e in CALL_EVENTS.items() if t not in acd.CALL_TRANSITIONS[state]]
    assert unlisted or state is CallState.OFFERED  # a state that allows every event is odd
    for event in unlisted:
        d = desk_with_call_in(state)
        before = state_of(d)
        with pytest.raises(IllegalEvent):
            d.handle(event, at(2))
        assert state_of(d) == before, (state, event)


def test_an_ended_call_takes_no_event_at_all() -> None:
    assert acd.CALL_TRANSITIONS[CallState.ENDED] == {}
    d = desk_with_call_in(CallState.ANNOUNCING)
    d.handle(CallerHungUp("c1"), at(2))
    before = state_of(d)
    for event in CALL_EVENTS.values():
        with pytest.raises(IllegalEvent, match="unknown call"):
            d.handle(event, at(3))
    assert state_of(d) == before


def test_every_call_event_the_table_lists_is_handled() -> None:
    for state, row in acd.CALL_TRANSITIONS.items():
        assert set(row) <= set(CALL_EVENTS), state


@pytest.mark.parametrize("state", list(AgentState))
def test_every_agent_event_the_table_does_not_list_is_illegal_and_changes_nothing(
    state: AgentState,
) -> None:
    listed = acd.AGENT_TRANSITIONS[state]
    assert set(listed) <= {type(e) for e in AGENT_EVENTS}
    for event in [e for e in AGENT_EVENTS if type(e) not in listed]:
        d = desk_with_agent_in(state)
        before = state_of(d)
        with pytest.raises(IllegalEvent):
            d.handle(event, at(2))
        assert state_of(d) == before, (state, event)


def test_a_call_event_from_another_agent_is_illegal_and_changes_nothing() -> None:
    for state in (CallState.OFFERED, CallState.CONNECTED):
        d = desk_with_call_in(state)
        before = state_of(d)
        for event in (acd.AgentLegGone("c1", 2, 16), OfferFailed("c1", 2, "x")):
            if type(event) in acd.CALL_TRANSITIONS[state]:
                with pytest.raises(IllegalEvent, match="is with agent 1"):
                    d.handle(event, at(2))
        assert state_of(d) == before


# --- the facts the shell reports: agent leg gone, recording started, pause toggled -------


def test_an_agent_leg_gone_while_ringing_is_a_missed_offer_to_journal() -> None:
    d = desk([customer(1)], [agent(1, 1), agent(2, 1)])
    assert rings(d.handle(CallerArrived("c1", 1), at(0))) == [("c1", 1)]
    commands = d.handle(acd.AgentLegGone("c1", 1, 19, "No answer"), at(15))
    assert commands[0] == acd.OfferMissed("c1", 1, 19, "No answer")
    assert AgentStateChanged(1, AgentState.IDLE, "missed_offer") in commands
    assert rings(commands) == [("c1", 2)]
    assert d.agents[1].misses == 1


def test_an_offer_lost_on_our_side_is_journalled_but_no_miss() -> None:
    """Seen in the chaos test: while the ARI websocket was cut, offers died with it, and
    recovery reported their legs gone; counted as misses, three paused every agent."""
    d = desk([customer(1)], [agent(1, 1)])
    rings(d.handle(CallerArrived("c1", 1), at(0)))
    for n in range(4):  # more than MISSES_BEFORE_PAUSE
        gone = acd.AgentLegGone("c1", 1, None, "missed", ours=True)
        commands = d.handle(gone, at(1 + n))
        assert commands[0] == acd.OfferMissed("c1", 1, None, "missed")
        assert AgentStateChanged(1, AgentState.IDLE, "offer_lost") in commands
        assert rings(commands) == [("c1", 1)]  # offered again at once
        assert d.agents[1].misses == 0
    assert d.agents[1].state is AgentState.OFFERED


def test_an_agent_leg_gone_during_the_talk_is_the_agent_hanging_up() -> None:
    d = desk([customer(1, CustomerRules(wrap_up_s=0))], [agent(1, 1)])
    d.handle(acd.CallAdopted("c1", 1, T0, CallState.CONNECTED, 1), T0)
    commands = d.handle(acd.AgentLegGone("c1", 1, 16, "Normal Clearing"), at(30))
    assert commands == [
        acd.KeepHangupCause("c1", 16, "Normal Clearing"),
        HangUpCaller("c1"),
        AgentStateChanged(1, AgentState.IDLE, "call_ended"),
        CloseCall("c1", Outcome.ANSWERED, at(30)),
    ]
    assert d.agents[1].misses == 0


def test_the_leg_of_a_withdrawn_offer_ending_changes_nothing() -> None:
    d = desk([customer(1, CustomerRules(max_wait_s=45))], [agent(1, 1)])
    d.handle(CallerArrived("c1", 1), at(0))
    d.handle(Tick(), at(45))  # withdrawn: the caller goes to message capture
    before = state_of(d)
    assert d.handle(acd.AgentLegGone("c1", 1, 16), at(45.2)) == []
    assert state_of(d) == before
    assert d.agents[1].misses == 0


def test_a_caller_gone_during_the_prompt_leaves_no_message_at_once() -> None:
    d = desk([customer(1)], [])
    d.handle(CallerArrived("c1", 1), at(0))
    assert d.calls["c1"].state is CallState.CAPTURING
    assert d.handle(CallerHungUp("c1"), at(3)) == [CloseCall("c1", Outcome.NO_MESSAGE, at(3))]
    assert "c1" not in d.calls


def test_a_caller_gone_while_recording_waits_for_the_recording() -> None:
    d = desk([customer(1)], [])
    d.handle(CallerArrived("c1", 1), at(0))
    assert d.handle(acd.RecordingStarted("c1"), at(6)) == []
    assert d.calls["c1"].state is CallState.RECORDING
    assert d.handle(CallerHungUp("c1"), at(10)) == []
    assert d.handle(MessageRecorded("c1", 4.0), at(10.2)) == [
        CloseCall("c1", Outcome.MESSAGE, at(10))
    ]


def test_a_recording_not_reported_after_the_caller_left_is_asked_for() -> None:
    """Seen under load: the prompt ended as the caller hung up, the recording was started
    on the dying channel, and Asterisk never reported it finished. The call must not
    stay open: RECORDING_GRACE_S after the caller left, the desk asks for it, once."""
    d = desk([customer(1)], [])
    d.handle(CallerArrived("c1", 1), at(0))
    d.handle(acd.RecordingStarted("c1"), at(6))
    assert d.next_deadline() is None
    assert d.handle(CallerHungUp("c1"), at(10)) == []
    assert d.next_deadline() == at(10 + acd.RECORDING_GRACE_S)
    assert d.handle(acd.Tick(), at(10 + acd.RECORDING_GRACE_S - 0.1)) == []
    assert d.handle(acd.Tick(), at(10 + acd.RECORDING_GRACE_S)) == [acd.FinishRecording("c1")]
    assert d.next_deadline() is None  # asked once
    assert d.handle(acd.Tick(), at(20)) == []
    assert d.handle(MessageRecorded("c1", 0.0), at(20)) == [
        CloseCall("c1", Outcome.NO_MESSAGE, at(10))  # ended when the caller left
    ]
    assert "c1" not in d.calls


def test_a_prompt_or_recording_that_failed_ends_the_capture_without_a_message() -> None:
    d = desk([customer(1)], [])
    d.handle(CallerArrived("c1", 1), at(0))
    assert d.handle(MessageRecorded("c1", 0.0), at(1)) == [
        HangUpCaller("c1"),
        CloseCall("c1", Outcome.NO_MESSAGE, at(1)),
    ]


def test_an_adopted_recording_goes_on() -> None:
    d = desk([customer(1)], [])
    assert d.handle(acd.CallAdopted("c1", 1, T0, CallState.RECORDING), at(1)) == []
    assert d.handle(CallerHungUp("c1"), at(4)) == []
    assert closes(d.handle(MessageRecorded("c1", 3.5), at(4.1))) == [("c1", Outcome.MESSAGE)]


def test_pause_toggle_pauses_an_available_agent_and_resumes_a_paused_one() -> None:
    d = desk([customer(1)], [agent(1, 1)])
    assert d.handle(acd.AgentPauseToggled(1), at(1)) == [
        acd.PauseToggled(1, True),
        AgentStateChanged(1, AgentState.PAUSED, "AgentPaused"),
    ]
    assert d.handle(acd.AgentPauseToggled(1), at(2)) == [
        acd.PauseToggled(1, False),
        AgentStateChanged(1, AgentState.IDLE, "AgentResumed"),
    ]
    assert d.agents[1].idle_since == at(2)


def test_pause_toggle_during_a_call_takes_effect_after_it_and_toggles_back() -> None:
    d = desk([customer(1, CustomerRules(wrap_up_s=0))], [agent(1, 1)])
    d.handle(acd.CallAdopted("c1", 1, T0, CallState.CONNECTED, 1), T0)
    assert d.handle(acd.AgentPauseToggled(1), at(1)) == [acd.PauseToggled(1, True)]
    assert d.agents[1].state is AgentState.ON_CALL
    assert d.handle(acd.AgentPauseToggled(1), at(2)) == [acd.PauseToggled(1, False)]
    assert d.handle(acd.AgentPauseToggled(1), at(3)) == [acd.PauseToggled(1, True)]
    d.handle(CallerHungUp("c1"), at(5))
    assert d.agents[1].state is AgentState.PAUSED


def test_pause_toggle_of_a_logged_out_agent_changes_nothing() -> None:
    d = desk([customer(1)], [agent(1, 1, logged_in=False)])
    before = state_of(d)
    assert d.handle(acd.AgentPauseToggled(1), at(1)) == [acd.PauseToggled(1, None)]
    assert state_of(d) == before


def test_the_view_is_a_frozen_copy() -> None:
    d = desk([customer(1)], [agent(1, 1), agent(2, 1, logged_in=False)])
    d.handle(CallerArrived("c1", 1), at(0))
    view = d.view()
    assert view.agent(1) == acd.AgentView(1, AgentState.OFFERED, "c1", 0, True)
    assert view.agent(2) == acd.AgentView(2, AgentState.LOGGED_OUT, None, 0, True)
    assert view.agent(3) is None
    assert view.calls == (acd.CallView("c1", 1, at(0), CallState.OFFERED, 1),)
    assert view.calls[0].waiting
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.agents[0].state = AgentState.IDLE  # type: ignore[misc]
    d.handle(CallerHungUp("c1"), at(2))
    assert view.agent(1) == acd.AgentView(1, AgentState.OFFERED, "c1", 0, True)
    assert d.view().calls == ()

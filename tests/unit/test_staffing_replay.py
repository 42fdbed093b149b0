"""``staffing replay``'s core: a recorded day through the desk with a simulated clock.

The hand-made day (one agent, so every instant follows from the rules) is worked out
below; replaying it with one agent must give its figures exactly.

    #  arrives  what the caller did                          counts as
    1     0 s   offered at 0, answered at 2, talks 60 s      within 12 s; wrap-up to 72
    2    10 s   waits; maximum wait 45 s: message capture    message (30 s recording)
                at 55, hangs up at 85
    3    20 s   hangs up after 8 s                           short abandon
    4    30 s   hangs up after 30 s                          lost
    5    65 s   offered at 72 (wrap-up over), answered 74,   within 12 s (9 s); wrap-up
                talks 30 s                                   to 114
    6   100 s   offered at 114, answered 116, talks 20 s     within 20 s (16 s)
    7   200 s   offered at 200, answered 202, talks 10 s     within 12 s

Offered 7, answered 4, short abandons 1, lost 1, messages 1: SL12 3/6 = 50 %, SL20 4/6,
lost 1/7.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from televikar_pbx.domain.calendar import Agreement, Calendar
from televikar_pbx.domain.directory import Agent, Customer, CustomerRules
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts, PeriodFigures
from televikar_pbx.domain.staffing.replay import (
    Figures,
    ReplayOptions,
    Shift,
    Staff,
    agents_for_all,
    figures,
    replay,
)
from televikar_pbx.domain.staffing.replay_callers import (
    DEFAULT_RING_S,
    Caller,
    RecordedCall,
    _draw_beyond,
    _kaplan_meier,
    callers_of,
    patience_draws,
    recorded_facts,
    ring_delay_s,
)
from televikar_pbx.domain.staffing.replay_roster import RosterLine, parse_roster, roster_staff

# Friday 27 November 2026: 09:00 in Oslo is 08:00 UTC.
DAY = date(2026, 11, 27)
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
START = datetime(2026, 11, 26, 23, 0, tzinfo=UTC)  # local midnight
OSLO = "Europe/Oslo"
ALWAYS = Calendar(agreement=Agreement(date(2026, 1, 1)))
RULES = CustomerRules(wrap_up_s=10, max_wait_s=45)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def customer(cid: int, rules: CustomerRules = RULES) -> Customer:
    return Customer(cid, f"C{cid}", f"C{cid}", rules=rules, calendar=ALWAYS)


def call(
    key: str,
    arrived: float,
    outcome: Outcome,
    *,
    answered: float | None = None,
    ended: float,
    offered: float | None = None,
    overflowed: float | None = None,
    customer_id: int = 1,
) -> RecordedCall:
    facts = CallFacts(
        at(arrived),
        None if answered is None else at(answered),
        at(ended),
        outcome,
        7 if answered is not None else None,
        None if overflowed is None else at(overflowed),
    )
    return RecordedCall(key, customer_id, facts, None if offered is None else at(offered))


A = Outcome.ANSWERED
HAND_MADE = [
    call("1", 0, A, offered=0, answered=2, ended=62),
    call("2", 10, Outcome.MESSAGE, overflowed=55, ended=85),
    call("3", 20, Outcome.ABANDONED, ended=28),
    call("4", 30, Outcome.ABANDONED, ended=60),
    call("5", 65, A, offered=72, answered=74, ended=104),
    call("6", 100, A, offered=114, answered=116, ended=136),
    call("7", 200, A, offered=200, answered=202, ended=212),
]


def figures_of(facts: dict[int, list[CallFacts]], customers: list[Customer]) -> Figures:
    return figures(facts, customers, {}, DAY, DAY, OSLO)


def test_the_hand_made_day_has_the_figures_worked_out_by_hand() -> None:
    total = figures_of(recorded_facts(HAND_MADE), [customer(1)]).service["day"].total
    assert (total.offered, total.answered, total.short_abandons, total.lost) == (7, 4, 1, 1)
    assert (total.messages, total.answered_within_12s, total.answered_within_20s) == (1, 3, 4)
    assert total.sl12_pct == 50.0
    assert total.lost_pct == 100 / 7


def test_the_same_agent_as_recorded_reproduces_the_recorded_day_exactly() -> None:
    customers = [customer(1)]
    assert ring_delay_s(HAND_MADE) == 2.0  # offered to answered, every call
    options = ReplayOptions(ring_s=ring_delay_s(HAND_MADE))
    result = replay(callers_of(HAND_MADE), customers, agents_for_all(1, customers), START, options)
    recorded = recorded_facts(HAND_MADE)
    # The same instants and outcomes, call by call (only the agent's id is the replay's).
    assert [replace(f, agent_id=f.agent_id and 7) for f in result.facts[1]] == recorded[1]
    assert figures_of(result.facts, customers) == figures_of(recorded, customers)


def test_a_second_agent_answers_the_caller_who_went_to_message_capture() -> None:
    # Agent 1 takes caller 1 (to 62, wrap-up to 72); agent 2 takes caller 2 at 12, who
    # talks the customer's mean talk of the day, (60 + 30 + 20 + 10) / 4 = 30 s (wrap-up
    # to 52). Caller 3 still gives up at 28; caller 4 is answered by agent 2 at 54 (24 s,
    # outside both limits); caller 5 by agent 1 at 74; caller 6 by agent 2 at 102.
    customers = [customer(1)]
    options = ReplayOptions(ring_s=2.0)
    result = replay(callers_of(HAND_MADE), customers, agents_for_all(2, customers), START, options)
    assert [(f.outcome, f.answered_at, f.ended_at) for f in result.facts[1]] == [
        (A, at(2), at(62)),
        (A, at(12), at(42)),
        (Outcome.ABANDONED, None, at(28)),
        (A, at(54), at(84)),
        (A, at(74), at(104)),
        (A, at(102), at(122)),
        (A, at(202), at(212)),
    ]
    total = figures_of(result.facts, customers).service["day"].total
    assert (total.sl12_pct, total.sl20_pct, total.lost_pct) == (100 * 5 / 6, 100 * 5 / 6, 0.0)


def busy_day(seed: int, calls: int = 400, customers: int = 3) -> list[RecordedCall]:
    """A random morning: arrivals every ~9 s; 30 % of the callers abandoned after 5-60 s,
    5 % left a message, the rest were answered after 1 s and talked ~60 s."""
    rng = random.Random(seed)
    day, clock = [], 0.0
    for n in range(calls):
        clock += rng.expovariate(1 / 9)
        cid = 1 + n % customers
        kind = rng.random()
        if kind < 0.3:
            patience = rng.uniform(5, 60)
            day.append(call(f"{n}", clock, Outcome.ABANDONED, ended=clock + patience,
                            customer_id=cid))  # fmt: skip
        elif kind < 0.35:  # a message of 20 s after 30 s of waiting
            day.append(call(f"{n}", clock, Outcome.MESSAGE, overflowed=clock + 30,
                            ended=clock + 50, customer_id=cid))  # fmt: skip
        else:
            answered = clock + 1
            day.append(call(f"{n}", clock, A, answered=answered,
                            ended=answered + rng.expovariate(1 / 60), customer_id=cid))  # fmt: skip
    return day


def test_a_replayed_day_replayed_again_with_the_same_agents_is_the_same_day() -> None:
    # A day made by the desk itself (a replay), with several agents and a roster that
    # logs agents out during calls: its replay with the same staff reproduces it.
    customers = [customer(1), customer(2, CustomerRules(wrap_up_s=5, max_wait_s=30)),
                 customer(3, CustomerRules(wrap_up_s=0, answer_target_s=5))]  # fmt: skip
    names = {c.name: c.id for c in customers}
    roster = parse_roster("from,agents,customers\n00:00,3,\n09:10,1,\n09:20,2,C3\n09:40,4,\n")
    staff = roster_staff(roster, names, [DAY], OSLO)
    options = ReplayOptions(ring_s=1.5)
    first = replay(callers_of(busy_day(1)), customers, staff, START, options)
    made = [
        RecordedCall(f"{cid}-{n}", cid, f)
        for cid, facts in first.facts.items()
        for n, f in enumerate(facts)
    ]
    again = replay(callers_of(made), customers, staff, START, options)
    assert again.facts == recorded_facts(made)
    outcomes = {f.outcome for facts in first.facts.values() for f in facts}
    assert outcomes == {A, Outcome.ABANDONED, Outcome.MESSAGE, Outcome.NO_MESSAGE}


def test_one_more_agent_shortens_the_waits_and_loses_fewer_callers() -> None:
    customers = [customer(1), customer(2), customer(3)]
    callers = callers_of(busy_day(2))
    options = ReplayOptions(ring_s=2.0)

    def total(agents: int) -> PeriodFigures:
        staff = agents_for_all(agents, customers)
        result = replay(callers, customers, staff, START, options)
        return figures_of(result.facts, customers).service["day"].total

    totals = [total(n) for n in (4, 5, 6)]
    waits = [t.avg_wait_s for t in totals]
    assert waits[0] > waits[1] > waits[2]
    assert [t.offered for t in totals] == [400] * 3
    assert totals[0].lost > totals[1].lost > totals[2].lost
    assert totals[0].sl20_pct < totals[1].sl20_pct < totals[2].sl20_pct


def test_the_replay_is_deterministic() -> None:
    customers = [customer(1), customer(2), customer(3)]
    day = busy_day(3)
    runs = [
        replay(callers_of(day, "km", seed=5), customers, agents_for_all(5, customers), START)
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_an_agent_logged_out_finishes_the_call_and_then_serves_nobody() -> None:
    customers = [customer(1, CustomerRules(wrap_up_s=0))]
    agent = Agent(1, "A", "a", frozenset({1}))
    staff = Staff((agent,), (Shift(START, 1, True), Shift(at(30), 1, False)))
    day = [
        call("1", 0, A, answered=2, ended=62),  # on the phone at 30 s: talks on
        call("2", 40, A, answered=42, ended=50),  # nobody logged in: message capture
    ]
    result = replay(callers_of(day), customers, staff, START, ReplayOptions(ring_s=2.0))
    first, second = result.facts[1]
    assert (first.outcome, first.ended_at) == (A, at(62))
    assert (second.outcome, second.overflowed_at) == (Outcome.NO_MESSAGE, at(40))


def test_without_recorded_offers_the_ring_delay_is_the_default() -> None:
    assert ring_delay_s([call("1", 0, A, answered=2, ended=5)]) == DEFAULT_RING_S


def test_the_ring_delay_must_be_shorter_than_the_ring_timeout() -> None:
    with pytest.raises(ValueError, match="under the ring timeout"):
        ReplayOptions(ring_s=15.0)


def test_censored_patience_is_drawn_beyond_the_wait_the_caller_showed() -> None:
    day = busy_day(4)
    draws = patience_draws(day, seed=1)
    assert draws == patience_draws(day, seed=1)
    assert draws != patience_draws(day, seed=2)
    for c in day:
        if c.facts.outcome is A:
            drawn = draws[c.key]
            assert drawn is None or drawn > (c.facts.answered_at - c.facts.arrived_at).seconds
    # Abandoned callers keep their own patience.
    abandoned = next(c for c in day if c.facts.outcome is Outcome.ABANDONED)
    assert abandoned.key not in draws
    caller = next(x for x in callers_of(day, "km", 1) if x.key == abandoned.key)
    assert isinstance(caller, Caller)
    assert caller.patience_us == (abandoned.facts.ended_at - abandoned.facts.arrived_at) // (
        timedelta(microseconds=1)
    )


def test_the_kaplan_meier_steps_and_a_draw_beyond_the_wait_shown() -> None:
    # Abandons after 10 s and 20 s; waits of 15 s and 30 s censored (answered then).
    steps = _kaplan_meier([(10, True), (15, False), (20, True), (30, False)])
    assert steps == [(10, 0.75), (20, 0.375)]  # 3/4, then 3/4 * 1/2 (two at risk)
    # A caller who waited 15 s: S(20) / S(15) = 0.5 of such callers wait past 20 s.
    assert _draw_beyond(steps, 15, 0.6) == 20
    assert _draw_beyond(steps, 15, 0.5) == 20
    assert _draw_beyond(steps, 15, 0.4) is None  # beyond the last abandon: infinite
    assert _draw_beyond(steps, 5, 0.8) == 10
    assert _draw_beyond(steps, 20, 0.99) is None


# --- the roster ----------------------------------------------------------------------


def test_a_roster_is_read_in_time_order() -> None:
    text = "From, Agents, Customers\n10:00,2,\n08:00,3,\n\n10:00,1,Acme AS | Bakeriet\n"
    assert parse_roster(text) == (
        RosterLine(time(8), 3),
        RosterLine(time(10), 2),
        RosterLine(time(10), 1, ("Acme AS", "Bakeriet")),
    )
    assert parse_roster("from,agents\n07:30,4\n") == (RosterLine(time(7, 30), 4),)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "the roster is empty"),
        ("hour,agents\n08:00,3\n", "roster line 1: the header must be from,agents"),
        ("from,agents\n", "the roster has a header but no lines"),
        ("from,agents\n8,3\n", "roster line 2: 'from' must be a local time HH:MM, got '8'"),
        ("from,agents\n25:00,3\n", "roster line 2: 'from' must be a local time"),
        ("from,agents\n08:00,-1\n", "roster line 2: 'agents' must be 0..10000, got '-1'"),
        ("from,agents\n08:00,three\n", "roster line 2: 'agents' must be"),
        ("from,agents\n08:00,3,x\n", "roster line 2: 3 fields, the header has 2"),
        ("from,agents,customers\n08:00,3,A||B\n", "roster line 2: an empty customer name"),
        ("from,agents\n08:00,3\n08:00,4\n", "roster line 3: a second line for 08:00"),
    ],
)
def test_a_bad_roster_is_one_clear_error(text: str, error: str) -> None:
    with pytest.raises(ValueError, match="^" + error.replace("(", r"\(").replace("|", r"\|")):
        parse_roster(text)


def test_a_roster_logs_pools_of_agents_in_and_out() -> None:
    lines = parse_roster(
        "from,agents,customers\n08:00,2,\n10:00,1,\n10:00,1,c2\n16:00,0,\n16:00,0,C2\n"
    )
    staff = roster_staff(lines, {"C1": 1, "C2": 2}, [DAY], OSLO)
    assert [(a.id, a.customer_ids) for a in staff.agents] == [
        (1, frozenset({1, 2})),
        (2, frozenset({1, 2})),
        (3, frozenset({2})),
    ]
    local = datetime(2026, 11, 27, 7, tzinfo=UTC)  # 08:00 in Oslo
    assert staff.shifts == (
        Shift(local, 1, True),
        Shift(local, 2, True),
        Shift(local + timedelta(hours=2), 2, False),
        Shift(local + timedelta(hours=2), 3, True),
        Shift(local + timedelta(hours=8), 1, False),
        Shift(local + timedelta(hours=8), 3, False),
    )


def test_a_roster_naming_an_unknown_customer_is_an_error() -> None:
    lines = parse_roster("from,agents,customers\n08:00,2,Nobody AS\n")
    with pytest.raises(ValueError, match=r"^roster: no customer 'Nobody AS'$"):
        roster_staff(lines, {"C1": 1}, [DAY], OSLO)

"""The agent desk's live cards and wallboard (domain.desk_live) and the hub that pushes
them to pages (web.live), with a real desk and simulated time."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import pytest

from televikar_pbx.domain import acd
from televikar_pbx.domain.acd import AgentState, CallerArrived, Desk
from televikar_pbx.domain.calendar import Agreement, Calendar
from televikar_pbx.domain.desk_live import (
    CallerInfo,
    agent_cards,
    check_greeting,
    render_greeting,
    shown_number,
    time_of_day,
    wallboard,
)
from televikar_pbx.domain.directory import Agent, Customer, CustomerRules, Directory
from televikar_pbx.web.live import QUEUE_SIZE, LiveDesk

# 08:00 UTC on a Friday in November: 09:00 in Oslo.
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ALWAYS = Calendar(agreement=Agreement(date(2026, 1, 1)))
FJORDBAKST = Customer(1, "Fjordbakst AS", "Fjordbakst", calendar=ALWAYS)
NORDLYS = Customer(
    2,
    "Nordlys AS",
    "Nordlys Regnskap",
    calendar=ALWAYS,
    greeting="{hilsen}, {kunde}, {agent} her",
    rules=CustomerRules(wrap_up_s=30),
)
KARI = Agent(1, "Kari", "agent1", frozenset({1}), logged_in=True)
NORA = Agent(2, "Nora", "agent3", frozenset({2}), logged_in=True)
DIRECTORY = Directory((FJORDBAKST, NORDLYS), (KARI, NORA))


def oslo(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 27, hour - 1, minute, tzinfo=UTC)  # CET = UTC+1


# --- greetings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "word"),
    [
        (4, 59, "God kveld"),
        (5, 0, "God morgen"),
        (9, 59, "God morgen"),
        (10, 0, "God dag"),
        (16, 59, "God dag"),
        (17, 0, "God kveld"),
        (23, 30, "God kveld"),
    ],
)
def test_time_of_day_in_the_customers_zone(hour: int, minute: int, word: str) -> None:
    assert render_greeting("{hilsen}", FJORDBAKST, "Kari", oslo(hour, minute)) == word


def test_the_default_greeting_names_customer_and_agent() -> None:
    assert render_greeting(None, FJORDBAKST, "Kari", T0) == "Fjordbakst, dette er Kari"


def test_a_customers_own_greeting() -> None:
    text = render_greeting(NORDLYS.greeting, NORDLYS, "Nora", oslo(18))
    assert text == "God kveld, Nordlys Regnskap, Nora her"


def test_placeholders_in_names_are_not_expanded_again() -> None:
    odd = Customer(3, "Odd", "Firma {agent}", calendar=ALWAYS)
    assert render_greeting(None, odd, "Kari", T0) == "Firma {agent}, dette er Kari"


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a\nb", "one line"),
        ("x" * 201, "more than 200"),
        ("{kunde}, {navn}", "unknown placeholder {navn}"),
    ],
)
def test_bad_greetings_are_refused(template: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_greeting(template)


def test_a_good_greeting_is_kept_trimmed() -> None:
    assert check_greeting("  {hilsen}, {kunde} ") == "{hilsen}, {kunde}"


def test_the_time_of_day_words() -> None:
    assert [time_of_day(oslo(h).astimezone(UTC).time()) for h in (7,)] == ["God morgen"]


# --- cards and the wallboard -------------------------------------------------------------


def new_desk() -> Desk:
    return Desk(DIRECTORY, T0, ring_timeout_s=15)


def test_the_card_pops_the_call_while_the_phone_rings() -> None:
    d = new_desk()
    d.handle(CallerArrived("c1", 1), T0)
    cards = agent_cards(
        d.view(),
        {1: FJORDBAKST, 2: NORDLYS},
        {1: "Kari", 2: "Nora"},
        {"c1": CallerInfo(41, "+4791234567")},
        T0 + timedelta(seconds=3),
    )
    card = cards[1]
    assert card.state is AgentState.OFFERED
    assert card.call is not None
    assert card.call.to_json() == {
        "call_id": "c1",
        "record_id": 41,
        "customer_id": 1,
        "customer_name": "Fjordbakst",
        "caller": "+47 91 23 45 67",
        "caller_withheld": False,
        "arrived_at": T0.isoformat(),
        "greeting": "Fjordbakst, dette er Kari",
    }
    assert cards[2].call is None and cards[2].state is AgentState.IDLE


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("4791234567", "+47 91 23 45 67"),
        ("004791234567", "+47 91 23 45 67"),
        ("91234567", "+47 91 23 45 67"),
        ("+46701234567", "+46 70 123 45 67"),
        ("12", "12"),  # not a number anyone can dial: as it came
    ],
)
def test_the_callers_number_reads_as_a_number(number: str, shown: str) -> None:
    assert shown_number(number) == shown


@pytest.mark.parametrize("number", [None, "", "anonymous", "Anonymous"])
def test_a_withheld_number_reads_skjult_nummer(number: str | None) -> None:
    d = new_desk()
    d.handle(CallerArrived("c1", 1), T0)
    cards = agent_cards(d.view(), {1: FJORDBAKST}, {1: "Kari"}, {"c1": CallerInfo(1, number)}, T0)
    assert cards[1].call is not None
    assert cards[1].call.caller == "skjult nummer"
    assert cards[1].call.to_json()["caller_withheld"] is True


def test_wrap_up_shows_its_end() -> None:
    d = new_desk()
    d.handle(CallerArrived("c2", 2), T0)
    d.handle(acd.AgentAnswered("c2", 2), T0 + timedelta(seconds=2))
    d.handle(acd.CallerHungUp("c2"), T0 + timedelta(seconds=60))
    cards = agent_cards(d.view(), {2: NORDLYS}, {2: "Nora"}, {}, T0 + timedelta(seconds=61))
    assert cards[2].state is AgentState.WRAP_UP
    assert cards[2].wrap_up_until == T0 + timedelta(seconds=90)
    assert cards[2].call is None


def test_the_wallboard_counts_waiting_callers_and_the_longest_wait() -> None:
    d = new_desk()
    d.handle(CallerArrived("c0", 2), T0)
    d.handle(acd.AgentAnswered("c0", 2), T0)  # Nora is busy: Nordlys's callers queue
    d.handle(CallerArrived("c1", 2), T0)
    d.handle(CallerArrived("c2", 2), T0 + timedelta(seconds=5))
    d.handle(CallerArrived("c3", 1), T0 + timedelta(seconds=6))  # rings Kari: waiting too
    board = wallboard(
        d.view(), {1: FJORDBAKST, 2: NORDLYS}, {1: "Kari", 2: "Nora"}, T0 + timedelta(seconds=10)
    )
    assert board["customers"] == [
        {"id": 1, "name": "Fjordbakst", "waiting": 1, "longest_wait_s": 4.0},
        {"id": 2, "name": "Nordlys Regnskap", "waiting": 2, "longest_wait_s": 10.0},
    ]
    assert board["agents"] == [
        {"id": 1, "name": "Kari", "state": "offered", "reachable": True},
        {"id": 2, "name": "Nora", "state": "on_call", "reachable": True},
    ]


# --- the hub -------------------------------------------------------------------------


@dataclass
class Call:
    record_id: int
    caller_number: str | None


@dataclass
class FakeClock:
    at: datetime = T0

    def now(self) -> datetime:
        return self.at


@dataclass
class Source:
    """The parts of CallService the hub reads, around a real desk."""

    desk: Desk = field(default_factory=new_desk)
    clock: FakeClock = field(default_factory=FakeClock)
    directory: Directory = DIRECTORY
    calls: dict[str, Call] = field(default_factory=dict)

    def view(self) -> acd.DeskView:
        return self.desk.view()


async def next_event(queue: asyncio.Queue[tuple[str, str] | None]) -> tuple[str, dict[str, object]]:
    item = await asyncio.wait_for(queue.get(), 1)
    assert item is not None
    return item[0], json.loads(item[1])


async def test_a_page_gets_the_current_card_then_each_change() -> None:
    source = Source()
    hub = LiveDesk(source)
    page = hub.subscribe_agent(1)
    event, data = await next_event(page.queue)
    assert (event, data["state"], data["call"]) == ("agent", "idle", None)
    assert data["now"] == T0.isoformat()
    source.calls["c1"] = Call(7, "+4791234567")
    source.desk.handle(CallerArrived("c1", 1), T0)
    hub.changed()
    hub.changed()  # coalesced: one event for both
    event, data = await next_event(page.queue)
    assert data["state"] == "offered"
    assert isinstance(data["call"], dict) and data["call"]["customer_name"] == "Fjordbakst"
    await asyncio.sleep(0.01)
    assert page.queue.empty()


async def test_a_reconnecting_page_catches_up() -> None:
    source = Source()
    hub = LiveDesk(source)
    first = hub.subscribe_agent(1)
    source.calls["c1"] = Call(7, None)
    source.desk.handle(CallerArrived("c1", 1), T0)
    hub.changed()
    await asyncio.sleep(0)
    hub.unsubscribe(first)
    again = hub.subscribe_agent(1)
    _, data = await next_event(again.queue)
    assert data["state"] == "offered"
    assert isinstance(data["call"], dict) and data["call"]["caller"] == "skjult nummer"


async def test_other_agents_pages_hear_nothing_of_it() -> None:
    source = Source()
    hub = LiveDesk(source)
    nora = hub.subscribe_agent(2)
    await next_event(nora.queue)
    source.calls["c1"] = Call(7, None)
    source.desk.handle(CallerArrived("c1", 1), T0)
    hub.changed()
    await asyncio.sleep(0.05)
    assert nora.queue.empty()


async def test_only_the_cards_of_agents_whose_desk_changed_are_rebuilt() -> None:
    greeted = replace(FJORDBAKST, greeting="{hilsen}, {kunde}")
    source = Source(directory=Directory((greeted, NORDLYS), (KARI, NORA)))
    hub = LiveDesk(source)
    kari, nora = hub.subscribe_agent(1), hub.subscribe_agent(2)
    await next_event(kari.queue), await next_event(nora.queue)
    source.calls["c1"] = Call(7, "+4791234567")
    source.desk.handle(CallerArrived("c1", 1), T0)  # 09:00 in Oslo
    hub.changed()
    _, data = await next_event(kari.queue)
    assert isinstance(data["call"], dict) and data["call"]["greeting"] == "God morgen, Fjordbakst"
    # Nora's desk changes hours later: Kari's card is not rebuilt (its greeting stays the
    # one of the pop) and her page hears nothing.
    source.clock.at = T0 + timedelta(hours=3)
    source.calls["c2"] = Call(8, None)
    source.desk.handle(CallerArrived("c2", 2), source.clock.at)
    hub.changed()
    assert (await next_event(nora.queue))[1]["state"] == "offered"
    await asyncio.sleep(0.05)
    assert kari.queue.empty()
    # A reloaded directory (a new snapshot) rebuilds the cards: the new name shows.
    renamed = replace(greeted, display_name="Fjordbakst Bakeri")
    source.directory = Directory((renamed, NORDLYS), (KARI, NORA))
    hub.changed()
    _, data = await next_event(kari.queue)
    assert isinstance(data["call"], dict)
    assert data["call"]["greeting"] == "God dag, Fjordbakst Bakeri"


async def test_the_cards_go_out_a_moment_after_the_change_once_for_many() -> None:
    source = Source()
    hub = LiveDesk(source, publish_delay_s=0.2)
    page = hub.subscribe_agent(1)
    await next_event(page.queue)
    source.calls["c1"] = Call(7, None)
    source.desk.handle(CallerArrived("c1", 1), T0)
    hub.changed()
    await asyncio.sleep(0.05)
    assert page.queue.empty()  # not yet: the change's own commands go first
    hub.changed()
    _, data = await next_event(page.queue)
    assert data["state"] == "offered"
    await asyncio.sleep(0.3)
    assert page.queue.empty()  # both changes in one publish


async def test_without_pages_a_change_costs_nothing() -> None:
    source = Source()
    hub = LiveDesk(source)
    hub.changed()
    assert not hub._scheduled


async def test_a_page_that_does_not_keep_up_is_dropped() -> None:
    source = Source()
    hub = LiveDesk(source)
    page = hub.subscribe_agent(1)
    for n in range(QUEUE_SIZE + 5):
        page.put("agent", {"n": n})
    assert page.dropped
    assert page.queue.qsize() == QUEUE_SIZE + 1
    items = [page.queue.get_nowait() for _ in range(QUEUE_SIZE + 1)]
    assert items[-1] is None  # "reconnect": the page comes back to the current state


async def test_the_wallboard_is_pushed_at_most_every_interval() -> None:
    source = Source()
    hub = LiveDesk(source, board_interval_s=3600)
    board = hub.subscribe_board()
    event, data = await next_event(board.queue)
    assert event == "board"
    for n in range(5):
        source.calls[f"c{n}"] = Call(n, None)
        source.desk.handle(CallerArrived(f"c{n}", 2), T0)
        hub.changed()
    event, data = await next_event(board.queue)  # the first push after a quiet spell
    customers = data["customers"]
    assert event == "board" and isinstance(customers, list)
    assert customers[1]["waiting"] == 5
    source.desk.handle(CallerArrived("c9", 2), T0)
    hub.changed()
    await asyncio.sleep(0.05)
    assert board.queue.empty()  # the next one waits for the interval
    hub.set_sla({"customers": []})
    assert (await next_event(board.queue))[0] == "sla"


async def test_wallboards_get_the_forwarding_watch_after_each_check() -> None:
    hub = LiveDesk(Source())
    hub.set_forwarding({"flagged": []})  # no page yet: kept for the first
    first = hub.subscribe_board()
    assert (await next_event(first.queue))[0] == "board"
    assert await next_event(first.queue) == ("forwarding", {"flagged": []})
    silent = {"flagged": [{"id": 2, "name": "Nordlys Regnskap AS"}]}
    hub.set_forwarding(silent)
    assert await next_event(first.queue) == ("forwarding", silent)


async def test_closing_ends_every_feed() -> None:
    hub = LiveDesk(Source())
    a, b = hub.subscribe_agent(1), hub.subscribe_board()
    hub.close_all()
    assert hub.pages == 0
    for page in (a, b):
        items = [page.queue.get_nowait() for _ in range(page.queue.qsize())]
        assert items[-1] is None

"""The desk-pages part of the load benchmark (benchmarks/loadbench/pages.py, report.py):
the event stream as the pages receive it, screen-pop matching and its figures. Pure: no
service, no sipp, no timings."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from benchmarks.loadbench import report
from benchmarks.loadbench.desk_pages import disturbed
from benchmarks.loadbench.pages import (
    Event,
    Spread,
    first_pops,
    login_csrf,
    pop_figures,
    sse_events,
)
from televikar_pbx.domain.desk_live import shown_number


def card(state: str, agent_id: int = 1, caller: str | None = None) -> str:
    call = None if caller is None else {"caller": caller, "record_id": 7, "call_id": "c"}
    return json.dumps({"agent_id": agent_id, "state": state, "call": call})


def agent_event(at: float, state: str, agent_id: int = 1, caller: str | None = None) -> Event:
    return Event(at, "agent", card(state, agent_id, caller))


def test_events_are_stamped_with_the_chunk_that_completes_them() -> None:
    offered = card("offered", caller="+47 479 01 123").encode()
    chunks = [
        (1.0, b"retry: 1000\n\n"),
        (2.0, b"event: agent\ndata: " + card("idle").encode() + b"\n\n: keep-alive\n\n"),
        (3.0, b"event: agent\r\ndata: " + offered[:10]),
        (4.0, offered[10:] + b"\n"),
        (5.0, b"\nevent: board\ndata: {}\ndata: {}\n\n"),
    ]
    events = sse_events(chunks)
    assert [(e.at, e.name) for e in events] == [(2.0, "agent"), (5.0, "agent"), (5.0, "board")]
    assert json.loads(events[1].data)["call"]["caller"] == "+47 479 01 123"
    assert events[2].data == "{}\n{}"
    assert sse_events([(1.0, b"event: agent\ndata: {}")]) == []  # not complete yet


def test_a_page_pops_each_call_once_on_its_first_offered_card() -> None:
    events = [
        agent_event(1.0, "idle"),
        agent_event(2.0, "offered", caller="A"),
        agent_event(2.5, "on_call", caller="A"),
        agent_event(3.0, "offered", caller="A"),  # the same call offered again
        agent_event(4.0, "offered", 2, caller="B"),
        Event(4.5, "board", "{}"),
        agent_event(5.0, "offered"),  # no call on the card: no pop
    ]
    assert first_pops(events) == {"A": (2.0, 1), "B": (4.0, 2)}


def test_pops_are_matched_to_the_agent_invite_through_the_shown_number() -> None:
    # The card shows the caller formatted ("+47 ..."), the INVITE carries it as it came.
    offers = {"47901123": 100.000, "47901124": 101.000, "479011": 102.000}
    shown = {raw: shown_number(raw) for raw in offers}
    assert shown["47901123"] == "+47 47 90 11 23" and shown["479011"] == "479011"
    page1 = [
        agent_event(99.995, "offered", caller=shown["47901123"]),  # before the phone rang
        agent_event(101.003, "offered", caller=shown["47901124"]),
        agent_event(102.001, "offered", caller=shown["479011"]),
        agent_event(103.0, "offered", caller="+47 999 99 999"),  # not a call of this step
    ]
    page2 = [
        agent_event(100.010, "offered", caller=shown["47901123"]),
        agent_event(102.002, "offered", caller=shown["479011"]),
    ]
    figures = pop_figures(offers, [(1, page1), (1, page2)])
    assert figures.calls == 3 and figures.pages == 2
    assert figures.per_page.n == 5 and figures.unmatched == 1
    assert figures.per_page.min == pytest.approx(-5.0, abs=1e-6)
    assert figures.per_page.max == pytest.approx(10.0, abs=1e-6)
    assert figures.last_page.n == 3
    assert figures.last_page.p50 == pytest.approx(3.0, abs=1e-6)  # 10, 3, 2 ms
    assert figures.missing == 1  # page 2 never got 47901124
    assert figures.unpopped == 0


def test_with_pages_on_several_agents_a_call_is_expected_on_its_agents_pages_only() -> None:
    offers = {"1001": 10.0, "1002": 20.0, "1003": 30.0}
    pages = [
        (1, [agent_event(10.002, "offered", 1, caller="1001")]),
        (1, []),  # missed the pop of 1001
        (2, [agent_event(20.004, "offered", 2, caller="1002")]),
        (2, [agent_event(20.005, "offered", 2, caller="1002")]),
    ]
    figures = pop_figures(offers, pages)
    assert figures.per_page.n == 3
    assert figures.missing == 1 and figures.unpopped == 1  # 1003 popped nowhere
    # With every page on one agent, a call popped nowhere is missing on every page.
    one_agent = pop_figures({"1001": 10.0}, [(1, []), (1, [])])
    assert one_agent.missing == 2 and one_agent.unpopped == 0
    assert one_agent.per_page.n == 0 and math.isnan(one_agent.per_page.p99)


def test_spread_and_login_form() -> None:
    spread = Spread.of([3.0, -1.0, 2.0])
    assert spread.as_dict() == {"n": 3, "min": -1.0, "p50": 2.0, "p99": 2.98, "max": 3.0}
    assert Spread.of([]).as_dict()["p50"] is None
    html = '<form><input type="hidden" name="csrf" value="abc.DEF-1"><input name="username">'
    assert login_csrf(html) == "abc.DEF-1"
    with pytest.raises(ValueError):
        login_csrf("<form></form>")


def test_the_report_shows_both_phases() -> None:
    spread = {"n": 200, "min": -1.5, "p50": 0.4, "p99": 3.2, "max": 4.0}
    step: dict[str, Any] = {
        "pages": 100, "placed": 200, "failed": 0, "routing_p50_ms": 9.0,
        "routing_p99_ms": 14.0, "routing_max_ms": 15.0, "ours_cpu_s": 6.1,
        "other_load_cores": 0.1,
        "pop": {"calls": 200, "pages": 100, "per_page_ms": spread, "last_page_ms": spread,
                "missing": 0, "unpopped": 0, "unmatched": 0},
    }  # fmt: skip
    pop = {"rate": 2.0, "calls": 200, "answer_ms": 100, "talk_ms": 200, "steps": [step]}
    text = "\n".join(report.screen_pop_lines(pop))
    assert "| 100 | 200 | 200 | -1.5 / 0.4 / 3.2 / 4.0 |" in text
    routing = {k: step[k] for k in step if k not in ("pages", "pop")}
    pages = {
        "rate": 16.0, "pages": 100, "agents_followed": 50, "without": routing,
        "with_pages": routing | {"routing_p99_ms": 15.0}, "p99_ratio": 1.071,
        "p50_ratio": 1.0, "goal_met": True, "pop": step["pop"],
    }  # fmt: skip
    lines = report.desk_pages_lines(pages)
    assert "**1.071** (goal ≤ 1.10: **met**)" in lines[1]
    # Rounds: pooled figures, the ratio with its interval, and a row per step.
    rounds = pages | {
        "rounds": [{"without": routing, "with_pages": routing}] * 3,
        "comparison": {"p99_ratio": 1.071, "p99_ratio_low": 0.93, "p99_ratio_high": 1.2,
                       "p50_ratio": 1.0},
    }  # fmt: skip
    lines = report.desk_pages_lines(rounds)
    assert lines[0].startswith("At 16 calls/s, 3 round(s),")
    assert "**1.071** (95 % interval 0.93 to 1.20) (goal ≤ 1.10: **met**)" in lines[1]
    assert sum(1 for line in lines if line.startswith("| 3 |")) == 2
    assert "| 2 | 100 pages | 9.0 / 14.0 / 15.0 | 200 / 0 | 6.1 | 0.1 |" in lines
    busy = routing | {"other_load_cores": 1.25}
    lines = report.desk_pages_lines(
        rounds | {"discarded_rounds": [{"without": busy, "with_pages": routing}]}
    )
    assert "| run again | no page | 9.0 / 14.0 / 15.0 | 200 / 0 | 6.1 | 1.25 |" in lines


def test_a_round_with_other_work_on_the_machine_is_run_again() -> None:
    quiet, busy = {"other_load_cores": 0.02}, {"other_load_cores": 0.63}
    assert not disturbed(quiet, quiet)
    assert disturbed(quiet, busy) and disturbed(busy, quiet)

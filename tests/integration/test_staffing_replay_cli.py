"""``televikar-pbx staffing replay`` in-process on SQLite and PostgreSQL, over the
Saturday of test_sla_cli (Fjordbakst AS's six ended calls, Nordlys AS's one): its
recorded figures are ``sla report``'s, and its replay runs the day's calls again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_sla_cli import DAY, Cli, cli, day  # noqa: F401 (fixtures)

REPLAY = ("staffing", "replay", "--date", "2026-11-28")


@pytest.fixture
def agreed(day: Cli) -> Cli:  # noqa: F811
    """The day, with both customers under agreement (answered all day)."""
    for name in ("Fjordbakst AS", "Nordlys AS"):
        day.ok("customers", "edit", name, "--agreement-start", "2026-01-01")
    return day


def test_one_agent_answers_every_caller_of_the_quiet_day(agreed: Cli) -> None:
    # The calls are minutes apart: the agent is free for each, answers after the ring
    # delay (3 s, the default without a journal of offers) and the callers who gave up
    # after 8 s and 30 s, or left a message after 45 s, are answered instead.
    replayed = agreed.ok(*REPLAY, "--agents", "1", "--format", "json").json()
    total = replayed["service"]["replayed"]["day"]["total"]
    assert (total["offered"], total["answered"], total["sl12_pct"]) == (7, 7, 100.0)
    assert (total["lost"], total["messages"], total["avg_wait_s"]) == (0, 0, 3.0)


def test_the_recorded_side_is_sla_reports_figures(day: Cli) -> None:  # noqa: F811
    replayed = day.ok(*REPLAY, "--agents", "1", "--format", "json").json()
    for name in ("Fjordbakst AS", "Nordlys AS"):
        report = day.ok("sla", "report", "--customer", name, *DAY, "--format", "json").json()
        mine = next(c for c in replayed["customers"] if c["name"] == name)
        assert mine["recorded"]["day"]["total"] == report["total"]
        by_hour = day.ok("sla", "report", "--customer", name, *DAY, "--by", "hour",
                         "--format", "json").json()  # fmt: skip
        assert mine["recorded"]["hour"]["periods"] == by_hour["periods"]
    service = replayed["service"]
    assert service["recorded"]["day"]["total"]["offered"] == 7  # both customers' calls
    assert service["replayed"]["day"]["total"]["offered"] == 7
    # No journal of offers in this day: the default ring delay; every call was ended.
    assert (replayed["ring_s"], replayed["calls"], replayed["patience"]) == (3.0, 7, "infinite")


def test_the_table_shows_recorded_and_replayed_figures_side_by_side(agreed: Cli) -> None:
    out = agreed.ok(*REPLAY, "--agents", "2").out
    assert out.startswith(
        "Replay of 2026-11-28, every customer (Europe/Oslo): 7 calls; "
        "2 agents serving every customer all day; ring 3.00 s; patience infinite\n"
    )
    assert "Period" in out and "SL12 % rec" in out and "Fjordbakst AS" in out
    hours = [line for line in out.splitlines() if line.startswith("2026-11-28T")]
    assert [h.split()[0] for h in hours] == [
        "2026-11-28T09:00+01:00",
        "2026-11-28T10:00+01:00",
        "2026-11-28T11:00+01:00",
    ]
    one = agreed.ok(*REPLAY, "--agents", "2", "--customer", "Nordlys AS").out
    assert one.splitlines()[0].startswith("Replay of 2026-11-28, Nordlys AS (Europe/Oslo)")


def test_a_roster_replays_and_a_bad_one_is_one_clear_error(day: Cli, tmp_path: Path) -> None:  # noqa: F811
    roster = tmp_path / "roster.csv"
    roster.write_text("from,agents,customers\n08:00,1,Fjordbakst AS|Nordlys AS\n")
    out = day.ok(*REPLAY, "--roster", str(roster), "--format", "json").json()
    assert out["roster"] == str(roster)
    assert out["service"]["replayed"]["day"]["total"]["offered"] == 7
    roster.write_text("from,agents\n8 o'clock,1\n")
    day.fails(*REPLAY, "--roster", str(roster), match="roster line 2: 'from' must be")
    roster.write_text("from,agents,customers\n08:00,1,Nobody\n")
    day.fails(*REPLAY, "--roster", str(roster), match="roster: no customer 'Nobody'")
    day.fails(*REPLAY, "--roster", str(tmp_path / "none.csv"), match="--roster")
    day.fails(*REPLAY, "--agents", "1", "--ring-s", "20", match="under the ring timeout")
    day.fails(*REPLAY, "--agents", "1", "--timezone", "Mars/Base", match="Mars/Base")

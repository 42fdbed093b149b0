"""``televikar-pbx staffing plan`` and ``staffing backtest``, in-process against a migrated
database on SQLite and PostgreSQL (``db_url``), with calls written through the real
repositories (``add_calls`` of test_calls_list).

Fjordbakst AS (Europe/Oslo, UTC+1 in November, wrap-up 10 s) had, on Tuesday 3 and
Tuesday 10 November 2026, 20 calls each between 09:00 and 10:00 local time: 18 answered
after 5 s with 120 s of talk, 2 abandoned after 30 s. Nordlys AS had no calls. By hand,
for the two weeks before Tuesday 17 November (``--history 2``), Tuesday 09:00 has:

* arrivals 40 calls / 2 such hours = 20 per hour; every other hour 0;
* handle time 120 + 10 = 130 s (every answered call alike, so pooling changes nothing);
* patience: 4 abandons over 36 * 5 + 4 * 30 = 300 s waited; the hour pooled with the
  customer's overall rate (4/300) as 10 pseudo-abandons: (4 + 10) / (300 + 750) = 1/75.

The plan's agents for Tuesday 17 November 09:00 are the fewest for which Erlang A with
those rates (and the 45 s maximum wait, docs/staffing.md) meets 70 % / 90 % / 5 %,
computed here straight from ``ErlangA``.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from televikar_pbx.db.agent_log_repo import AgentLogRepository
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.domain.staffing.erlang_a import ErlangA
from tests.helpers import run_async
from tests.integration.test_calls_list import add_calls
from tests.integration.test_cli import Cli, free_port

UTC = dt.UTC


def tuesday_calls(day: dt.date) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for n in range(20):
        # 09:00 Oslo is 08:00 UTC in November; one call every 3 minutes.
        arrived = dt.datetime.combine(day, dt.time(8), UTC) + dt.timedelta(minutes=3 * n)
        call: dict[str, Any] = {"customer": 1, "arrived": arrived, "caller": f"4790000{n:03d}"}
        if n in (4, 13):
            call |= {"ended": 30, "outcome": "abandoned"}
        else:
            call |= {"agent": 1, "answered": 5, "ended": 125, "outcome": "answered"}
        calls.append(call)
    return calls


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any) -> Cli:
    monkeypatch.setenv("TELEVIKAR_NOW", "2026-11-16T07:00:00+01:00")
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(free_port()))  # nothing listens
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", db_url)
    cli = Cli(capsys, db_url)
    cli.ok("customers", "add", "Fjordbakst AS", "--display-name", "Fjordbakst",
           "--number", "4721000001", "--agreement-start", "2026-01-01")  # fmt: skip
    cli.ok("customers", "add", "Nordlys AS", "--display-name", "Nordlys",
           "--number", "4721000002", "--agreement-start", "2026-01-01")  # fmt: skip
    cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "1", "--customer", "2",
           "--secret", "s3cret-s3cret-s3cret")  # fmt: skip
    add_calls(db_url, tuesday_calls(dt.date(2026, 11, 3)) + tuesday_calls(dt.date(2026, 11, 10)))
    return cli


def expected_agents() -> int:
    lam, mu, theta = 20 / 3600, 1 / 130, 1 / 75
    # In the queue, callers leave at the exponential rate with the mean of min(Exp(θ), 45 s)
    # (the maximum wait sends them to message capture); each caller's own patience is θ.
    leaving = theta / (1 - math.exp(-theta * 45))
    n = 1
    while True:
        f = ErlangA(n, lam, mu, leaving).figures(theta, max_wait_s=45.0)
        if f.sl12 >= 0.70 and f.sl20 >= 0.90 and f.lost <= 0.05:
            return n
        n += 1


def test_plan_json(cli: Cli) -> None:
    plan = cli.ok("staffing", "plan", "--from", "2026-11-17", "--to", "2026-11-17",
                  "--history", "2", "--format", "json").json()  # fmt: skip
    assert plan["history"] == {
        "start": "2026-11-03T00:00:00+01:00",
        "end": "2026-11-17T00:00:00+01:00",
    }
    hours = {h["period"]: h for h in plan["hours"]}
    assert len(hours) == 24
    nine = hours["2026-11-17T09:00+01:00"]
    assert nine["offered"] == pytest.approx(20.0)
    assert nine["handle_s"] == pytest.approx(130.0)
    assert nine["patience_s"] == pytest.approx(75.0)
    assert nine["agents"] == expected_agents()
    assert nine["binding_customer"] == "Fjordbakst AS"
    assert [c["customer"] for c in nine["customers"]] == ["Fjordbakst AS"]
    assert nine["customers"][0]["meets_targets"] is True
    assert nine["expected"]["sl20_pct"] >= 90.0
    # Measured: 36 callers answered after 5 s (censored at 5 s), 4 hung up after 30 s.
    # Kaplan-Meier: nobody gone by 20 s, all still waiting at 30 s gone then; the
    # exponential fit (mean 300 s / 4 = 75 s) says 1 - e^(-12/75) by 12 s.
    fjord, nordlys, everyone = plan["measured"]
    assert fjord["customer"] == "Fjordbakst AS" and everyone["customer"] == "All customers"
    assert fjord["calls_per_week"] == pytest.approx(20.0)
    assert fjord["handle_s"] == pytest.approx(130.0)
    assert (fjord["abandons"], fjord["patience_s"]) == (4, pytest.approx(75.0))
    assert fjord["abandon_by_12s_pct"] == 0.0 and fjord["abandon_by_20s_pct"] == 0.0
    assert fjord["abandon_by_45s_pct"] == pytest.approx(100.0)
    assert fjord["abandon_by_12s_exponential_pct"] == pytest.approx(100 * (1 - math.exp(-12 / 75)))
    assert nordlys["calls_per_week"] == 0.0 and nordlys["patience_s"] is None
    assert everyone["abandons"] == 4 and everyone["abandon_by_45s_pct"] == pytest.approx(100.0)
    quiet = [h for label, h in hours.items() if label != "2026-11-17T09:00+01:00"]
    assert all(h["agents"] == 0 and h["expected"] is None for h in quiet)


def test_plan_table_csv_and_pdf(cli: Cli, tmp_path: Path) -> None:
    day = ("--from", "2026-11-17", "--to", "2026-11-17", "--history", "2")
    lines = cli.ok("staffing", "plan", *day).out.splitlines()
    assert lines[0] == (
        "Staffing plan 2026-11-17 to 2026-11-17 (Europe/Oslo), "
        "from the calls of 2026-11-03 to 2026-11-16"
    )
    row = next(line for line in lines if line.startswith("2026-11-17T09:00+01:00"))
    assert row.split()[4] == str(expected_agents())
    assert row.split()[-2:] == ["Fjordbakst", "AS"]
    csv_bytes = cli.ok("staffing", "plan", *day, "--format", "csv").out.encode()
    csv_lines = csv_bytes.decode("utf-8-sig").splitlines()
    assert csv_lines[0] == (
        "Hour;Calls;Handle s;Patience s;Agents;SL12 %;SL20 %;Lost %;Wait s;Binding customer"
    )
    nine = next(line for line in csv_lines if line.startswith("2026-11-17T09:00+01:00"))
    cells = nine.split(";")
    assert cells[1:5] == ["20,0", "130", "75", str(expected_agents())]
    assert cells[-1] == "Fjordbakst AS"
    out = tmp_path / "plan.pdf"
    cli.ok("staffing", "plan", *day, "--format", "pdf", "--output", str(out))
    assert out.read_bytes().startswith(b"%PDF-")
    assert out.stat().st_mode & 0o077 == 0
    text = "\n".join(page.extract_text() for page in PdfReader(out).pages)
    assert "Staffing plan: 2026-11-17" in text and "Agents needed per hour" in text
    assert "Fjordbakst AS" in text
    cli.fails(
        "staffing", "plan", *day, "--output", str(out), match="--output is for --format pdf only"
    )


def test_plan_refuses_a_reversed_range(cli: Cli) -> None:
    cli.fails(
        "staffing", "plan", "--from", "2026-11-18", "--to", "2026-11-17", match="is after --to"
    )
    cli.fails("staffing", "plan", "--from", "2026-11-17", "--to", "2026-11-17", "--history", "0",
              match="--history must be at least 1 week")  # fmt: skip
    cli.fails("staffing", "backtest", "--from", "2026-11-10", "--to", "2026-11-10",
              "--timezone", "Europe/Atlantis", match="--timezone: unknown time zone")  # fmt: skip


def test_backtest_json(cli: Cli) -> None:
    result = cli.ok("staffing", "backtest", "--from", "2026-11-10", "--to", "2026-11-10",
                    "--history", "1", "--format", "json").json()  # fmt: skip
    assert result["presence_source"].startswith("agents who answered calls")
    hours = {h["period"]: h for h in result["hours"]}
    nine = hours["2026-11-10T09:00+01:00"]
    assert nine["agents_present"] == 1.0
    assert nine["offered"] == 20
    assert nine["forecast_offered"] == pytest.approx(20.0)  # the week before had the same
    # Measured as docs/metrics.md: 18 of 20 within 12 s (no short abandons), 2 lost.
    assert nine["sl12"]["measured_pct"] == pytest.approx(90.0)
    assert nine["lost"]["measured_pct"] == pytest.approx(10.0)
    predicted = nine["sl12"]["predicted_pct"]
    assert predicted is not None
    assert nine["sl12"]["error_pp"] == pytest.approx(predicted - 90.0)
    assert result["summary"]["sl12"]["hours_compared"] == 1
    assert result["summary"]["sl12"]["mean_absolute_error_pp"] == pytest.approx(
        abs(predicted - 90.0)
    )
    table = cli.ok(
        "staffing", "backtest", "--from", "2026-11-10", "--to", "2026-11-10", "--history", "1"
    ).out
    assert "Mean absolute error: SL12" in table


def log_availability(db_url: str, changes: list[tuple[int, str, dt.datetime]]) -> None:
    async def write() -> None:
        engine = make_engine(db_url)
        try:
            log = AgentLogRepository(make_sessionmaker(engine))
            for agent, state, at in changes:
                await log.log_agent_state(agent, state, at)
        finally:
            await engine.dispose()

    run_async(write)


def test_backtest_takes_the_agents_present_from_the_availability_log(cli: Cli) -> None:
    cli.ok("agents", "add", "Per", "--endpoint", "agent2", "--customer", "1",
           "--secret", "s3cret-s3cret-s3cret")  # fmt: skip
    utc = dt.datetime(2026, 11, 10, tzinfo=UTC)
    hour = dt.timedelta(hours=1)
    log_availability(cli.db_url, [
        (1, "available", utc + 7.5 * hour),  # Kari: the whole of 09:00-10:00 Oslo
        (1, "logged_out", utc + 9 * hour),
        (2, "available", utc + 8.5 * hour),  # Per: its second half (and on to 11:00)
        (2, "paused", utc + 10 * hour),
    ])  # fmt: skip
    result = cli.ok("staffing", "backtest", "--from", "2026-11-10", "--to", "2026-11-10",
                    "--history", "1", "--format", "json").json()  # fmt: skip
    assert result["presence_source"] == "the availability log (logged in, not paused)"
    present = {h["period"]: h["agents_present"] for h in result["hours"]}
    assert present["2026-11-10T08:00+01:00"] == pytest.approx(0.5)  # Kari from 08:30
    assert present["2026-11-10T09:00+01:00"] == pytest.approx(1.5)
    assert present["2026-11-10T10:00+01:00"] == pytest.approx(1.0)  # Per
    assert present["2026-11-10T11:00+01:00"] == 0.0
    nine = next(h for h in result["hours"] if h["period"] == "2026-11-10T09:00+01:00")
    assert nine["sl12"]["measured_pct"] == pytest.approx(90.0)
    assert nine["sl12"]["predicted_pct"] is not None

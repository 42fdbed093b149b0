"""SLA figures from real calls (issue 5 acceptance): five sipp calls with known waits,
then ``sla nightly``, then ``sla report --format json``, checked against figures
computed by hand from those waits (docs/metrics.md, definitions v1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.records import CallRecord
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.db.sla_repo import SlaAggregateRecord, SlaRepository
from televikar_pbx.domain.calendar import Agreement
from televikar_pbx.domain.directory import CustomerRules
from tests.asterisk import sipp
from tests.asterisk.conftest import REPO, Service, StartService
from tests.asterisk.test_desk import PROMPT_AND_BEEP_MS
from tests.helpers import run_async

DID = "4721000011"
OSLO = ZoneInfo("Europe/Oslo")
# Real calls: each wait is Asterisk's, within this of what the phones were told to do.
WAIT_TOLERANCE_S = 0.3


async def _seed(directory: DirectoryRepository) -> dict[str, int]:
    # No wrap-up, so each call finds the agent free; callers wait at most 20 s.
    customer = await directory.add_customer(
        "Målt AS",
        "Målt",
        [DID],
        rules=CustomerRules(max_wait_s=20, wrap_up_s=0),
        agreement=Agreement(date(2026, 1, 1)),
    )
    agent = await directory.add_agent("Agent 1", "agent1", [customer.id], logged_in=True)
    return {"c0": customer.id, "a1": agent.id}


def _cli(service: Service, *args: str, now: datetime | None = None) -> str:
    """Run the command line; ``now``: the instant it takes for now (TELEVIKAR_NOW)."""
    env = {
        **os.environ,
        "TELEVIKAR_ENV_FILE": str(service.lab.env_file),
        "TELEVIKAR_DATABASE_URL": service.db_url,
    }
    env.pop("TELEVIKAR_NOW", None)
    if now is not None:
        env["TELEVIKAR_NOW"] = now.isoformat()
    done = subprocess.run(
        [sys.executable, "-m", "televikar_pbx.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"televikar-pbx {' '.join(args)}: {done.stderr}"
    return done.stdout


def _stored_days(service: Service, customer_id: int, day: date) -> list[SlaAggregateRecord]:
    async def get() -> list[SlaAggregateRecord]:
        engine = make_engine(service.db_url)
        try:
            return await SlaRepository(make_sessionmaker(engine)).aggregates(
                customer_id, "day", day, day
            )
        finally:
            await engine.dispose()

    result: list[SlaAggregateRecord] = run_async(get)
    return result


def test_sla_report_of_real_calls_matches_the_figures_computed_by_hand(
    start_service: StartService, tmp_path: Path
) -> None:
    service: Service = start_service(_seed, ring_timeout_s="30")
    with sipp.agent_phone(1, workdir=tmp_path / "fast", answer_ms=2000):
        answered_2 = sipp.carrier_call(DID, workdir=tmp_path, talk_ms=3000, name="answer2")
        assert answered_2.ok, answered_2.describe()
    with sipp.agent_phone(1, workdir=tmp_path / "slow", answer_ms=15_000):
        answered_15 = sipp.carrier_call(DID, workdir=tmp_path, talk_ms=3000, name="answer15")
        assert answered_15.ok, answered_15.describe()
    with sipp.agent_phone(1, workdir=tmp_path / "never", answer_ms=120_000):
        for seconds in (5, 14):
            gave_up = sipp.carrier_call(
                DID, workdir=tmp_path, answer_timeout_s=seconds, name=f"giveup{seconds}"
            )
            assert not gave_up.ok  # the caller hung up unanswered
        # Nobody answers within the customer's 20 s: message capture, then the caller talks.
        message = sipp.carrier_message_call(
            DID,
            workdir=tmp_path,
            wait_ms=PROMPT_AND_BEEP_MS,
            talk_ms=2000,
            answer_timeout_s=30,
            name="message",
        )
        assert message.ok, message.describe()

    calls = [service.ended_call(n) for n in range(1, 6)]
    assert [c.outcome for c in calls] == [
        "answered",
        "answered",
        "abandoned",
        "abandoned",
        "message",
    ]

    # Each call's wait, as the SLA counts it (docs/metrics.md): until an agent answered,
    # the caller hung up, or message capture took the caller out of the queue.
    def wait(call: CallRecord) -> float:
        end = call.answered_at or call.ended_at
        captured = [e.at for e in service.events(call.id) if e.type == "message_capture"]
        end = captured[0] if captured else end
        assert end is not None
        return (end - call.arrived_at).total_seconds()

    waits = (2.0, 15.0, 5.0, 14.0, 20.0)
    measured = [wait(c) for c in calls]
    print("sla waits:", [round(w, 3) for w in measured])
    for call, expected, got in zip(calls, waits, measured, strict=True):
        assert abs(got - expected) <= WAIT_TOLERANCE_S, (call.id, expected, got)
    for call in calls[:2]:
        assert call.answered_at is not None and call.ended_at is not None
        talk = (call.ended_at - call.answered_at).total_seconds()
        assert abs(talk - 3.0) <= WAIT_TOLERANCE_S, (call.id, talk)

    first_day = calls[0].arrived_at.astimezone(OSLO).date()
    last_day = calls[-1].arrived_at.astimezone(OSLO).date()  # the same, unless at midnight

    # The normal nightly run: no --date, "now" early the next local morning, so it stores
    # the previous local day (that of the calls), as the timer's run would.
    morning = datetime.combine(last_day + timedelta(days=1), time(0, 30), OSLO)
    nightly = _cli(service, "sla", "nightly", "--no-send", now=morning)
    assert nightly.splitlines() == [f"Målt AS: stored {last_day}"]
    if first_day != last_day:  # the calls crossed local midnight: that day too
        _cli(service, "sla", "nightly", "--no-send", "--date", first_day.isoformat())
    report = json.loads(
        _cli(
            service,
            "sla",
            "report",
            "--customer",
            "Målt AS",
            "--from",
            first_day.isoformat(),
            "--to",
            last_day.isoformat(),
            "--format",
            "json",
        )
    )
    total = report["total"]

    # By hand, from the waits the phones produced: answered at 2 s and 15 s (talk 3 s
    # each), abandoned at 5 s (short) and 14 s (lost), a message after the 20 s maximum.
    assert report["definition_version"] == 1
    assert {
        key: total[key]
        for key in (
            "offered",
            "answered",
            "answered_within_12s",
            "answered_within_20s",
            "short_abandons",
            "lost",
            "messages",
            "sl12_pct",
            "sl20_pct",
            "lost_pct",
            "sl12_met",
            "sl20_met",
            "lost_met",
        )
    } == {
        "offered": 5,
        "answered": 2,
        "answered_within_12s": 1,  # 2 s
        "answered_within_20s": 2,  # 2 s and 15 s
        "short_abandons": 1,  # 5 s
        "lost": 1,  # 14 s
        "messages": 1,
        "sl12_pct": 25.0,  # 1 / (5 - 1 short abandon)
        "sl20_pct": 50.0,  # 2 / (5 - 1)
        "lost_pct": 20.0,  # 1 / 5
        "sl12_met": False,  # target 70 %
        "sl20_met": False,  # target 90 %
        "lost_met": False,  # target at most 5 %
    }
    assert abs(total["avg_wait_s"] - sum(waits) / 5) <= WAIT_TOLERANCE_S  # 11.2 s
    assert abs(total["longest_wait_s"] - 20.0) <= WAIT_TOLERANCE_S
    assert abs(total["avg_talk_s"] - 3.0) <= WAIT_TOLERANCE_S

    # The nightly job stored the same day figures the report computes.
    if first_day == last_day:
        stored = _stored_days(service, service.ids["c0"], first_day)
        assert len(stored) == 1
        assert stored[0].definition_version == 1
        assert stored[0].figures == report["periods"][0]

"""``staffing replay`` against a real day (issue 17 acceptance): sipp callers with known
arrivals and patience through the lab, then ``staffing replay`` of that day with the
agents that were logged in, whose SL12, SL20 and lost must come within 5 percentage
points of ``sla report`` for the same day. The sibling of test_sla_calls.py.

Two agents (phones answering after 1 s), wrap-up 0, maximum wait 30 s. Each of two
bursts: nine patient callers (talk 7 s) within a second, then, 1.5 s later, a caller
who gives up after 5 s and one who gives up after 14 s. The agents take the callers in
waves about 8.5 s apart (1 s of ringing, ~7.5 s of talk as the desk measures it):
answered after ~1, ~9, ~17 and ~25 s; the ninth reaches the maximum wait (message
capture at 30 s); the impatient two, last in the queue, give up (a short abandon and a
lost call). Every wait is a second or more away from 12 s, 20 s and the patience
limits, so the replay, whose agents answer after the day's median ring, meets the same
fate for every caller as the real one.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.calendar import Agreement
from televikar_pbx.domain.directory import CustomerRules
from tests.asterisk import sipp
from tests.asterisk.conftest import Service, StartService
from tests.asterisk.test_sla_calls import _cli

DID = "4721000012"
OSLO = ZoneInfo("Europe/Oslo")
AGENTS = 2
BURSTS = 2
PATIENT = 9
IMPATIENT_S = (5, 14)
CALLS = BURSTS * (PATIENT + len(IMPATIENT_S))
TOLERANCE_PP = 5.0


async def _seed(directory: DirectoryRepository) -> dict[str, int]:
    customer = await directory.add_customer(
        "Bemannet AS",
        "Bemannet",
        [DID],
        rules=CustomerRules(max_wait_s=30, wrap_up_s=0),
        agreement=Agreement(date(2026, 1, 1)),
    )
    ids = {"c0": customer.id}
    for n in range(1, AGENTS + 1):
        agent = await directory.add_agent(f"Agent {n}", f"agent{n}", [customer.id], logged_in=True)
        ids[f"a{n}"] = agent.id
    return ids


def _burst(workdir: Path, burst: int) -> None:
    """One burst of callers; returns when every one of them has hung up."""
    failures: list[BaseException] = []

    def caller(name: str, **kwargs: Any) -> threading.Thread:
        def run() -> None:
            try:
                sipp.carrier_call(DID, workdir=workdir, talk_ms=7000, name=name, **kwargs)
            except BaseException as exc:  # reported below, in the test's thread
                failures.append(exc)

        thread = threading.Thread(target=run, name=name)
        thread.start()
        return thread

    threads = [caller(f"patient{burst}", calls=PATIENT, rate=10.0, answer_timeout_s=60.0)]
    time.sleep(1.5)  # the impatient callers queue behind the patient ones
    for seconds in IMPATIENT_S:
        threads.append(
            caller(
                f"giveup{burst}_{seconds}",
                answer_timeout_s=float(seconds),
                caller_number=f"479000010{seconds}",
            )
        )
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), f"sipp caller {thread.name} did not finish"
    assert not failures, failures


def test_a_replay_with_the_logged_in_agents_gives_the_figures_of_sla_report(
    start_service: StartService, tmp_path: Path
) -> None:
    service: Service = start_service(_seed, ring_timeout_s="15")
    phones = [
        sipp.start_agent_phone(n, workdir=tmp_path / f"agent{n}", answer_ms=1000)
        for n in range(1, AGENTS + 1)
    ]
    try:
        for burst in range(BURSTS):
            _burst(tmp_path, burst)
    finally:
        for phone in phones:
            phone.stop()

    calls = [service.ended_call(n) for n in range(1, CALLS + 1)]
    outcomes = sorted(c.outcome or "" for c in calls)
    print("outcomes:", outcomes)
    # The day the scenario was built to give: per burst 8 answered, 2 abandoned, and the
    # ninth patient caller sent to message capture (a message of silence, or none).
    assert outcomes.count("answered") == BURSTS * (PATIENT - 1), outcomes
    assert outcomes.count("abandoned") == BURSTS * len(IMPATIENT_S), outcomes

    # The report's day range from the calls' own arrivals (a run may cross midnight).
    first = min(c.arrived_at for c in calls).astimezone(OSLO).date().isoformat()
    last = max(c.arrived_at for c in calls).astimezone(OSLO).date().isoformat()
    report = json.loads(
        _cli(service, "sla", "report", "--customer", "Bemannet AS", "--from", first,
             "--to", last, "--format", "json")
    )["total"]  # fmt: skip
    replay = json.loads(
        _cli(service, "staffing", "replay", "--date", first, "--to", last,
             "--agents", str(AGENTS), "--format", "json")
    )  # fmt: skip
    mine = replay["customers"][0]
    assert mine["name"] == "Bemannet AS"
    recorded, replayed = mine["recorded"]["day"]["total"], mine["replayed"]["day"]["total"]
    keys = ("offered", "answered", "short_abandons", "lost", "messages",
            "sl12_pct", "sl20_pct", "lost_pct", "avg_wait_s")  # fmt: skip
    print("ring delay used:", replay["ring_s"])
    print("sla report:", {k: report[k] for k in keys})
    print("replay:    ", {k: replayed[k] for k in keys})
    print(_cli(service, "staffing", "replay", "--date", first, "--to", last,
               "--agents", str(AGENTS)))  # fmt: skip

    # The recorded side is sla report's figures, exactly.
    assert recorded == report
    assert report["offered"] == CALLS and report["lost"] >= 1 and report["short_abandons"] >= 1
    assert report["answered_within_12s"] < report["answered"]  # the waves waited
    # The agents answered after about a second: the measured ring delay.
    assert 0.9 <= replay["ring_s"] <= 2.0, replay["ring_s"]
    for key in ("sl12_pct", "sl20_pct", "lost_pct"):
        assert abs(replayed[key] - report[key]) <= TOLERANCE_PP, (key, report, replayed)

    # The same agents as a roster replay the same; a third agent answers sooner.
    roster = tmp_path / "roster.csv"
    roster.write_text(f"from,agents\n00:00,{AGENTS}\n")
    by_roster = json.loads(
        _cli(service, "staffing", "replay", "--date", first, "--to", last,
             "--roster", str(roster), "--format", "json")
    )  # fmt: skip
    assert by_roster["customers"][0]["replayed"] == mine["replayed"]
    more = json.loads(
        _cli(service, "staffing", "replay", "--date", first, "--to", last,
             "--agents", str(AGENTS + 1), "--format", "json")
    )["customers"][0]["replayed"]["day"]["total"]  # fmt: skip
    print(f"with {AGENTS + 1} agents:", {k: more[k] for k in keys})
    assert more["avg_wait_s"] < replayed["avg_wait_s"]
    assert more["sl20_pct"] >= replayed["sl20_pct"]

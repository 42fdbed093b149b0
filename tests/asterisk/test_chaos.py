"""Chaos run (issue 6 acceptance): ~200 calls in ~60 s to 3 customers answered by 5
agents, while our process is killed once (restarted ~3 s later) and its ARI websocket is
cut once. Every call must be in the database exactly once, every caller must have been
answered (by an agent, the message prompt or an announcement: none left in silence),
calls in progress at the kill are adopted, routing to agents comes back after the
restart and after the cut, and each call's times agree with Asterisk's CDR."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from televikar_pbx.db.records import CallRecord
from televikar_pbx.domain.directory import CustomerRules
from tests.asterisk import sipp
from tests.asterisk.conftest import CDR_TOLERANCE_S, Service, StartService, poll
from tests.asterisk.test_desk import DIDS, seeder
from tests.asterisk.test_faults import cut_ari

CALLS_PER_CUSTOMER = 67
RATE_PER_CUSTOMER = 1.1  # calls/s: 3.3 calls/s in all, for ~61 s
DOWN_S = 3.0  # how long the killed service stays dead


def _open_calls(service: Service) -> tuple[int, int]:
    """Callers talking with agents, and callers waiting, per the database."""
    open_ = [c for c in service.calls() if c.ended_at is None]
    talking = sum(1 for c in open_ if c.answered_at is not None)
    return talking, len(open_) - talking


def _answered_by_agents_after(rows: list[CallRecord], instant: datetime) -> list[CallRecord]:
    return [r for r in rows if r.arrived_at > instant and r.outcome == "answered" and r.agent_id]


def _recovery_counts(service: Service, since: datetime) -> list[dict[str, object]]:
    """The counts of each recovery (logged when it found something) since ``since``."""
    lines = [json.loads(x) for x in service.log().splitlines() if '"recovery.done"' in x]
    return [
        x
        for x in lines
        if x.get("event") == "recovery.done"
        and datetime.fromisoformat(str(x["timestamp"])) >= since
    ]


def test_chaos_run_loses_no_call_and_leaves_no_caller_in_silence(
    start_service: StartService, tmp_path: Path
) -> None:
    # Agents 1..5 with overlapping customers; callers wait at most 15 s, then message.
    skills = ((0, 1), (1, 2), (0, 2), (0,), (1, 2))
    service: Service = start_service(
        seeder(customers=3, agents=skills, rules=CustomerRules(wrap_up_s=0, max_wait_s=15)),
        ring_timeout_s="8",
        ari_reconnect_max_s="1",
    )
    with ExitStack() as stack, ThreadPoolExecutor(3) as pool:
        for n in range(1, 6):
            stack.enter_context(sipp.agent_phone(n, workdir=tmp_path / "agents", answer_ms=300))
        carriers = [
            pool.submit(
                sipp.carrier_call,
                did,
                workdir=tmp_path,
                calls=CALLS_PER_CUSTOMER,
                rate=RATE_PER_CUSTOMER,
                talk_ms=1500,
                answer_timeout_s=40,
                # sipp's default limit (3 x rate x call length) holds new calls back
                # while callers queue, stretching the run past its time limit.
                max_concurrent=CALLS_PER_CUSTOMER,
                caller_number=f"479000{n:04d}",
                name=f"carrier{n}",
            )
            for n, did in enumerate(DIDS)
        ]
        # Kill once callers talk with agents and others wait (arrivals outpace 5 agents,
        # so a queue builds): the waiting ones outlive the outage and are to be adopted.
        poll(
            lambda: (n := _open_calls(service))[0] >= 1 and n[1] >= 3,
            40,
            "connected calls and three waiting callers",
        )
        open_at_kill = {c.channel_id for c in service.calls() if c.ended_at is None}
        killed_at = datetime.now(UTC)
        service.stop(signal.SIGKILL)
        time.sleep(DOWN_S)  # the outage itself, not a wait for some state
        service.launch()
        restarted_at = datetime.now(UTC)
        poll(lambda: _recovery_counts(service, killed_at), 15, "recovery after the restart")
        # Routing comes back: callers arriving after the restart reach agents.
        poll(
            lambda: len(_answered_by_agents_after(service.calls(), restarted_at)) >= 3,
            30,
            "three calls placed after the restart answered by agents",
        )
        disconnects = service.log().count('"ari.disconnected"')
        assert cut_ari(service, 1.5) >= 1  # sockets ss -K reported as killed
        # ... and the service saw its websocket go (ss -K can silently do nothing).
        poll(
            lambda: service.log().count('"ari.disconnected"') > disconnects,
            5,
            "the service to notice the cut websocket",
        )
        service.wait_connected()
        reconnected_at = datetime.now(UTC)
        poll(
            lambda: len(_answered_by_agents_after(service.calls(), reconnected_at)) >= 3,
            30,
            "three calls placed after the ARI cut answered by agents",
        )
        results = [c.result() for c in carriers]

    placed = sum(r.calls for r in results)
    for result in results:
        # Every caller got a 200 OK (agent, prompt or announcement) and hung up normally.
        assert result.ok, result.describe()
    rows = poll(
        lambda: (c := service.calls()) and len(c) >= placed and all(x.ended_at for x in c) and c,
        30,
        "every call to be recorded and ended",
    )
    assert len(rows) == placed
    assert len({r.channel_id for r in rows}) == placed  # each exactly once
    outcomes = {r.outcome for r in rows}
    assert outcomes <= {"answered", "message", "no_message"}, outcomes

    # Calls open at the kill: taken back by the restarted service (journal "adopted"),
    # or, when they ended while it was dead, closed once from Asterisk's CDR.
    by_channel = {r.channel_id: r for r in rows}
    adopted = []
    for channel_id in open_at_kill:
        row = by_channel[channel_id]
        assert row.ended_at is not None
        journal = [e.type for e in service.events(row.id)]
        if row.ended_at > restarted_at:
            assert journal.count("adopted") == 1, (row, journal)
            adopted.append(row)
        elif row.ended_at > killed_at:
            assert "adopted" not in journal, (row, journal)
        assert journal.count("ended") == 1, (row, journal)
    assert len(adopted) >= 1, "no call in progress at the kill was adopted"
    first_recovery = _recovery_counts(service, killed_at)[0]
    assert isinstance(first_recovery["adopted"], int) and first_recovery["adopted"] >= len(adopted)
    # (Not every agent need take calls afterwards: offers lost while the websocket was cut
    # count as missed, and three in a row pause an agent automatically; seen for agent2.)

    worst = 0.0
    late = []
    for row in rows:
        cdr = service.lab.cdr_row(row.channel_id)
        assert cdr is not None, f"no CDR for {row.channel_id}"
        assert row.ended_at is not None
        start_off = abs((cdr.start - row.arrived_at).total_seconds())
        end_off = abs((cdr.end - row.ended_at).total_seconds())
        worst = max(worst, start_off, end_off)
        if max(start_off, end_off) > CDR_TOLERANCE_S:
            late.append((row.channel_id, row.outcome, round(start_off, 3), round(end_off, 3)))
    print(f"chaos: worst CDR offset {worst:.3f} s over {len(rows)} calls")  # seen: 0.013, 0.099 s
    assert late == []

"""Chaos run (issue 6 acceptance): ~200 calls in ~60 s to 3 customers answered by 5
agents, while our process is killed once (restarted ~3 s later) and its ARI websocket is
cut once. Every call must be in the database exactly once, every caller must have been
answered (by an agent, the message prompt or an announcement: none left in silence),
and each call's times must agree with Asterisk's CDR within 1 s."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from televikar_pbx.domain.directory import CustomerRules
from tests.asterisk import sipp
from tests.asterisk.conftest import Service, StartService, poll
from tests.asterisk.test_desk import DIDS, seeder
from tests.asterisk.test_faults import _drop_ari

CALLS_PER_CUSTOMER = 67
RATE_PER_CUSTOMER = 1.1  # calls/s: 3.3 calls/s in all, for ~61 s
CDR_TOLERANCE_S = 1.0


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
                caller_number=f"479000{n:04d}",
                name=f"carrier{n}",
            )
            for n, did in enumerate(DIDS)
        ]
        time.sleep(20)
        service.stop(signal.SIGKILL)
        time.sleep(3)
        service.launch()
        time.sleep(17)
        assert _drop_ari(service, 1.5) >= 1
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
    late = []
    for row in rows:
        cdr = service.lab.cdr_row(row.channel_id)
        assert cdr is not None, f"no CDR for {row.channel_id}"
        assert row.ended_at is not None
        start_off = abs((cdr.start - row.arrived_at).total_seconds())
        end_off = abs((cdr.end - row.ended_at).total_seconds())
        if max(start_off, end_off) >= CDR_TOLERANCE_S:
            late.append((row.channel_id, row.outcome, round(start_off, 2), round(end_off, 2)))
    assert late == []

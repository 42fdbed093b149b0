"""How many callers can wait at once in our queues, and what each costs in RSS.

A fresh service with one agent per customer whose phone never answers (ring timeout
longer than the run, so nobody is ever paused for missing calls): the first caller of
each customer rings that agent, every later one waits, ringing. Callers arrive at a
steady rate; each hangs up at the same moment, after the last has arrived. Meanwhile the
harness reads our RSS and the ``status`` API (its count of waiting callers, and how
long it took to answer) twice a second. Afterwards the carrier's log says how quickly
each arrival was rung (INVITE -> 180 Ringing), grouped by how many callers were already
waiting.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from benchmarks.loadbench import procs, sipp
from benchmarks.loadbench.service import Seed
from benchmarks.loadbench.stats import carrier_calls, first_degraded, waiting_buckets

if TYPE_CHECKING:
    from benchmarks.load import Bench

HOLD_S = 5.0  # everybody waits at least this long after the last arrival
NEVER_MS = 3_600_000  # the agents' answer delay: never, within a run


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x; None for fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx


def run_waiting(bench: Bench, callers: int, rate: float) -> dict[str, Any]:
    cfg = bench.config
    bench.start_agents("waiting_agents", NEVER_MS)
    ring_timeout_s = int(callers / rate + HOLD_S + 600)
    service = bench.start_service(
        "waiting", Seed(cfg.customers, cfg.customers, one_agent_per_customer=True), ring_timeout_s
    )
    ast = bench.asterisk
    rss_before = procs.rss_kb(service.pid)
    ast_rss_before = procs.rss_kb(ast.pid)
    end_s = time.time() + callers / rate + HOLD_S
    carrier = sipp.start_carrier(
        bench.workdir, "waiting", target="127.0.0.1:5160", dids_file=bench.dids_file("ours"),
        prefix=bench.next_prefix(), rate=rate, calls=callers,
        variables={"end_s": f"{end_s:.3f}"}, waiting=True,
    )  # fmt: skip
    samples: list[dict[str, float]] = []
    deadline = end_s + 60
    while not carrier.finished() and time.time() < deadline:
        t = time.time()
        try:
            waiting = service.waiting()
        except OSError:
            waiting = -1
        samples.append(
            {
                "t": round(t - carrier.started, 2),
                "waiting": waiting,
                "status_ms": round((time.time() - t) * 1000, 1),
                "rss_kb": procs.rss_kb(service.pid),
                "asterisk_rss_kb": procs.rss_kb(ast.pid),
            }
        )
        time.sleep(0.5)
    carrier.wait(max(1.0, deadline - time.time()))
    calls = carrier_calls(carrier.messages())
    buckets = waiting_buckets(calls, size=100)
    ramp = [s for s in samples if s["waiting"] >= 50 and s["t"] <= end_s - carrier.started]
    per_waiting = slope([(s["waiting"], s["rss_kb"]) for s in ramp])
    ast_per_waiting = slope([(s["waiting"], s["asterisk_rss_kb"]) for s in ramp])
    peak = max(samples, key=lambda s: s["waiting"], default=None)
    rss_peak = max((s["rss_kb"] for s in samples), default=rss_before)
    result: dict[str, Any] = {
        "customers": cfg.customers,
        "rate": rate,
        "placed": len(calls),
        "peak_waiting": int(peak["waiting"]) if peak else 0,
        "status_ms_at_peak": peak["status_ms"] if peak else None,
        "degraded_at": first_degraded(buckets),
        "rss_before_kb": rss_before,
        "rss_peak_kb": rss_peak,
        "rss_per_waiting_kb": None if per_waiting is None else round(per_waiting, 2),
        "rss_growth_per_waiting_kb": round((rss_peak - rss_before) / peak["waiting"], 2)
        if peak and peak["waiting"] > 0
        else None,
        "asterisk_rss_before_kb": ast_rss_before,
        "asterisk_rss_per_waiting_kb": None
        if ast_per_waiting is None
        else round(ast_per_waiting, 2),
        "buckets": [
            {
                "first": b.first,
                "last": b.last,
                "ringing_ms": b.ringing.as_dict(),
                "failed": b.failed,
            }
            for b in buckets
        ],
        "samples": samples,
    }
    print(
        f"  {len(calls)} callers at {rate:g}/s: peak {result['peak_waiting']} waiting, "
        f"degraded at {result['degraded_at']}, RSS {rss_before // 1024} -> "
        f"{rss_peak // 1024:.0f} MB, {result['rss_growth_per_waiting_kb']} KB/caller "
        f"(slope {result['rss_per_waiting_kb']} KB)",
        flush=True,
    )
    bench.wait_quiet(service.pid, "waiting", limit_s=30.0)  # the callers' records
    bench.stop_service()
    bench.stop_agents()
    bench.clean_up_channels("waiting")
    return result

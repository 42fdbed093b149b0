"""``load.py --with-message-burst N``: does a burst of messages hurt routing?

Our service on a fresh database, its SMTP settings pointed at an aiosmtpd in this process
(benchmarks/messages_burst.py), every customer with one e-mail recipient. After a short
warm-up, ``--burst-rounds`` rounds (default 3) of two steps of calls at the same rate:
quiet, then right after N agent messages were saved into the service's database in one
transaction (from another connection, as ``messages take`` does), while the service's
own delivery worker sends them; each round waits for its burst to be delivered. Routing
latency per round and pooled over the rounds, the ratio of the pooled p99s with its 95 %
bootstrap interval, and how long each burst took to arrive. One pair of 20 s steps has
200 calls each, so its p99 is the second-slowest call: pooling the rounds is what makes
the ratio mean something (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import math
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from benchmarks.loadbench.service import Seed
from benchmarks.loadbench.stats import Comparison, Summary, compare, routing_latencies_ms
from benchmarks.messages_burst import (
    DEADLINE_S,
    BurstResult,
    Sink,
    add_recipients,
    run_burst,
    smtp_env,
    start_smtp,
)
from televikar_pbx.db import models
from televikar_pbx.db.engine import make_engine, make_sessionmaker

if TYPE_CHECKING:
    from benchmarks.load import Bench

WARM_UP_S = 5.0


async def _customer_ids(db_url: str) -> list[int]:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as s:
            return list(await s.scalars(select(models.Customer.id).order_by(models.Customer.id)))
    finally:
        await engine.dispose()


def _routing(got: dict[str, Any]) -> dict[str, Any]:
    r = got["routing"]
    return {
        "placed": got["placed"],
        "failed": got["failed"],
        "routing_p50_ms": round(r.p50, 1),
        "routing_p99_ms": round(r.p99, 1),
        "routing_max_ms": round(r.max, 1),
        "ours_cpu_s": None if got["ours_cpu_s"] is None else round(got["ours_cpu_s"], 1),
        "other_load_cores": round(got["other_load_cores"], 2),
    }


def _pooled(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds' steps of one condition as one: calls and failures summed, latency
    over all their calls, CPU summed, other load averaged."""
    latencies = [x for got in steps for x in routing_latencies_ms(got["calls"], got["offers"])]
    return _routing(
        {
            "placed": sum(got["placed"] for got in steps),
            "failed": sum(got["failed"] for got in steps),
            "routing": Summary.of(latencies),
            "ours_cpu_s": None
            if any(got["ours_cpu_s"] is None for got in steps)
            else sum(got["ours_cpu_s"] for got in steps),
            "other_load_cores": sum(got["other_load_cores"] for got in steps) / len(steps),
        }
    )


def verdict(c: Comparison, failed: int) -> bool | None:
    """Routing "does not get worse" while a burst is delivered, as far as a measurement
    can say: no call failed, and the pooled p99 with the burst is within 10 % of the
    quiet one (the tolerance issue 14 sets for the desk pages) while the 95 % interval
    of the ratio reaches 1.0 (so the difference is not one chance would rarely give).
    None: nothing to compare."""
    if math.isnan(c.ratio):
        return None
    return failed == 0 and c.ratio <= 1.10 and c.ratio_low <= 1.0


def _burst(
    done: list[BurstResult], db_url: str, ids: list[int], count: int, sink: Sink,
    saved: threading.Event,
) -> None:  # fmt: skip
    done.append(run_burst(db_url, ids, count, sink, True, saved))


def run_burst_phase(bench: Bench, count: int, rate: float, rounds: int = 3) -> dict[str, Any]:
    """``rounds`` times: a quiet step, then a burst of ``count`` and a step beside it,
    then the burst's end is awaited (so the next quiet step is quiet). Alternating
    spreads slow drifts of the machine over both conditions."""
    cfg = bench.config
    sink = Sink()
    controller, port = start_smtp(sink)
    quiet: list[dict[str, Any]] = []
    loaded: list[dict[str, Any]] = []
    bursts: list[dict[str, Any]] = []
    try:
        bench.start_agents("agents_burst", cfg.answer_ms)
        service = bench.start_service(
            "ours_burst", Seed(cfg.customers, cfg.agents), cfg.ring_timeout_s, env=smtp_env(port)
        )
        ids = asyncio.run(_customer_ids(service.db_url))
        asyncio.run(add_recipients(service.db_url, ids))
        bench.run_calls("ours", rate, WARM_UP_S, f"burst_warm_up_{rate:g}")
        bench.clean_up_channels("burst_warm_up")
        for n in range(1, rounds + 1):
            quiet.append(bench.run_calls("ours", rate, cfg.step_s, f"burst_quiet_{rate:g}_{n}"))
            bench.clean_up_channels(f"burst_quiet_{n}")
            done: list[BurstResult] = []
            saved = threading.Event()
            burst = threading.Thread(
                target=_burst, args=(done, service.db_url, ids, count, sink, saved),
                name="message-burst",
            )  # fmt: skip
            burst.start()
            # The calls start once the burst is committed, so its delivery (not the
            # saving of a thousand messages by this process) is what runs beside routing.
            saved.wait(DEADLINE_S)
            loaded.append(bench.run_calls("ours", rate, cfg.step_s, f"burst_loaded_{rate:g}_{n}"))
            burst.join(DEADLINE_S + 60)
            bench.clean_up_channels(f"burst_loaded_{n}")
            bursts.append(
                done[0].as_dict() if done else {"problems": [f"burst {n} did not finish"]}
            )
    finally:
        bench.stop_service()
        controller.stop()
    comparison = compare(
        [x for got in quiet for x in routing_latencies_ms(got["calls"], got["offers"])],
        [x for got in loaded for x in routing_latencies_ms(got["calls"], got["offers"])],
    )
    pooled_quiet, pooled_loaded = _pooled(quiet), _pooled(loaded)
    return {
        "rate": rate,
        "rounds": [
            {"quiet": _routing(q), "with_burst": _routing(w), "burst": b}
            for q, w, b in zip(quiet, loaded, bursts, strict=True)
        ],
        "quiet": pooled_quiet,
        "with_burst": pooled_loaded,
        "comparison": comparison.as_dict(),
        "goal_met": verdict(comparison, pooled_quiet["failed"] + pooled_loaded["failed"]),
        "burst": bursts[-1] if bursts else {"problems": ["no burst ran"]},
    }

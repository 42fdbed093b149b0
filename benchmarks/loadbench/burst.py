"""``load.py --with-message-burst N``: does a burst of messages hurt routing?

Our service on a fresh database, its SMTP settings pointed at an aiosmtpd in this process
(benchmarks/messages_burst.py), every customer with one e-mail recipient. Two steps of
calls at the same rate, one after the other: quiet, then right after N agent messages
were saved into the service's database in one transaction (from another connection, as
``messages take`` does), while the service's own delivery worker sends them.
Routing latency of both steps side by side, and how long the burst took to arrive.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from benchmarks.loadbench.service import Seed
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


def run_burst_phase(bench: Bench, count: int, rate: float) -> dict[str, Any]:
    cfg = bench.config
    sink = Sink()
    controller, port = start_smtp(sink)
    try:
        bench.start_agents("agents_burst", cfg.answer_ms)
        service = bench.start_service(
            "ours_burst", Seed(cfg.customers, cfg.agents), cfg.ring_timeout_s, env=smtp_env(port)
        )
        ids = asyncio.run(_customer_ids(service.db_url))
        asyncio.run(add_recipients(service.db_url, ids))
        quiet = bench.run_calls("ours", rate, cfg.step_s, f"burst_quiet_{rate:g}")
        bench.clean_up_channels("burst_quiet")
        done: list[BurstResult] = []
        saved = threading.Event()
        burst = threading.Thread(
            target=lambda: done.append(run_burst(service.db_url, ids, count, sink, True, saved)),
            name="message-burst",
        )
        burst.start()
        # The calls start once the burst is committed, so its delivery (not the saving
        # of a thousand messages by this process) is what runs beside the routing.
        saved.wait(DEADLINE_S)
        loaded = bench.run_calls("ours", rate, cfg.step_s, f"burst_loaded_{rate:g}")
        burst.join(DEADLINE_S + 60)
        bench.clean_up_channels("burst_loaded")
    finally:
        bench.stop_service()
        controller.stop()
    result = done[0].as_dict() if done else {"problems": ["the burst did not finish"]}
    return {"rate": rate, "quiet": _routing(quiet), "with_burst": _routing(loaded)} | {
        "burst": result
    }

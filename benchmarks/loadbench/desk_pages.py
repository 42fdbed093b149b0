"""The desk's web pages under load (issue 14's benchmark requirement): two phases of
``load.py``, each on our service with its web desk on (a desk user per agent, pages =
logged-in aiohttp connections to ``GET /events``; benchmarks/loadbench/pages.py).

``--with-screen-pop [CALLS]``: screen-pop latency (the agent phone's INVITE -> the
``offered`` card on a page) with 1, 10 and 100 pages connected, one step each of CALLS
calls at ``--pop-rate``. One customer served by one agent, and every page follows that
agent, so every page receives every pop: the 100-page step fans each pop out 100 times.
Short calls (the agent answers after ``--pop-answer-ms``, the caller hangs up
``--pop-talk-ms`` later) keep the one agent free for the next call.

``--with-desk-pages [N]``: routing latency at ``--pages-rate`` (default 16 calls/s, 80 %
of our sustained 20) on the usual 50 agents and 5 customers, as ``make bench`` routes:
``--pages-rounds`` rounds (default 6) of one step with no page connected, then one with
N pages connected during the step (N sessions, spread over the agents in turn: 100 pages
= 2 per agent, each agent's desk open twice, so every call's pop reaches 2 pages).
Routing p50/p99 per round and pooled over the rounds, the ratio of the pooled p99s with
its 95 % bootstrap interval (goal: with <= 1.10 x without), and the pops the pages got.
A round during which other work used the machine (``DISTURBED_CORES``) is run again.
A 20 s step at 16 calls/s has 320 calls, so its p99 is the fourth-slowest call: one
pair of steps gave ratios from 0.90 to 1.30 for the same code, and three pooled pairs
could still be decided by one short slow episode (docs/performance.md).
A short warm-up step (not counted) comes first, so that neither measured step pays for
the fresh service's first calls.
"""

from __future__ import annotations

import math
import secrets
import subprocess
import time
import urllib.request
from typing import TYPE_CHECKING, Any

from benchmarks.loadbench import procs
from benchmarks.loadbench.pages import Pages, PopFigures, add_desk_users, pop_figures
from benchmarks.loadbench.profile import summarize
from benchmarks.loadbench.service import Seed
from benchmarks.loadbench.stats import Summary, compare, routing_latencies_ms

if TYPE_CHECKING:
    from benchmarks.load import Bench

WARM_UP_S = 5.0


def web_env() -> tuple[dict[str, str], str]:
    """serve's settings for the web desk on a free port, and its base URL."""
    port = procs.free_tcp_port()
    env = {
        "TELEVIKAR_WEB_SECRET": secrets.token_urlsafe(32),
        "TELEVIKAR_WEB_HOST": "127.0.0.1",
        "TELEVIKAR_WEB_PORT": str(port),
    }
    return env, f"http://127.0.0.1:{port}"


def wait_for_web(base_url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/login", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the web desk did not answer on {base_url} in {timeout_s:.0f} s")
        time.sleep(0.2)


def _routing(got: dict[str, Any]) -> dict[str, Any]:
    r = got["routing"]
    return {
        "placed": got["placed"],
        "failed": got["failed"],
        "routing_p50_ms": round(r.p50, 1),
        "routing_p99_ms": round(r.p99, 1),
        "routing_max_ms": round(r.max, 1),
        "ours_cpu_s": None if got["ours_cpu_s"] is None else round(got["ours_cpu_s"], 1),
        "harness_cpu_s": round(got.get("harness_cpu_s", math.nan), 1),
        "other_load_cores": round(got["other_load_cores"], 2),
    }


def _start(bench: Bench, name: str, seed: Seed, answer_ms: int) -> tuple[Pages, dict[str, int]]:
    bench.start_agents(f"agents_{name}", answer_ms)
    env, base = web_env()
    service = bench.start_service(name, seed, bench.config.ring_timeout_s, env=env)
    wait_for_web(base)
    return Pages(base), add_desk_users(service.db_url)


def run_screen_pop_phase(
    bench: Bench,
    counts: tuple[int, ...],
    calls: int,
    rate: float,
    answer_ms: int,
    talk_ms: int,
) -> dict[str, Any]:
    pages, users = _start(bench, "ours_pop", Seed(1, 1), answer_ms)
    assert bench.service is not None
    steps: list[dict[str, Any]] = []
    try:
        [(username, agent_id)] = users.items()
        pages.log_in([(username, agent_id)] * max(counts))  # one session per page
        bench.wait_quiet(bench.service.pid, "screen pop: log-ins")
        for n in counts:
            pages.open_pages(pages.sessions[:n])
            try:
                got = bench.run_calls(
                    "ours", rate, calls / rate, f"pop_{n}", customers=1, talk_ms=talk_ms
                )
            finally:
                time.sleep(0.5)  # the last events of the last call
                feeds = pages.close_pages()
            bench.clean_up_channels(f"pop_{n}")
            pops = pop_figures(got["offers"], feeds)
            steps.append({"pages": n, **_routing(got), "pop": pops.as_dict()})
            print(f"  {pop_line(n, pops)}", flush=True)
    finally:
        pages.close()
        bench.stop_service()
    return {
        "rate": rate,
        "calls": calls,
        "answer_ms": answer_ms,
        "talk_ms": talk_ms,
        "steps": steps,
    }


def pop_line(n: int, pops: PopFigures) -> str:
    p, last = pops.per_page, pops.last_page
    return (
        f"{n:3d} page(s): {pops.calls} calls, {p.n} pops, INVITE->page ms "
        f"min {p.min:.1f} p50 {p.p50:.1f} p99 {p.p99:.1f} max {p.max:.1f}; last page of a "
        f"call p50 {last.p50:.1f} p99 {last.p99:.1f}; missing {pops.missing}"
    )


def _step(bench: Bench, rate: float, name: str, profile: bool) -> dict[str, Any]:
    """A step of calls, with py-spy on our service meanwhile if ``profile``."""
    spy = bench.start_profile(name) if profile else None
    got = bench.run_calls("ours", rate, bench.config.step_s, name)
    if spy is not None:
        proc, out = spy
        try:
            proc.wait(30)
            procs.forget(proc)
        except subprocess.TimeoutExpired:
            procs.stop(proc)
        if out.is_file():
            got["profile"] = {"file": str(out), **summarize(out.read_text())}
    return got


def _pooled(steps: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [x for got in steps for x in routing_latencies_ms(got["calls"], got["offers"])]
    return _routing(
        {
            "placed": sum(got["placed"] for got in steps),
            "failed": sum(got["failed"] for got in steps),
            "routing": Summary.of(latencies),
            "ours_cpu_s": None
            if any(got["ours_cpu_s"] is None for got in steps)
            else sum(got["ours_cpu_s"] for got in steps),
            "harness_cpu_s": sum(got.get("harness_cpu_s", math.nan) for got in steps),
            "other_load_cores": sum(got["other_load_cores"] for got in steps) / len(steps),
        }
    )


# A round during which other work took more than this much CPU (cores, in either step)
# is run again (at most as many times as there are rounds): the ratio compares our
# service with and without pages, not with and without someone else's test suite.
DISTURBED_CORES = 0.10


def disturbed(*steps: dict[str, Any]) -> bool:
    return any(got["other_load_cores"] > DISTURBED_CORES for got in steps)


def run_desk_pages_phase(
    bench: Bench, count: int, rate: float, profile: bool = False, rounds: int = 6
) -> dict[str, Any]:
    """``rounds`` pairs of steps, without pages then with them, pooled (see module doc)."""
    cfg = bench.config
    pages, users = _start(bench, "ours_pages", Seed(cfg.customers, cfg.agents), cfg.answer_ms)
    assert bench.service is not None
    without: list[dict[str, Any]] = []
    loaded: list[dict[str, Any]] = []
    discarded: list[dict[str, Any]] = []
    feeds: list[Any] = []
    try:
        ordered = sorted(users.items(), key=lambda kv: kv[1])
        pages.log_in([ordered[i % len(ordered)] for i in range(count)])
        bench.wait_quiet(bench.service.pid, "desk pages: log-ins")
        bench.run_calls("ours", rate, WARM_UP_S, f"pages_warm_up_{rate:g}")
        bench.clean_up_channels("pages_warm_up")
        bench.wait_quiet(bench.service.pid, "desk pages: warm-up")
        n = 0
        while len(without) < rounds and n < 2 * rounds:
            n += 1
            none = _step(bench, rate, f"pages_none_{rate:g}_{n}", profile)
            bench.clean_up_channels(f"pages_none_{n}")
            pages.open_pages(pages.sessions)
            try:
                with_pages = _step(bench, rate, f"pages_{count}_{rate:g}_{n}", profile)
            finally:
                feed = pages.close_pages()
            bench.clean_up_channels(f"pages_{count}_{n}")
            if disturbed(none, with_pages) and n < 2 * rounds:
                discarded.append({"without": _routing(none), "with_pages": _routing(with_pages)})
                print(f"  round {n} discarded: other work on the machine", flush=True)
                continue
            without.append(none)
            loaded.append(with_pages)
            feeds.append(feed)
    finally:
        pages.close()
        bench.stop_service()
    pops = [pop_figures(got["offers"], f) for got, f in zip(loaded, feeds, strict=True)]
    comparison = compare(
        [x for got in without for x in routing_latencies_ms(got["calls"], got["offers"])],
        [x for got in loaded for x in routing_latencies_ms(got["calls"], got["offers"])],
    )
    before, after = _pooled(without), _pooled(loaded)
    c = comparison.as_dict()
    return {
        "rate": rate,
        "pages": count,
        "agents_followed": len({agent for agent, _ in feeds[-1]}) if feeds else 0,
        "rounds": [
            {"without": _routing(w), "with_pages": _routing(p)}
            for w, p in zip(without, loaded, strict=True)
        ],
        "discarded_rounds": discarded,
        "without": before,
        "with_pages": after,
        "comparison": c,
        "p99_ratio": c["p99_ratio"],
        "p50_ratio": c["p50_ratio"],
        "goal_met": None
        if c["p99_ratio"] is None
        else before["failed"] + after["failed"] == 0 and comparison.ratio <= 1.10,
        "pop": pops[-1].as_dict() if pops else None,
        "pops_per_round": [p.as_dict() for p in pops],
        "profiles": {
            f"{k}_{n}": got["profile"]
            for k, steps in (("without", without), ("with_pages", loaded))
            for n, got in enumerate(steps, 1)
            if "profile" in got
        },
    }

"""Issue 15's comparison and goals, from one run's steps. Pure: steps in, dicts out.

Side by side at each rate both ran: our desk against Queue(), routing latency and CPU
per call. "Total" CPU per call under our desk is ours plus Asterisk's; under Queue() it
is Asterisk's alone. The goals (issue 15, "Then the routing path"):

- sustained rate (no failed call, p99 routing under the limit) at least Queue()'s;
- routing p50 <= 5 ms and p99 <= 20 ms at 80 % of our sustained rate;
- our CPU per call <= 10 ms;
- Asterisk's CPU per call under our desk within 25 % of its CPU per call under Queue();
- 1,000 callers waiting at once, under 100 KB of our RSS each.

The CPU goals take the median over the rates at which both systems passed (the same
rates, each below both limits; a median, because the machine's speed drifts from one
minute to the next). A goal whose steps are missing is "not measured" (``met`` None),
never met.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from benchmarks.loadbench.stats import StepFigures, percentile

ROUTING_P50_MS = 5.0
ROUTING_P99_MS = 20.0
OUR_CPU_MS = 10.0
ASTERISK_RATIO = 1.25
WAITING = 1000
WAITING_KB = 100.0


def _clean(x: float | None, digits: int = 2) -> float | None:
    return None if x is None or math.isnan(x) else round(x, digits)


def _median(values: Sequence[float]) -> float | None:
    return percentile(values, 50) if values else None


def _counted(steps: Sequence[StepFigures], system: str) -> dict[float, StepFigures]:
    """The step that counts at each rate (a repeated step counts by its repeat)."""
    return {s.rate: s for s in steps if s.system == system and not s.superseded}


def side_by_side(steps: Sequence[StepFigures], limit_ms: float) -> list[dict[str, Any]]:
    """One row per rate at which both our desk and Queue() ran, lowest first."""
    ours, queue = _counted(steps, "ours"), _counted(steps, "queue")
    rows = []
    for rate in sorted(set(ours) & set(queue)):
        o, q = ours[rate], queue[rate]
        our_cpu = o.ours_cpu_ms_per_call
        total = None if our_cpu is None else our_cpu + o.asterisk_cpu_ms_per_call
        q_cpu = q.asterisk_cpu_ms_per_call
        rows.append(
            {
                "rate": rate,
                "ours_passed": o.passed(limit_ms),
                "queue_passed": q.passed(limit_ms),
                "ours_routing_p50_ms": _clean(o.routing.p50),
                "ours_routing_p99_ms": _clean(o.routing.p99),
                "queue_routing_p50_ms": _clean(q.routing.p50),
                "queue_routing_p99_ms": _clean(q.routing.p99),
                "ours_cpu_ms": _clean(our_cpu),
                "ours_asterisk_cpu_ms": _clean(o.asterisk_cpu_ms_per_call),
                "ours_total_cpu_ms": _clean(total),
                "queue_asterisk_cpu_ms": _clean(q_cpu),
                "total_cpu_ratio": _clean(total / q_cpu, 3) if total and q_cpu else None,
                "asterisk_cpu_ratio": _clean(o.asterisk_cpu_ms_per_call / q_cpu, 3)
                if q_cpu
                else None,
                "routing_p50_ratio": _clean(o.routing.p50 / q.routing.p50, 3)
                if q.routing.p50
                else None,
            }
        )
    return rows


def _sustained_text(rate: float | None, stopped: str) -> str:
    if rate is None:
        return "none"
    return f"{rate:g}" + ("" if stopped.startswith("failed") else " or more")


def ratios(
    steps: Sequence[StepFigures],
    sustained: dict[str, float | None],
    stopped: dict[str, str],
    limit_ms: float,
) -> dict[str, Any]:
    """Ours / Queue(): the sustained rates, and CPU per call at the same rates."""
    rows = side_by_side(steps, limit_ms)
    both = [r for r in rows if r["ours_passed"] and r["queue_passed"]]
    ours, queue = sustained.get("ours"), sustained.get("queue")
    # Only a rate at which a system failed is its limit; "passed every step" (or
    # stopped for want of agents) means its limit lies higher, so the ratio is a bound.
    found = {k: stopped.get(k, "").startswith("failed") for k in ("ours", "queue")}
    if ours is not None and queue:
        rate_ratio: float | None = ours / queue
        if found["ours"] and found["queue"]:
            bound = "exact"
        elif found["ours"]:
            bound = "at most"  # Queue()'s limit lies higher
        elif found["queue"]:
            bound = "at least"
        else:
            bound = "unknown"  # neither limit found in this run
    else:
        rate_ratio, bound = None, "not measured"
    return {
        "per_rate": rows,
        "sustained": {
            "ours": ours,
            "queue": queue,
            "ours_text": _sustained_text(ours, stopped.get("ours", "")),
            "queue_text": _sustained_text(queue, stopped.get("queue", "")),
            "ratio": _clean(rate_ratio, 3),
            "bound": bound,
        },
        "rates_both_passed": [r["rate"] for r in both],
        "median_ours_cpu_ms": _clean(_median([r["ours_cpu_ms"] for r in both if r["ours_cpu_ms"]])),
        "median_ours_total_cpu_ms": _clean(
            _median([r["ours_total_cpu_ms"] for r in both if r["ours_total_cpu_ms"]])
        ),
        "median_queue_cpu_ms": _clean(_median([r["queue_asterisk_cpu_ms"] for r in both])),
        "median_total_cpu_ratio": _clean(
            _median([r["total_cpu_ratio"] for r in both if r["total_cpu_ratio"]]), 3
        ),
        "median_asterisk_cpu_ratio": _clean(
            _median([r["asterisk_cpu_ratio"] for r in both if r["asterisk_cpu_ratio"]]), 3
        ),
    }


def _goal(goal: str, met: bool | None, detail: str) -> dict[str, Any]:
    return {"goal": goal, "met": met, "detail": detail}


def rate_goal(comparison: dict[str, Any], stopped: dict[str, str]) -> dict[str, Any]:
    s = comparison["sustained"]
    ours, queue = s["ours"], s["queue"]
    goal = "sustained rate (no failed call, p99 routing < 100 ms) >= Queue()'s in the same run"
    detail = (
        f"ours {s['ours_text']} calls/s ({stopped.get('ours', 'not run')}), Queue() "
        f"{s['queue_text']} calls/s ({stopped.get('queue', 'not run')})"
    )
    if "ours" not in stopped or "queue" not in stopped or (ours is None and queue is None):
        return _goal(goal, None, detail)
    met = (ours or 0) >= (queue or 0)
    if (
        met
        and not stopped["queue"].startswith("failed")
        and not stopped["ours"].startswith("failed")
    ):
        detail += "; neither limit was reached"
    return _goal(goal, met, detail)


def latency_goal(steps: Sequence[StepFigures], sustained: float | None) -> dict[str, Any]:
    goal = (
        f"routing p50 <= {ROUTING_P50_MS:g} ms and p99 <= {ROUTING_P99_MS:g} ms at 80 % of "
        "our sustained rate"
    )
    if not sustained:
        return _goal(goal, None, "no sustained rate of ours")
    eighty = 0.8 * sustained
    candidates = [s for s in _counted(steps, "ours").values() if s.rate <= eighty + 1e-9]
    if not candidates:
        return _goal(goal, None, f"no step of ours at or under {eighty:g} calls/s")
    at = max(candidates, key=lambda s: s.rate)
    met = at.routing.p50 <= ROUTING_P50_MS and at.routing.p99 <= ROUTING_P99_MS
    where = "" if at.rate >= math.floor(eighty) else f", the highest step <= {eighty:g}"
    return _goal(
        goal,
        met,
        f"p50 {at.routing.p50:.1f} ms, p99 {at.routing.p99:.1f} ms at {at.rate:g} calls/s "
        f"(80 % of {sustained:g}{where})",
    )


def cpu_goals(comparison: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rates = ", ".join(f"{r:g}" for r in comparison["rates_both_passed"])
    over = f"median over the rates both passed ({rates})" if rates else ""
    ours = comparison["median_ours_cpu_ms"]
    ratio = comparison["median_asterisk_cpu_ratio"]
    none = "no rate at which both our desk and Queue() passed"
    return {
        "our_cpu": _goal(
            f"our CPU per call <= {OUR_CPU_MS:g} ms",
            None if ours is None else ours <= OUR_CPU_MS,
            none if ours is None else f"{ours:.1f} ms, {over}",
        ),
        "asterisk_cpu": _goal(
            f"Asterisk's CPU per call under our desk within {100 * (ASTERISK_RATIO - 1):.0f} "
            "% of its CPU per call under Queue()",
            None if ratio is None else ratio <= ASTERISK_RATIO,
            none if ratio is None else f"x{ratio:.2f}, {over}",
        ),
    }


def waiting_goal(concurrency: dict[str, Any] | None, target: int = WAITING) -> dict[str, Any]:
    goal = f"{target:,} callers waiting at once, under {WAITING_KB:g} KB of our RSS each"
    if concurrency is None:
        return _goal(goal, None, "not run")
    # The larger of the two estimates: all growth / peak count, and the ramp's slope.
    estimates = [
        concurrency[k]
        for k in ("rss_growth_per_waiting_kb", "rss_per_waiting_kb")
        if concurrency.get(k) is not None
    ]
    per = max(estimates) if estimates else None
    peak, degraded = concurrency["peak_waiting"], concurrency["degraded_at"]
    detail = (
        f"{peak} waited at once, degraded at {degraded if degraded is not None else 'none'}, "
        f"{'?' if per is None else round(per, 1)} KB each"
    )
    if concurrency["placed"] < target:
        return _goal(goal, None, f"only {concurrency['placed']} callers were placed; " + detail)
    ok = (
        peak >= target
        and (degraded is None or degraded >= target)
        and per is not None
        and per < WAITING_KB
    )
    return _goal(goal, ok, detail)


def evaluate(
    steps: Sequence[StepFigures],
    sustained: dict[str, float | None],
    stopped: dict[str, str],
    concurrency: dict[str, Any] | None,
    limit_ms: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the ours/Queue() comparison, the goals) of one run."""
    comparison = ratios(steps, sustained, stopped, limit_ms)
    goals = {
        "rate": rate_goal(comparison, stopped),
        "latency": latency_goal(steps, sustained.get("ours")),
        **cpu_goals(comparison),
        "waiting": waiting_goal(concurrency),
    }
    return comparison, goals

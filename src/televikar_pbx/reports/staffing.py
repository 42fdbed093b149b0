"""``staffing plan`` and ``staffing backtest``: read the history, build the customers'
profiles, run the model (``domain.staffing``), and show the result as a table, CSV or
JSON (the PDF is ``reports.staffing_pdf``).

The history is the ``--history`` weeks of calls before the first day of the range (local
days of the plan's time zone). The plan is for the operator, not a customer: English
headers; CSV as every CSV of ours (``reports.csvout``: ``;``, decimal comma).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from televikar_pbx.db.agent_log_repo import AgentLogRepository
from televikar_pbx.db.repo_base import SessionSource
from televikar_pbx.db.staffing_repo import StaffingRepository
from televikar_pbx.domain.directory import Agent
from televikar_pbx.domain.sla import periods
from televikar_pbx.domain.staffing.backtest import (
    FIGURES,
    Backtest,
    agents_answering,
    agents_available,
    backtest,
    presence,
)
from televikar_pbx.domain.staffing.erlang_a import Figures
from televikar_pbx.domain.staffing.patience import Survival, kaplan_meier, observations
from televikar_pbx.domain.staffing.plan import HourPlan, Routing, staffing_plan
from televikar_pbx.domain.staffing.profile import CustomerProfile, profile_of
from televikar_pbx.reports import table
from televikar_pbx.reports.call_log import local_days


@dataclass(frozen=True, slots=True)
class StaffingPlan:
    first_day: dt.date
    last_day: dt.date
    timezone: str
    history_start: dt.datetime
    history_end: dt.datetime
    profiles: tuple[CustomerProfile, ...]
    hours: tuple[HourPlan, ...]
    unserved: tuple[str, ...]  # customers no agent serves
    # Every customer's waits together: the patience of all callers (Kaplan-Meier).
    all_patience: Survival = field(default_factory=lambda: kaplan_meier([]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.first_day.isoformat(),
            "to": self.last_day.isoformat(),
            "timezone": self.timezone,
            "history": {
                "start": self.history_start.isoformat(),
                "end": self.history_end.isoformat(),
            },
            "unserved_customers": list(self.unserved),
            "measured": [
                dict(zip(MEASURE_KEYS, row, strict=True)) for row in measured(self, text=False)
            ],
            "hours": [_hour_dict(h) for h in self.hours],
        }


async def load_profiles(
    source: SessionSource, first_day: dt.date, weeks: int, timezone: str
) -> tuple[tuple[CustomerProfile, ...], tuple[Agent, ...], dt.datetime, dt.datetime, Survival]:
    """Every customer's profile from the ``weeks`` before ``first_day``, the agents, the
    history's span and the patience of all its callers together."""
    if weeks < 1:
        raise ValueError(f"--history must be at least 1 week, got {weeks}")
    start, _ = local_days(timezone, first_day - dt.timedelta(weeks=weeks), first_day)
    end, _ = local_days(timezone, first_day, first_day)
    history = await StaffingRepository(source).history(start, end)
    profiles = tuple(
        profile_of(c.customer, c.calls, start=start, end=end, targets=c.targets)
        for c in history.customers
    )
    everyone = kaplan_meier([o for c in history.customers for o in observations(c.calls)])
    return profiles, history.agents, start, end, everyone


async def plan(
    source: SessionSource, first_day: dt.date, last_day: dt.date, *, weeks: int, timezone: str
) -> StaffingPlan:
    profiles, agents, start, end, everyone = await load_profiles(source, first_day, weeks, timezone)
    hours = staffing_plan(
        profiles, first_day=first_day, last_day=last_day, timezone=timezone, agents=agents
    )
    routing = Routing(agents, [p.customer_id for p in profiles])
    names = {p.customer_id: p.name for p in profiles}
    unserved = tuple(names[c] for c in routing.unserved)
    return StaffingPlan(
        first_day, last_day, timezone, start, end, profiles, hours, unserved, everyone
    )


async def run_backtest(
    source: SessionSource, first_day: dt.date, last_day: dt.date, *, weeks: int, timezone: str
) -> Backtest:
    """Predicted against measured for the past days ``first_day``..``last_day``."""
    profiles, agents, _, _, _ = await load_profiles(source, first_day, weeks, timezone)
    start, end = local_days(timezone, first_day, last_day)
    actual = await StaffingRepository(source).history(start, end)
    calls = {c.customer.id: c.calls for c in actual.customers}
    hours = periods(first_day, last_day, "hour", timezone)
    logged = agents_available(
        await AgentLogRepository(source).available_intervals(start, end), hours
    )
    answering = agents_answering([c for cs in calls.values() for c in cs], hours)
    present, source_text = presence(logged, answering)
    return backtest(
        profiles,
        calls,
        present,
        first_day=first_day,
        last_day=last_day,
        timezone=timezone,
        routing=Routing(agents, [p.customer_id for p in profiles]),
        presence_source=source_text,
    )


# --- rendering -------------------------------------------------------------------------

PLAN_HEADERS = (
    "Hour",
    "Calls",
    "Handle s",
    "Patience s",
    "Agents",
    "SL12 %",
    "SL20 %",
    "Lost %",
    "Wait s",
    "Binding customer",
)
BACKTEST_HEADERS = (
    "Hour",
    "Agents",
    "Calls",
    "Forecast",
    "SL12 pred",
    "SL12 meas",
    "SL20 pred",
    "SL20 meas",
    "Lost pred",
    "Lost meas",
    "SL12 err",
    "SL20 err",
    "Lost err",
)


def _num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _pct(figures: Figures | None, name: str) -> float | None:
    return None if figures is None else 100 * float(getattr(figures, name))


MEASURE_HEADERS = (
    "Customer",
    "Calls/week",
    "Handle s",
    "Abandons",
    "Patience s",
    "Gone by 12 s",
    "(exp.)",
    "Gone by 20 s",
    "(exp.)",
    "Gone by 45 s",
    "(exp.)",
)
MEASURE_KEYS = (
    "customer",
    "calls_per_week",
    "handle_s",
    "abandons",
    "patience_s",
    "abandon_by_12s_pct",
    "abandon_by_12s_exponential_pct",
    "abandon_by_20s_pct",
    "abandon_by_20s_exponential_pct",
    "abandon_by_45s_pct",
    "abandon_by_45s_exponential_pct",
)
_LIMITS = (12.0, 20.0, 45.0)


def measured(result: StaffingPlan, *, text: bool = True) -> list[list[Any]]:
    """What the history says per customer and for all together: calls per (open) week,
    handle time, abandons, the mean patience of the exponential fit (abandons ÷ seconds
    waited) and the share of callers gone by 12, 20 and 45 s: Kaplan-Meier (censored
    waits), then what the exponential fit says. Text cells, or exact values for JSON."""
    rows: list[list[Any]] = []
    calls_all = work_all = exposure_all = 0.0
    abandons_all = 0
    for p in result.profiles:
        calls = sum(p.arrivals_per_hour)
        work = sum(r * h for r, h in zip(p.arrivals_per_hour, p.handle_s, strict=True))
        calls_all, work_all = calls_all + calls, work_all + work
        exposure_all += p.patience_exposure_s
        abandons_all += p.abandons
        rows.append(
            _measure_row(
                p.name,
                calls,
                work / calls if calls else None,
                p.abandons,
                p.patience_exposure_s,
                p.patience_curve,
                text,
            )
        )
    rows.append(
        _measure_row(
            "All customers",
            calls_all,
            work_all / calls_all if calls_all else None,
            abandons_all,
            exposure_all,
            result.all_patience,
            text,
        )
    )
    return rows


def _measure_row(
    name: str,
    calls: float,
    handle: float | None,
    abandons: int,
    exposure: float,
    curve: Survival,
    text: bool,
) -> list[Any]:
    patience = exposure / abandons if abandons else None
    cells: list[Any] = [name, calls, handle, abandons, patience]
    for limit in _LIMITS:
        seen = 100 * curve.abandon_by(limit) if curve.observed else None
        fitted = None if patience is None else -100 * math.expm1(-limit / patience)
        cells += [seen, fitted]
    if not text:
        return cells
    return [name, _num(calls), _num(handle, 0), str(abandons), _num(patience, 0),
            *(_num(v) for v in cells[5:])]  # fmt: skip


def plan_rows(result: StaffingPlan) -> list[list[str]]:
    return [
        [
            h.period.label,
            _num(h.offered),
            _num(h.handle_s, 0),
            _num(h.patience_s, 0),
            str(h.agents) + ("" if h.reachable else "+"),
            _num(_pct(h.figures, "sl12")),
            _num(_pct(h.figures, "sl20")),
            _num(_pct(h.figures, "lost")),
            _num(None if h.figures is None else h.figures.mean_wait_s),
            h.binding or "",
        ]
        for h in result.hours
    ]


def plan_text(result: StaffingPlan) -> str:
    peak = max((h.agents for h in result.hours), default=0)
    agent_hours = sum(h.agents for h in result.hours)
    lines = [
        f"Staffing plan {result.first_day} to {result.last_day} ({result.timezone}), "
        f"from the calls of {result.history_start:%Y-%m-%d} to "
        f"{result.history_end - dt.timedelta(days=1):%Y-%m-%d}",
        f"Agent hours: {agent_hours}; most at once: {peak}. Figures are the model's "
        "(Erlang A, docs/staffing.md) for the agents shown.",
    ]
    if result.unserved:
        lines.append(
            "No agent serves: " + ", ".join(result.unserved) + " (planned as served by all)"
        )
    if any(not h.reachable for h in result.hours):
        lines.append("'+': the targets cannot be met by any number of agents the plan tries")
    lines += ["", table.table(PLAN_HEADERS, plan_rows(result), right=range(1, 9))]
    lines += [
        "",
        "Measured in the history (per customer's answered hours; gone by t: the share of "
        "callers whose patience ends by t s, Kaplan-Meier from censored waits, then the "
        "exponential fit Erlang A uses):",
        table.table(MEASURE_HEADERS, measured(result), right=range(1, len(MEASURE_HEADERS))),
    ]
    return "\n".join(lines)


def plan_csv_rows(result: StaffingPlan) -> list[list[str | None]]:
    return [
        [cell.replace(".", ",") if i in range(1, 9) else cell for i, cell in enumerate(row)]
        for row in plan_rows(result)
    ]


def backtest_rows(result: Backtest) -> list[list[str]]:
    rows = []
    for h in result.hours:
        cells = [
            h.period.label,
            _num(h.agents_present),
            str(h.measured.offered),
            _num(h.forecast_offered),
        ]
        for name in FIGURES:
            cells += [_num(h.predicted_pct(name)), _num(h.measured_pct(name))]
        cells += [_num(h.error(name)) for name in FIGURES]
        rows.append(cells)
    return rows


def backtest_summary(result: Backtest) -> dict[str, Any]:
    return {
        name: {
            "mean_absolute_error_pp": result.mean_absolute_error(name),
            "hours_compared": result.compared_hours(name),
        }
        for name in FIGURES
    }


def backtest_text(result: Backtest) -> str:
    summary = backtest_summary(result)
    parts = [
        f"{name.upper()} {_num(s['mean_absolute_error_pp'])} pp over {s['hours_compared']} h"
        for name, s in summary.items()
    ]
    return "\n".join(
        [
            f"Agents present: {result.presence_source}.",
            "Predicted: Erlang A for the calls actually offered and the agents present; "
            "error = predicted - measured, percentage points.",
            "Mean absolute error: " + "; ".join(parts),
            "",
            table.table(
                BACKTEST_HEADERS, backtest_rows(result), right=range(1, len(BACKTEST_HEADERS))
            ),
        ]
    )


def backtest_dict(result: Backtest) -> dict[str, Any]:
    return {
        "presence_source": result.presence_source,
        "summary": backtest_summary(result),
        "hours": [
            {
                "period": h.period.label,
                "start": h.period.start.isoformat(),
                "end": h.period.end.isoformat(),
                "agents_present": h.agents_present,
                "offered": h.measured.offered,
                "forecast_offered": h.forecast_offered,
                **{
                    name: {
                        "predicted_pct": h.predicted_pct(name),
                        "measured_pct": h.measured_pct(name),
                        "error_pp": h.error(name),
                    }
                    for name in FIGURES
                },
            }
            for h in result.hours
        ],
    }


def _figures_dict(figures: Figures | None) -> dict[str, float] | None:
    if figures is None:
        return None
    return {
        "sl12_pct": 100 * figures.sl12,
        "sl20_pct": 100 * figures.sl20,
        "lost_pct": 100 * figures.lost,
        "short_abandons_pct": 100 * figures.short_abandons,
        "messages_pct": 100 * figures.messages,
        "wait_probability": figures.p_wait,
        "mean_wait_s": figures.mean_wait_s,
    }


def _hour_dict(h: HourPlan) -> dict[str, Any]:
    return {
        "period": h.period.label,
        "start": h.period.start.isoformat(),
        "end": h.period.end.isoformat(),
        "offered": h.offered,
        "handle_s": h.handle_s,
        "patience_s": h.patience_s,
        "agents": h.agents,
        "reachable": h.reachable,
        "binding_customer": h.binding,
        "expected": _figures_dict(h.figures),
        "customers": [
            {
                "customer_id": c.customer_id,
                "customer": c.name,
                "offered": c.offered,
                "agents_serving": c.agents,
                "meets_targets": c.meets,
                "expected": _figures_dict(c.figures),
            }
            for c in h.customers
        ],
    }


def agents_per_hour(hours: Sequence[HourPlan]) -> list[int]:
    return [h.agents for h in hours]

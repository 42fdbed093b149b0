"""The model against ourselves: for past hours, the figures Erlang A predicts for the
agents who were actually there, next to the figures measured (``domain.sla``).

Theory of operation
-------------------
For each local hour of the range the prediction takes:

* the calls each customer was actually **offered** that hour (so the error shown is the
  queue model's, not the arrival forecast's; the forecast the plan would have used is
  shown beside it), and each customer's handle time and patience from its profile (the
  history *before* the range, as the plan has it);
* the **agents present**: the mean number available over the hour, from the
  availability log (:func:`agents_available`: logged in and not paused); an hour the log
  has nobody in while agents answered calls (before the log existed) takes the number
  of distinct agents who answered a call that hour (:func:`agents_answering`, a proxy
  that misses idle agents and so overstates the load per agent; :func:`presence`);

and runs :func:`.plan.predict_hour`. The measured figures are ``domain.sla``'s, over all
customers' calls of that hour together. Errors are predicted - measured, in percentage
points; the summary is the mean absolute error over the hours that had offered calls.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts, Period, PeriodFigures, sla_report
from televikar_pbx.domain.staffing.plan import Demand, HourPlan, Routing, demands_at, predict_hour
from televikar_pbx.domain.staffing.profile import CustomerProfile

_S_PER_HOUR = 3600.0
FIGURES = ("sl12", "sl20", "lost")


@dataclass(frozen=True, slots=True)
class BacktestHour:
    period: Period
    agents_present: float
    forecast_offered: float
    measured: PeriodFigures
    predicted: HourPlan

    def predicted_pct(self, name: str) -> float | None:
        figures = self.predicted.figures
        return None if figures is None else 100 * float(getattr(figures, name))

    def measured_pct(self, name: str) -> float | None:
        value: float | None = getattr(self.measured, f"{name}_pct")
        return value

    def error(self, name: str) -> float | None:
        """Predicted - measured, percentage points; None where either is empty."""
        p, m = self.predicted_pct(name), self.measured_pct(name)
        return None if p is None or m is None else p - m


@dataclass(frozen=True, slots=True)
class Backtest:
    hours: tuple[BacktestHour, ...]
    presence_source: str  # "availability log" or "agents who answered calls"

    def mean_absolute_error(self, name: str) -> float | None:
        errors = [abs(e) for h in self.hours if (e := h.error(name)) is not None]
        return sum(errors) / len(errors) if errors else None

    def compared_hours(self, name: str) -> int:
        return sum(h.error(name) is not None for h in self.hours)


def backtest(
    profiles: Sequence[CustomerProfile],
    calls: Mapping[int, Sequence[CallFacts]],
    present: Sequence[float],
    *,
    first_day: date,
    last_day: date,
    timezone: str,
    routing: Routing,
    presence_source: str,
) -> Backtest:
    """Per hour of the range: measured and predicted figures (``calls`` by customer id,
    ``present`` one number per hour of ``domain.sla.periods``)."""
    every_call = [c for customer_calls in calls.values() for c in customer_calls]
    measured = sla_report(
        every_call, first_day=first_day, last_day=last_day, by="hour", timezone=timezone
    )
    offered_by = {
        p.customer_id: sla_report(
            calls.get(p.customer_id, ()),
            first_day=first_day,
            last_day=last_day,
            by="hour",
            timezone=timezone,
        ).periods
        for p in profiles
    }
    if len(present) != len(measured.periods):
        raise ValueError(f"{len(present)} agent counts for {len(measured.periods)} hours")
    hours = []
    for i, (figures, agents) in enumerate(zip(measured.periods, present, strict=True)):
        period = figures.period
        demands = []
        for profile in profiles:
            offered = offered_by[profile.customer_id][i].offered
            if offered:
                slot = profile.slot(period.start)
                demands.append(
                    Demand(
                        profile,
                        offered / _S_PER_HOUR,
                        profile.handle_s[slot],
                        profile.patience_rate[slot],
                    )
                )
        forecast = sum(d.arrival_rate for d in demands_at(profiles, period.start)) * _S_PER_HOUR
        hours.append(
            BacktestHour(
                period, agents, forecast, figures, predict_hour(period, demands, routing, agents)
            )
        )
    return Backtest(tuple(hours), presence_source)


def presence(logged: Sequence[float], answering: Sequence[float]) -> tuple[list[float], str]:
    """Agents present per hour: the availability log's mean; an hour in which the log has
    nobody available while agents answered calls (before the log existed, or while it was
    not written) takes the number who answered. And a line that says which was used."""
    present = [
        log if log > 0 or not answered else answered
        for log, answered in zip(logged, answering, strict=True)
    ]
    filled = sum(
        1 for log, answered in zip(logged, answering, strict=True) if log == 0 and answered
    )
    if not any(logged):
        return (
            present,
            "agents who answered calls (the availability log has nothing for these days)",
        )
    if filled:
        return present, (
            f"the availability log (logged in, not paused); {filled} hour(s) without it "
            "took the agents who answered calls"
        )
    return present, "the availability log (logged in, not paused)"


def agents_answering(calls: Sequence[CallFacts], periods: Sequence[Period]) -> list[float]:
    """Per period, how many distinct agents answered a call in it (by the answer time)."""
    seen: dict[int, set[int]] = defaultdict(set)
    for call in calls:
        if call.outcome is Outcome.ANSWERED and call.answered_at and call.agent_id is not None:
            for i, period in enumerate(periods):
                if period.start <= call.answered_at < period.end:
                    seen[i].add(call.agent_id)
                    break
    return [float(len(seen[i])) for i in range(len(periods))]


def agents_available(
    intervals: Sequence[tuple[int, datetime, datetime]], periods: Sequence[Period]
) -> list[float]:
    """Per period, the mean number of agents available over it: each agent's available
    time in the period (its intervals merged, so an overlap counts once) ÷ its length."""
    by_agent: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for agent, start, end in intervals:
        if end > start:
            by_agent[agent].append((start, end))
    totals = [0.0] * len(periods)
    for spans in by_agent.values():
        merged: list[tuple[datetime, datetime]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        for i, period in enumerate(periods):
            length = (period.end - period.start).total_seconds()
            for start, end in merged:
                overlap = (min(end, period.end) - max(start, period.start)).total_seconds()
                if overlap > 0:
                    totals[i] += overlap / length
    return totals

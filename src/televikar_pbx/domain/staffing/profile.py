"""One customer's history as the plan reads it: per hour of the week of the customer's
own time zone, the arrival rate, the handle time and the patience behind Erlang A.

Thin data is pooled, not trusted (docs/staffing.md, "Measure"): an hour of the week
with few answered calls gets a handle time pulled towards the customer's mean over the
whole history (as if :data:`HANDLE_PSEUDO_CALLS` calls of that mean had been seen too),
and its patience rate towards the customer's overall rate (as if the exposure behind
:data:`PATIENCE_PSEUDO_EVENTS` abandons at that rate had been seen too). A customer with
no answered call at all takes the service's default handle time, and one whose callers
were never seen to hang up the floor :data:`MIN_PATIENCE_RATE` (Erlang A needs θ > 0;
θ → 0 is Erlang C, the pessimistic end).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from televikar_pbx.domain.calendar import Calendar
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.reporting import ReportSettings
from televikar_pbx.domain.sla import CallFacts
from televikar_pbx.domain.staffing.measure import HOURS_PER_WEEK, hour_of_week, hour_slots
from televikar_pbx.domain.staffing.patience import (
    Observation,
    Survival,
    kaplan_meier,
    observations,
)

HANDLE_PSEUDO_CALLS = 20.0
PATIENCE_PSEUDO_EVENTS = 10.0
DEFAULT_HANDLE_S = 180.0
MIN_PATIENCE_RATE = 1 / 3600  # a mean patience of one hour
_OFFERED = (Outcome.ANSWERED, Outcome.ABANDONED, Outcome.MESSAGE, Outcome.NO_MESSAGE)


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """Per hour of the week (168 entries, the customer's local time): expected offered
    calls per hour, mean handle time (s) and patience rate (per s), already pooled."""

    customer_id: int
    name: str
    timezone: str
    targets: ReportSettings
    max_wait_s: float
    answer_target_s: float
    arrivals_per_hour: tuple[float, ...]
    handle_s: tuple[float, ...]
    patience_rate: tuple[float, ...]
    answered_calls: int
    abandons: int
    calendar: Calendar
    # Kaplan-Meier P(patience > t) of the calls behind the profile, and the seconds they
    # waited (with ``abandons``, the exponential rate's numbers).
    patience_curve: Survival = field(default_factory=lambda: kaplan_meier([]), compare=False)
    patience_exposure_s: float = 0.0

    def answerable(self, at: datetime) -> bool:
        """Within service hours and under an agreement or booking at ``at``."""
        return _answerable(self.calendar, at)

    def slot(self, instant: datetime) -> int:
        return hour_of_week(instant, ZoneInfo(self.timezone))


def answerable(customer: Customer) -> Callable[[datetime], bool]:
    """Whether we answer the customer's callers at an instant: within service hours and
    under an agreement or booking (docs: domain/calendar.py)."""
    calendar = customer.calendar
    return lambda at: _answerable(calendar, at)


def _answerable(calendar: Calendar, at: datetime) -> bool:
    return calendar.is_open(at) and calendar.under_agreement(at)


def profile_of(
    customer: Customer,
    calls: Sequence[CallFacts],
    *,
    start: datetime,
    end: datetime,
    targets: ReportSettings | None = None,
) -> CustomerProfile:
    """The customer's profile from its calls that arrived in ``[start, end)``."""
    tz = ZoneInfo(customer.calendar.timezone or customer.timezone)
    offered = [c for c in calls if c.outcome in _OFFERED]
    slots, hours = hour_slots(
        (c.arrived_at for c in offered), start=start, end=end, tz=tz, is_open=answerable(customer)
    )
    wrap = customer.rules.wrap_up_s
    arrivals = [0] * HOURS_PER_WEEK
    handled = [0] * HOURS_PER_WEEK
    handle_sum = [0.0] * HOURS_PER_WEEK
    events = [0] * HOURS_PER_WEEK
    exposure = [0.0] * HOURS_PER_WEEK
    seen: list[Observation] = []
    # One pass over what may be a few hundred thousand calls (benchmarks/staffing_plan.py).
    for call, slot, (wait, abandoned) in zip(offered, slots, observations(offered), strict=True):
        if slot is None:
            continue
        seen.append((wait, abandoned))
        arrivals[slot] += 1
        events[slot] += abandoned
        exposure[slot] += wait
        if call.outcome is Outcome.ANSWERED:
            assert call.answered_at is not None and call.ended_at is not None
            handled[slot] += 1
            handle_sum[slot] += (call.ended_at - call.answered_at).total_seconds() + wrap
    rates = tuple(a / n if n else 0.0 for a, n in zip(arrivals, hours, strict=True))
    answered_calls = sum(handled)
    overall = sum(handle_sum) / answered_calls if answered_calls else DEFAULT_HANDLE_S + wrap
    pooled_handle = tuple(
        (total + HANDLE_PSEUDO_CALLS * overall) / (n + HANDLE_PSEUDO_CALLS)
        for total, n in zip(handle_sum, handled, strict=True)
    )
    total_events, total_exposure = sum(events), sum(exposure)
    theta = max(total_events / total_exposure if total_exposure else 0.0, MIN_PATIENCE_RATE)
    prior = PATIENCE_PSEUDO_EVENTS / theta
    pooled_theta = tuple(
        max((d + PATIENCE_PSEUDO_EVENTS) / (e + prior), MIN_PATIENCE_RATE)
        for d, e in zip(events, exposure, strict=True)
    )
    return CustomerProfile(
        customer_id=customer.id,
        name=customer.name,
        timezone=str(tz),
        targets=targets if targets is not None else ReportSettings(),
        max_wait_s=customer.rules.max_wait_s,
        answer_target_s=customer.rules.answer_target_s,
        arrivals_per_hour=rates,
        handle_s=pooled_handle,
        patience_rate=pooled_theta,
        answered_calls=answered_calls,
        abandons=total_events,
        calendar=customer.calendar,
        patience_curve=kaplan_meier(seen),
        patience_exposure_s=total_exposure,
    )

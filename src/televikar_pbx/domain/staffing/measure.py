"""What the history says per hour of the week: arrival rates and handle times.

Theory of operation
-------------------
The week has 168 hours, numbered by :func:`hour_of_week`: 0 is Monday 00:00-01:00
local time, 167 Sunday 23:00-24:00. A history ``[start, end)`` is cut into its **real
local hours** (:func:`local_hours`): one hour from one local hour start to the next, so
a spring-forward Sunday contributes no 02:00 hour and a fall-back Sunday two (both are
hour-of-week 146, Sunday 02:00). Each figure of an hour of the week is a sum over the
history's hours with that number divided by how many there were.

* :func:`arrival_rates`: expected arrivals per hour. With ``is_open`` only the hours
  open at their start count, in the numerator (their arrivals) as in the denominator
  (their number): the rate is "arrivals in an open such hour". Arrivals in closed hours
  are left out, since a plan staffs open hours.
* :func:`mean_by_hour_of_week`: the mean of any per-call value (the handle time,
  :func:`handle_times`) by the hour of the week its call arrived in, with the count
  behind each mean, so a caller can pool thin hours.

Instants may be in any time zone (aware); ``tz`` says whose week it is.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, tzinfo

from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts, local_hour_starts

HOURS_PER_WEEK = 168


def hour_of_week(instant: datetime, tz: tzinfo) -> int:
    """0 = Monday 00:00-01:00 local time ... 167 = Sunday 23:00-24:00."""
    if instant.utcoffset() is None:
        raise ValueError(f"instant must be timezone-aware, got {instant!r}")
    local = instant.astimezone(tz)
    return local.weekday() * 24 + local.hour


def local_hours(start: datetime, end: datetime, tz: tzinfo) -> list[datetime]:
    """The starts (aware, in ``tz``) of the real local hours that begin in ``[start, end)``
    (``domain.sla.local_hour_starts`` of each local day: no spring 02:00, two autumn ones)."""
    for name, value in (("start", start), ("end", end)):
        if value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    found: list[datetime] = []
    day, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    while day <= last:
        found += (h for h in local_hour_starts(day, tz) if start <= h < end)
        day += timedelta(days=1)
    return found


def arrival_rates(
    arrivals: Iterable[datetime],
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    is_open: Callable[[datetime], bool] | None = None,
) -> list[float]:
    """168 expected arrivals per hour: per hour of the week, the arrivals in the
    history's (open) hours with that number, divided by how many such hours there were;
    0.0 where there were none. ``is_open`` is asked at each hour's start (local, aware).
    """
    hours = _HourIndex(start, end, tz, is_open)
    counts = [0] * HOURS_PER_WEEK
    for instant in arrivals:
        slot = hours.slot(instant)
        if slot is not None:
            counts[slot] += 1
    return [c / n if n else 0.0 for c, n in zip(counts, hours.hours_per_slot, strict=True)]


def handle_times(calls: Iterable[CallFacts], wrap_up_s: float) -> Iterable[tuple[datetime, float]]:
    """(arrival, talk + wrap-up in seconds) of each answered call: the work it gave an agent."""
    for call in calls:
        if call.outcome is Outcome.ANSWERED and call.answered_at and call.ended_at:
            talk = (call.ended_at - call.answered_at).total_seconds()
            yield call.arrived_at, talk + wrap_up_s


def mean_by_hour_of_week(
    values: Iterable[tuple[datetime, float]],
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    is_open: Callable[[datetime], bool] | None = None,
) -> tuple[list[float | None], list[int]]:
    """Per hour of the week, the mean of the values whose instant falls in one of the
    history's (open) hours with that number (None without any), and how many there were."""
    sums, counts = totals_by_hour_of_week(values, start=start, end=end, tz=tz, is_open=is_open)
    return [s / c if c else None for s, c in zip(sums, counts, strict=True)], counts


def totals_by_hour_of_week(
    values: Iterable[tuple[datetime, float]],
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    is_open: Callable[[datetime], bool] | None = None,
) -> tuple[list[float], list[int]]:
    """Per hour of the week, the sum and the number of the values whose instant falls in
    one of the history's (open) hours with that number."""
    hours = _HourIndex(start, end, tz, is_open)
    sums = [0.0] * HOURS_PER_WEEK
    counts = [0] * HOURS_PER_WEEK
    for instant, value in values:
        slot = hours.slot(instant)
        if slot is not None:
            sums[slot] += value
            counts[slot] += 1
    return sums, counts


def hour_slots(
    instants: Iterable[datetime],
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    is_open: Callable[[datetime], bool] | None = None,
) -> tuple[list[int | None], list[int]]:
    """Each instant's hour of the week, None outside the history's (open) hours; and how
    many such hours each hour of the week had. One pass for callers that sum several
    things per call (``profile.profile_of``)."""
    hours = _HourIndex(start, end, tz, is_open)
    return [hours.slot(instant) for instant in instants], hours.hours_per_slot


class _HourIndex:
    """The history's counted hours, sorted (as POSIX seconds), for a bisection per instant."""

    __slots__ = ("end", "hours_per_slot", "slots", "starts")

    def __init__(
        self,
        start: datetime,
        end: datetime,
        tz: tzinfo,
        is_open: Callable[[datetime], bool] | None,
    ) -> None:
        self.starts: list[float] = []
        self.slots: list[int | None] = []  # None: a closed hour (its arrivals not counted)
        self.hours_per_slot = [0] * HOURS_PER_WEEK
        for local in local_hours(start, end, tz):
            self.starts.append(local.timestamp())
            if is_open is None or is_open(local):
                slot = local.weekday() * 24 + local.hour
                self.hours_per_slot[slot] += 1
                self.slots.append(slot)
            else:
                self.slots.append(None)
        self.end = end.timestamp()

    def slot(self, instant: datetime) -> int | None:
        """The hour of the week of ``instant``'s counted hour; None outside them."""
        if instant.tzinfo is None:
            raise ValueError(f"instants must be timezone-aware, got {instant!r}")
        at = instant.timestamp()
        if not self.starts or at < self.starts[0] or at >= self.end:
            return None
        return self.slots[bisect_right(self.starts, at) - 1]

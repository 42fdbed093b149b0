"""The forwarding watch (issue 17): has a customer's forwarding stopped?

Theory of operation
-------------------
Calls reach us only while the customer forwards its line to us, and some office
switchboards cannot do that without a technician: a customer whose forwarding broke
simply stops getting calls. The watch compares each customer's silence with its history.

* **Rates**: the customer's expected arrivals per hour of its week (168 figures,
  ``domain/staffing/measure.arrival_rates`` over the last weeks' calls, counting only
  the hours it was open), given to this module as input.
* **Expected since the last call**: the rate integrated over the *open* time since the
  customer's last call (:func:`expected_arrivals`): the weekly hours and date
  exceptions, under an agreement or a booking (:func:`is_open`); closed time adds
  nothing, so a silence that began before a closed night goes on adding up the next
  day, and a customer with a few calls a day is flagged after a day or two of silence
  rather than never.
* **Silence**: if calls arrive as a Poisson process of that rate, the chance of none in
  the time since the last call is ``exp(-expected)``. Below ``p`` (1 % by default:
  ``expected > ln 100 ≈ 4.6``) the silence is *improbable*: the customer is flagged.
  Expected only grows while the customer is open and normally gets calls at that hour,
  so that is when a flag can start.
* **Episodes** (:class:`ForwardingWatch`): one :class:`SilenceBegan` when a customer is
  first flagged, one :class:`SilenceEnded` when a call arrives after it; the flag stays
  up through closed hours in between (the forwarding is still suspect).
* A customer without history (no calls in the weeks looked at, or none ever) is never
  flagged.

Pure: no clock, no I/O; ``now`` is an argument. Instants are aware (any zone).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from televikar_pbx.domain.calendar import Calendar
from televikar_pbx.domain.staffing.measure import HOURS_PER_WEEK, hour_of_week

HOUR = timedelta(hours=1)


def threshold_for(p: float) -> float:
    """The expected count above which a silence has a chance below ``p`` (0 < p < 1)."""
    if not 0 < p < 1:
        raise ValueError(f"the chance of a silence must be between 0 and 1, got {p}")
    return -math.log(p)


def is_open(calendar: Calendar, at: datetime) -> bool:
    """Do we answer for the customer at ``at`` (agreement or booking, and hours)?"""
    return calendar.under_agreement(at) and calendar.is_open(at)


def _changes_within(calendar: Calendar, start: datetime, end: datetime) -> list[datetime]:
    """The instants in ``(start, end)`` (one local hour at most) where :func:`is_open`
    may change: the hours' and exceptions' opening and closing minutes, and bookings'
    ends. Days (agreements, weekdays, dates) change at local midnight, an hour's start."""
    local = start.astimezone(ZoneInfo(calendar.timezone))
    hour_start = start - timedelta(
        minutes=local.minute, seconds=local.second, microseconds=local.microsecond
    )
    times: set[time] = set()
    for hours in calendar.hours:
        times.update((hours.opens, hours.closes))
    for exception in calendar.exceptions:
        times.update(t for t in (exception.opens, exception.closes) if t is not None)
    points = {
        hour_start + timedelta(minutes=t.minute, seconds=t.second, microseconds=t.microsecond)
        for t in times
        if t.hour == local.hour
    }
    for booking in calendar.bookings:
        points.update((booking.starts_at, booking.ends_at))
    return sorted(p for p in points if start < p < end)


def open_hours(calendar: Calendar, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    """The open time in ``[start, end)``, cut at local hour starts: (a UTC instant in the
    piece, its length in hours) per open piece."""
    tz = ZoneInfo(calendar.timezone)
    pieces: list[tuple[datetime, float]] = []
    at = start.astimezone(UTC)
    end = end.astimezone(UTC)
    while at < end:
        local = at.astimezone(tz)
        into = timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
        hour_end = min(at - into + HOUR, end)
        cuts = [at, *_changes_within(calendar, at, hour_end), hour_end]
        for a, b in pairwise(cuts):
            if is_open(calendar, a):
                pieces.append((a, (b - a) / HOUR))
        at = hour_end
    return pieces


def expected_arrivals(
    rates: Sequence[float], calendar: Calendar, start: datetime, end: datetime
) -> float:
    """The calls expected in ``[start, end)``: each hour-of-week rate (per hour, local
    to the customer's time zone) times the open time in that hour."""
    if not rates:
        return 0.0
    if len(rates) != HOURS_PER_WEEK:
        raise ValueError(f"rates must have {HOURS_PER_WEEK} figures, got {len(rates)}")
    tz = ZoneInfo(calendar.timezone)
    pieces = open_hours(calendar, start, end)
    return float(sum(rates[hour_of_week(at, tz)] * hours for at, hours in pieces))


def rate_now(rates: Sequence[float], calendar: Calendar, now: datetime) -> float:
    """Calls per hour expected at ``now`` (0 while closed or without history)."""
    if not rates or not is_open(calendar, now):
        return 0.0
    return float(rates[hour_of_week(now, ZoneInfo(calendar.timezone))])


# --- the watch --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Traffic:
    """What the watch knows of one customer: its calendar, its 168 rates (empty: no
    history) and its last call (None: never)."""

    customer_id: int
    calendar: Calendar
    rates: tuple[float, ...]
    last_call: datetime | None


@dataclass(frozen=True, slots=True)
class Reading:
    """One customer at ``at``: open now, calls per hour expected now, calls expected
    since its last call, and whether that silence is improbable (``flagged``)."""

    customer_id: int
    at: datetime
    last_call: datetime | None
    open_now: bool
    rate_now: float
    expected: float
    flagged: bool

    @property
    def chance(self) -> float:
        """The chance of no call at all since the last one, at the usual rate."""
        return math.exp(-self.expected)


@dataclass(frozen=True, slots=True)
class SilenceBegan:
    customer_id: int
    last_call: datetime
    expected: float
    at: datetime


@dataclass(frozen=True, slots=True)
class SilenceEnded:
    customer_id: int
    silent_since: datetime  # the last call before the silence
    call_at: datetime  # the call that ended it
    at: datetime


Notice = SilenceBegan | SilenceEnded


@dataclass(slots=True)
class _Integral:
    """Expected calls from ``since`` to ``until``, for these rates and this calendar:
    extended at each check instead of recomputed from the last call."""

    since: datetime
    until: datetime
    value: float
    rates: tuple[float, ...]
    calendar: Calendar


@dataclass(slots=True)
class ForwardingWatch:
    """The episodes of silence, customer by customer (see the module doc)."""

    threshold: float
    episodes: dict[int, SilenceBegan] = field(default_factory=dict)
    readings: dict[int, Reading] = field(default_factory=dict)
    _integrals: dict[int, _Integral] = field(default_factory=dict)

    def check(self, traffic: Iterable[Traffic], now: datetime) -> list[Notice]:
        """Read every customer at ``now``; the episodes that begin and end."""
        notices: list[Notice] = []
        seen = set()
        for t in traffic:
            seen.add(t.customer_id)
            reading = self._read(t, now)
            self.readings[t.customer_id] = reading
            episode = self.episodes.get(t.customer_id)
            if episode is not None and t.last_call is not None and t.last_call > episode.last_call:
                del self.episodes[t.customer_id]
                notices.append(SilenceEnded(t.customer_id, episode.last_call, t.last_call, now))
                episode = None
            if episode is None and reading.flagged and t.last_call is not None:
                began = SilenceBegan(t.customer_id, t.last_call, reading.expected, now)
                self.episodes[t.customer_id] = began
                notices.append(began)
        for gone in set(self.readings) - seen:  # no longer in the directory
            self.readings.pop(gone, None)
            self.episodes.pop(gone, None)
            self._integrals.pop(gone, None)
        return notices

    def flagged(self) -> list[Reading]:
        """The readings of the customers in an episode, longest silence first."""
        flagged = [self.readings[c] for c in self.episodes if c in self.readings]
        return sorted(flagged, key=lambda r: (r.last_call or r.at, r.customer_id))

    def _read(self, t: Traffic, now: datetime) -> Reading:
        open_now = is_open(t.calendar, now)
        expected = 0.0 if t.last_call is None else self._expected(t, t.last_call, now)
        return Reading(
            t.customer_id,
            now,
            t.last_call,
            open_now,
            rate_now(t.rates, t.calendar, now),
            expected,
            expected > self.threshold,
        )

    def _expected(self, t: Traffic, since: datetime, now: datetime) -> float:
        cached = self._integrals.get(t.customer_id)
        if (
            cached is None
            or cached.since != since
            or cached.rates is not t.rates
            or cached.calendar != t.calendar
            or cached.until > now
        ):
            cached = _Integral(since, since, 0.0, t.rates, t.calendar)
            self._integrals[t.customer_id] = cached
        cached.value += expected_arrivals(t.rates, t.calendar, cached.until, now)
        cached.until = now
        return cached.value

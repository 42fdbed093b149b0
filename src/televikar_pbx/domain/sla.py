"""SLA figures per customer and period, definitions version 1 (see docs/metrics.md).

Theory of operation
-------------------
The caller hands over one customer's calls as :class:`CallFacts` (aware instants, as
stored) and a local date range; :func:`sla_report` cuts the range into local hours or
days (:func:`periods`), puts every offered call into the period of its arrival, and
returns frozen :class:`PeriodFigures` per period plus a total for the range, each
judged against the customer's targets. No clock, no I/O: the same calls give the same
report, whatever their order. :func:`sla_reports` gives the hourly and the daily report
of the same calls in one pass (the nightly job stores both, for up to a million calls):
calls are tallied by hour, and a day is the sum of its hours.

* Which calls count, and how, is :func:`televikar_pbx.domain.metrics.classify`:
  answered, short abandon, lost, not answered (message capture) or not offered.
* **Wait** runs from arrival to the agent's answer (answered), to the hang-up
  (abandoned) or to the start of message capture (``overflowed_at``; message and
  no_message). Waits are summed in whole microseconds, so totals and averages do not
  depend on the order of the calls.
* **Periods** are local wall-clock hours or days of the customer's time zone. An hour
  is the span from one local hour start to the next, so a spring-forward day has 23
  hours and a fall-back day 25. Every hour label carries its UTC offset
  (``2026-10-25T02:00+02:00`` then ``2026-10-25T02:00+01:00``), so the repeated autumn
  hour is never ambiguous; day labels are the local date (``2026-10-25``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from televikar_pbx.domain.metrics import DEFINITION_VERSION, SL12_S, SL20_S, Kind, classify
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.reporting import ReportSettings

By = Literal["hour", "day"]

_US = timedelta(microseconds=1)
_US_PER_S = 1_000_000
_SL12_US, _SL20_US = SL12_S * _US_PER_S, SL20_S * _US_PER_S
_ANSWERED, _ABANDONED = Outcome.ANSWERED, Outcome.ABANDONED
_MESSAGE_OUTCOMES = (Outcome.MESSAGE, Outcome.NO_MESSAGE)
_NOT_ANSWERED = (Outcome.ABANDONED, *_MESSAGE_OUTCOMES)
# What an offered call must carry to be measured (see CallFacts.wait).
_NEEDS: dict[Outcome, tuple[str, ...]] = {
    Outcome.ANSWERED: ("answered_at", "ended_at"),
    Outcome.ABANDONED: ("ended_at",),
    Outcome.MESSAGE: ("overflowed_at", "ended_at"),
    Outcome.NO_MESSAGE: ("overflowed_at", "ended_at"),
}


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the SLA figures need of one finished call (all instants timezone-aware).

    ``overflowed_at`` is when message capture began (the journal's ``message_capture``
    event); message and no_message calls need it, because their wait ends there and
    not at the hang-up after the recording.
    """

    arrived_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    outcome: Outcome
    agent_id: int | None = None
    overflowed_at: datetime | None = None

    def __post_init__(self) -> None:
        # Straight-line checks: the nightly job builds a million of these.
        outcome = self.outcome
        if type(outcome) is not Outcome:
            outcome = Outcome(outcome)
            object.__setattr__(self, "outcome", outcome)
        arrived, answered, ended = self.arrived_at, self.answered_at, self.ended_at
        overflowed = self.overflowed_at
        if arrived.tzinfo is not UTC:  # UTC, as stored, needs no further look
            _aware("arrived_at", arrived)
        if ended is not None:
            if ended.tzinfo is not UTC:
                _aware("ended_at", ended)
            if ended < arrived:
                raise ValueError(f"ended_at {ended} is before arrived_at {arrived}")
        if answered is not None:
            _within("answered_at", answered, arrived, ended)
        if overflowed is not None:
            _within("overflowed_at", overflowed, arrived, ended)
        if ended is None or (
            (answered is None)
            if outcome is _ANSWERED
            else (overflowed is None and outcome in _MESSAGE_OUTCOMES)
        ):
            for name in _NEEDS.get(outcome, ()):
                if getattr(self, name) is None:
                    raise ValueError(f"a call with outcome {outcome.value} needs {name}")
        if answered is not None and outcome in _NOT_ANSWERED:
            raise ValueError(f"a call with outcome {outcome.value} has no answered_at")

    @property
    def wait(self) -> timedelta | None:
        """Arrival to answer, hang-up or overflow; None for calls that were not offered."""
        if self.outcome == Outcome.ANSWERED:
            end = self.answered_at
        elif self.outcome == Outcome.ABANDONED:
            end = self.ended_at
        elif self.outcome in _MESSAGE_OUTCOMES:
            end = self.overflowed_at
        else:
            return None
        assert end is not None  # checked in __post_init__
        return end - self.arrived_at


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in UTC; ``label`` is the local hour with its offset, or the date."""

    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    """The figures of one period. Percentages are 0..100; times are seconds.

    A ratio whose denominator is 0 is None, and so is a judgement on it (not judged).
    """

    period: Period
    offered: int
    answered: int
    answered_within_12s: int
    answered_within_20s: int
    short_abandons: int
    lost: int
    messages: int
    sl12_pct: float | None
    sl20_pct: float | None
    lost_pct: float | None
    avg_wait_s: float | None
    longest_wait_s: float | None
    avg_talk_s: float | None
    sl12_met: bool | None
    sl20_met: bool | None
    lost_met: bool | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values; instants as ISO 8601 UTC."""
        return {
            "period": self.period.label,
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "offered": self.offered,
            "answered": self.answered,
            "answered_within_12s": self.answered_within_12s,
            "answered_within_20s": self.answered_within_20s,
            "short_abandons": self.short_abandons,
            "lost": self.lost,
            "messages": self.messages,
            "sl12_pct": self.sl12_pct,
            "sl20_pct": self.sl20_pct,
            "lost_pct": self.lost_pct,
            "avg_wait_s": self.avg_wait_s,
            "longest_wait_s": self.longest_wait_s,
            "avg_talk_s": self.avg_talk_s,
            "sl12_met": self.sl12_met,
            "sl20_met": self.sl20_met,
            "lost_met": self.lost_met,
        }


@dataclass(frozen=True, slots=True)
class SlaReport:
    """One customer's figures for local days ``first_day``..``last_day`` (inclusive)."""

    definition_version: int
    timezone: str
    by: By
    first_day: date
    last_day: date
    sl12_target: float
    sl20_target: float
    lost_target: float
    periods: tuple[PeriodFigures, ...]
    total: PeriodFigures

    def to_dict(self) -> dict[str, Any]:
        return {
            "definition_version": self.definition_version,
            "timezone": self.timezone,
            "by": self.by,
            "from": self.first_day.isoformat(),
            "to": self.last_day.isoformat(),
            "targets": {
                "sl12_pct": self.sl12_target,
                "sl20_pct": self.sl20_target,
                "lost_pct": self.lost_target,
            },
            "periods": [p.to_dict() for p in self.periods],
            "total": self.total.to_dict(),
        }


def periods(
    first_day: date, last_day: date, by: By, timezone: str = "Europe/Oslo"
) -> tuple[Period, ...]:
    """Every local hour or day from ``first_day`` to ``last_day`` inclusive, in order."""
    _check_range(first_day, last_day)
    _check_by(by)
    hours, days, _ = _calendar(first_day, last_day, timezone)
    return days if by == "day" else hours


def sla_report(
    calls: Iterable[CallFacts],
    *,
    first_day: date,
    last_day: date,
    by: By,
    settings: ReportSettings | None = None,
    timezone: str = "Europe/Oslo",
) -> SlaReport:
    """One customer's SLA figures per period of the range, and for the whole range.

    Calls that arrived outside the range, or were not offered, are left out.
    """
    _check_range(first_day, last_day)
    _check_by(by)
    reports = sla_reports(
        calls, first_day=first_day, last_day=last_day, settings=settings, timezone=timezone
    )
    return reports[by]


def sla_reports(
    calls: Iterable[CallFacts],
    *,
    first_day: date,
    last_day: date,
    settings: ReportSettings | None = None,
    timezone: str = "Europe/Oslo",
) -> dict[By, SlaReport]:
    """:func:`sla_report` by hour and by day at once, each call measured once.

    Every call goes into the tally of its hour; a day is the sum of its hours (the hours
    of a range cut its days exactly, on DST days too) and the total the sum of the days.
    The sums are whole numbers, so both reports are exactly what ``sla_report`` gives.
    """
    _check_range(first_day, last_day)
    settings = settings if settings is not None else ReportSettings()
    hours, days, day_of_hour = _calendar(first_day, last_day, timezone)
    hourly = _tally_hours(calls, hours)
    daily = [_Tally() for _ in days]
    for tally, day in zip(hourly, day_of_hour, strict=True):
        daily[day].merge(tally)
    total = _Tally()
    for tally in daily:
        total.merge(tally)
    whole = Period(f"{first_day.isoformat()}/{last_day.isoformat()}", days[0].start, days[-1].end)
    whole_figures = total.figures(whole, settings)

    def report(by: By, spans: tuple[Period, ...], tallies: list[_Tally]) -> SlaReport:
        return SlaReport(
            definition_version=DEFINITION_VERSION,
            timezone=timezone,
            by=by,
            first_day=first_day,
            last_day=last_day,
            sl12_target=settings.sl12_target,
            sl20_target=settings.sl20_target,
            lost_target=settings.lost_target,
            periods=tuple(t.figures(p, settings) for t, p in zip(tallies, spans, strict=True)),
            total=whole_figures,
        )

    return {"hour": report("hour", hours, hourly), "day": report("day", days, daily)}


def _check_range(first_day: date, last_day: date) -> None:
    if last_day < first_day:
        raise ValueError(f"the range ends ({last_day}) before it starts ({first_day})")


def _check_by(by: str) -> None:
    if by not in ("hour", "day"):
        raise ValueError(f"periods are by 'hour' or 'day', got {by!r}")


def _calendar(
    first_day: date, last_day: date, timezone: str
) -> tuple[tuple[Period, ...], tuple[Period, ...], list[int]]:
    """The hours and the days of the range, and for each hour the index of its day."""
    tz = _zone(timezone)
    days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    hour_starts = [local_hour_starts(day, tz) for day in days]
    end = local_hour_starts(last_day + timedelta(days=1), tz)[0].astimezone(UTC)

    def cut(labelled: list[tuple[str, datetime]]) -> tuple[Period, ...]:
        bounds = [start.astimezone(UTC) for _, start in labelled] + [end]
        return tuple(
            Period(label, bounds[i], bounds[i + 1]) for i, (label, _) in enumerate(labelled)
        )

    by_hour = cut([(h.isoformat(timespec="minutes"), h) for hours in hour_starts for h in hours])
    by_day = cut([(d.isoformat(), hours[0]) for d, hours in zip(days, hour_starts, strict=True)])
    return by_hour, by_day, [n for n, hours in enumerate(hour_starts) for _ in hours]


def _tally_hours(calls: Iterable[CallFacts], hours: tuple[Period, ...]) -> list[_Tally]:
    """Each offered call of the range in the tally of the hour it arrived in.

    The loop of a million calls a night: ``CallFacts.wait`` is inlined, and each call
    costs one subtraction for its wait, one ``classify`` and one bisection.
    """
    starts = [p.start for p in hours]
    range_start, range_end = hours[0].start, hours[-1].end
    tallies = [_Tally() for _ in hours]
    for call in calls:
        arrived = call.arrived_at
        if not range_start <= arrived < range_end:
            continue
        outcome = call.outcome
        if outcome is _ANSWERED:
            until = call.answered_at
        elif outcome is _ABANDONED:
            until = call.ended_at
        elif outcome in _MESSAGE_OUTCOMES:
            until = call.overflowed_at
        else:
            continue  # not offered: no wait, in no figure (metrics.classify)
        assert until is not None  # checked by CallFacts
        wait_us = (until - arrived) // _US
        # The same float as ``wait / timedelta(seconds=1)``: one rounding of the exact ratio.
        kind = classify(outcome, wait_us / _US_PER_S)
        tallies[bisect_right(starts, arrived) - 1].add(call, kind, wait_us)
    return tallies


class _Tally:
    """Running integer sums for one period (microseconds, so the order of adding is moot)."""

    __slots__ = (
        "answered",
        "lost",
        "messages",
        "offered",
        "short_abandons",
        "talk_us",
        "wait_us",
        "wait_us_max",
        "within_12s",
        "within_20s",
    )

    def __init__(self) -> None:
        self.offered = self.answered = self.within_12s = self.within_20s = 0
        self.short_abandons = self.lost = self.messages = 0
        self.wait_us = self.wait_us_max = self.talk_us = 0

    def add(self, call: CallFacts, kind: Kind, wait_us: int) -> None:
        self.offered += 1
        self.wait_us += wait_us
        if wait_us > self.wait_us_max:
            self.wait_us_max = wait_us
        if kind == "answered":
            answered, ended = call.answered_at, call.ended_at
            assert answered is not None and ended is not None
            self.answered += 1
            self.within_12s += wait_us <= _SL12_US
            self.within_20s += wait_us <= _SL20_US
            self.talk_us += (ended - answered) // _US
        elif kind == "short_abandon":
            self.short_abandons += 1
        elif kind == "lost":
            self.lost += 1
        if call.outcome in _MESSAGE_OUTCOMES:
            self.messages += 1

    def merge(self, other: _Tally) -> None:
        for name in self.__slots__:
            if name != "wait_us_max":
                setattr(self, name, getattr(self, name) + getattr(other, name))
        self.wait_us_max = max(self.wait_us_max, other.wait_us_max)

    def figures(self, period: Period, settings: ReportSettings) -> PeriodFigures:
        in_sl = self.offered - self.short_abandons
        sl12 = _pct(self.within_12s, in_sl)
        sl20 = _pct(self.within_20s, in_sl)
        lost = _pct(self.lost, self.offered)
        return PeriodFigures(
            period=period,
            offered=self.offered,
            answered=self.answered,
            answered_within_12s=self.within_12s,
            answered_within_20s=self.within_20s,
            short_abandons=self.short_abandons,
            lost=self.lost,
            messages=self.messages,
            sl12_pct=sl12,
            sl20_pct=sl20,
            lost_pct=lost,
            avg_wait_s=_ratio(self.wait_us, self.offered * _US_PER_S),
            longest_wait_s=self.wait_us_max / _US_PER_S if self.offered else None,
            avg_talk_s=_ratio(self.talk_us, self.answered * _US_PER_S),
            sl12_met=None if sl12 is None else sl12 >= settings.sl12_target,
            sl20_met=None if sl20 is None else sl20 >= settings.sl20_target,
            lost_met=None if lost is None else lost <= settings.lost_target,
        )


def _pct(part: int, whole: int) -> float | None:
    # One rounding of an exact integer ratio: a share exactly on a decimal target (7 of
    # 10 against 70.0) compares equal to it.
    return _ratio(100 * part, whole)


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def _aware(name: str, value: datetime) -> None:
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def _within(name: str, value: datetime, arrived: datetime, ended: datetime | None) -> None:
    if value.tzinfo is not UTC:
        _aware(name, value)
    if value < arrived:
        raise ValueError(f"{name} {value} is before arrived_at {arrived}")
    if ended is not None and ended < value:
        raise ValueError(f"ended_at {ended} is before {name} {value}")


def _zone(timezone: str) -> tzinfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc


def local_hour_starts(day: date, tz: tzinfo) -> list[datetime]:
    """The local instants at which an hour of ``day`` begins, in order.

    Both readings (``fold``) of every wall-clock hour are tried: a wall time in the
    spring gap does not survive the round trip through UTC and is dropped; the repeated
    autumn hour gives two instants, each with its own offset.
    """
    found: dict[datetime, datetime] = {}
    for hour in range(24):
        for fold in (0, 1):
            wall = datetime(day.year, day.month, day.day, hour, fold=fold)
            instant = wall.replace(tzinfo=tz).astimezone(UTC)
            local = instant.astimezone(tz)
            if local.replace(tzinfo=None) == wall:
                found.setdefault(instant, local)
    return [found[instant] for instant in sorted(found)]

"""The operator's notations for hours, days and moments, parsed and printed back.

    weekly hours   'mon-fri 08:00-16:00'   'sat,sun 10:00-14:00'   'mon 08:00-11:30,12:30-24:00'
    date           '2026-12-24'
    special day    '2026-12-24 09:00-12:00'
    moment         '2026-12-24 08:00' (the customer's local time) or a date (its whole day)

``format_hours`` prints weekly hours in the notation ``parse_hours`` reads, so what
``customers show`` prints can be given back to ``customers edit``. Closing at ``24:00``
is stored as 00:00 ("until midnight", see ``domain.calendar``). Every parser raises
ValueError with a message meant for the operator.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from televikar_pbx.domain.calendar import DateException, OpeningHours

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MIDNIGHT = dt.time(0)
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_HOURS_EXAMPLE = "e.g. 'mon-fri 08:00-16:00' or 'sat 10:00-14:00'"


def parse_time(text: str, *, closing: bool = False) -> dt.time:
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time HH:MM")
    hour, minute = int(match[1]), int(match[2])
    if closing and (hour, minute) == (24, 0):
        return MIDNIGHT
    if hour > 23 or minute > 59:
        raise ValueError(f"{text!r} is not a time of day")
    return dt.time(hour, minute)


def parse_interval(text: str) -> tuple[dt.time, dt.time]:
    opens, sep, closes = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not an interval HH:MM-HH:MM")
    interval = parse_time(opens), parse_time(closes, closing=True)
    if interval[1] <= interval[0] and interval[1] != MIDNIGHT:
        raise ValueError(f"{text!r} closes before it opens")
    return interval


def _day(text: str) -> int:
    lowered = text.lower()
    for names in (DAYS, FULL_DAYS):
        if lowered in names:
            return names.index(lowered)
    raise ValueError(f"{text!r} is not a day (mon, tue, wed, thu, fri, sat, sun)")


def parse_days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        first, sep, last = part.partition("-")
        start = _day(first)
        end = _day(last) if sep else start
        if end < start:
            raise ValueError(f"day range {part!r} runs backwards (write mon-fri, not fri-mon)")
        days.extend(d for d in range(start, end + 1) if d not in days)
    return days


def parse_hours(text: str) -> tuple[OpeningHours, ...]:
    """One ``--hours`` value: days, a space, one or more intervals (comma-separated)."""
    parts = re.sub(r"\s*([,-])\s*", r"\1", text.strip()).split()
    if len(parts) != 2:
        raise ValueError(f"{text!r} is not DAYS HH:MM-HH:MM ({_HOURS_EXAMPLE})")
    days, intervals = parse_days(parts[0]), [parse_interval(p) for p in parts[1].split(",")]
    return tuple(OpeningHours(day, o, c) for day in days for o, c in intervals)


def check_no_overlap(hours: Iterable[OpeningHours]) -> None:
    def minutes(value: dt.time, *, closing: bool = False) -> int:
        return 24 * 60 if closing and value == MIDNIGHT else value.hour * 60 + value.minute

    ordered = sorted(hours, key=lambda h: (h.weekday, h.opens))
    for before, after in itertools.pairwise(ordered):
        if before.weekday == after.weekday and minutes(after.opens) < minutes(
            before.closes, closing=True
        ):
            raise ValueError(
                f"hours overlap on {DAYS[before.weekday]}: "
                f"{format_interval(before.opens, before.closes)} and "
                f"{format_interval(after.opens, after.closes)}"
            )


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD") from None


def parse_special_day(text: str) -> DateException:
    """``'2026-12-24 09:00-12:00'``: other hours on one date."""
    day, _, interval = text.strip().partition(" ")
    if not interval.strip():
        raise ValueError(f"{text!r} is not 'YYYY-MM-DD HH:MM-HH:MM'")
    opens, closes = parse_interval(interval.strip())
    return DateException(parse_date(day), opens, closes)


def parse_moment(text: str, zone: ZoneInfo, *, end: bool = False) -> dt.datetime:
    """An aware instant from a local time in ``zone``; a bare date is the start of that
    local day, or with ``end`` the start of the next one (the day is included)."""
    text = text.strip()
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        pass
    else:
        day += dt.timedelta(days=1) if end else dt.timedelta(0)
        return dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date or 'YYYY-MM-DD HH:MM'") from None
    if moment.tzinfo is not None:
        return moment
    local = moment.replace(tzinfo=zone)
    if local.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != moment:
        raise ValueError(f"{text} does not exist in {zone.key} (clocks skip it that night)")
    return local


# --- printing -------------------------------------------------------------------------


def format_time(value: dt.time, *, closing: bool = False) -> str:
    return "24:00" if closing and value == MIDNIGHT else f"{value:%H:%M}"


def format_interval(opens: dt.time, closes: dt.time) -> str:
    return f"{format_time(opens)}-{format_time(closes, closing=True)}"


def format_hours(hours: Iterable[OpeningHours]) -> list[str]:
    """Weekly hours as ``--hours`` values, runs of days with the same hours joined."""
    by_day: dict[int, list[str]] = {}
    for h in sorted(hours, key=lambda h: (h.weekday, h.opens)):
        by_day.setdefault(h.weekday, []).append(format_interval(h.opens, h.closes))
    lines: list[str] = []
    run: list[int] = []
    for day in [*sorted(by_day), None]:
        if run and (day is None or day != run[-1] + 1 or by_day[day] != by_day[run[0]]):
            days = DAYS[run[0]] if len(run) == 1 else f"{DAYS[run[0]]}-{DAYS[run[-1]]}"
            lines.append(f"{days} {','.join(by_day[run[0]])}")
            run = []
        if day is not None:
            run.append(day)
    return lines


def format_exception(exception: DateException) -> str:
    if exception.opens is None or exception.closes is None:
        return exception.day.isoformat()
    return f"{exception.day.isoformat()} {format_interval(exception.opens, exception.closes)}"

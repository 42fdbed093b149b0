"""When a customer's phone is ours to answer: agreements, bookings and service hours.

Pure functions of a customer's calendar and an aware ``now``. Local time is the
customer's time zone (Europe/Oslo unless set); a weekly schedule is in local wall-clock
time, so opening hours stay put across daylight-saving changes.

* **Agreement and bookings** decide whether we answer for the customer at all: a fixed
  agreement covers ``[start, end]`` (dates, local, end inclusive, open-ended without an
  end); a booking covers ``[starts_at, ends_at)`` (aware instants). A call outside every
  active agreement and booking follows the customer's outside-agreement policy.
* **Service hours** decide whether we are open right now: a weekly schedule of opening
  intervals per weekday, with exceptions per date (a holiday closed all day, or special
  hours). A customer without any weekly hours is open around the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Open on ``weekday`` (0 = Monday … 6 = Sunday) from ``opens`` until ``closes``."""

    weekday: int
    opens: time
    closes: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0..6 (Monday..Sunday), got {self.weekday}")
        if self.closes <= self.opens and self.closes != time(0):
            raise ValueError(f"closes {self.closes} is not after opens {self.opens}")

    def covers(self, local: time) -> bool:
        # closes == 00:00 means "until midnight".
        return self.opens <= local and (self.closes == time(0) or local < self.closes)


@dataclass(frozen=True, slots=True)
class DateException:
    """A date with other hours than the weekly schedule: closed all day if ``opens`` is
    None (a holiday), else open from ``opens`` to ``closes`` that day only."""

    day: date
    opens: time | None = None
    closes: time | None = None


@dataclass(frozen=True, slots=True)
class Agreement:
    start: date
    end: date | None = None

    def covers(self, local_day: date) -> bool:
        return self.start <= local_day and (self.end is None or local_day <= self.end)


@dataclass(frozen=True, slots=True)
class Booking:
    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("booking times must be timezone-aware")
        if self.ends_at <= self.starts_at:
            raise ValueError("a booking must end after it starts")

    def covers(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def overlaps(self, other: Booking) -> bool:
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at


@dataclass(frozen=True, slots=True)
class Calendar:
    timezone: str = "Europe/Oslo"
    agreement: Agreement | None = None
    bookings: tuple[Booking, ...] = ()
    hours: tuple[OpeningHours, ...] = ()
    exceptions: tuple[DateException, ...] = ()

    def local(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.astimezone(ZoneInfo(self.timezone))

    def under_agreement(self, now: datetime) -> bool:
        """Is an agreement or a booking active at ``now``?"""
        if self.agreement is not None and self.agreement.covers(self.local(now).date()):
            return True
        return any(b.covers(now) for b in self.bookings)

    def is_open(self, now: datetime) -> bool:
        """Within service hours at ``now`` (always, if no weekly hours are set)?"""
        local = self.local(now)
        for exception in self.exceptions:
            if exception.day == local.date():
                if exception.opens is None or exception.closes is None:
                    return False
                return OpeningHours(local.weekday(), exception.opens, exception.closes).covers(
                    local.time()
                )
        if not self.hours:
            return True
        return any(h.weekday == local.weekday() and h.covers(local.time()) for h in self.hours)

"""Which of a customer's reports are due: the periods, the catch-up, the retries (no I/O).

Theory of operation. A customer's report interval cuts its local calendar into periods:
``daily`` a day, ``weekly`` an ISO week (Monday to Sunday), ``monthly`` a calendar month.
A period is complete once the customer's local date is past its last day; only complete
periods are reported (local dates, so a DST change does not matter: a day is a date).

Given the local ``today`` and the periods already recorded, ``periods_due`` returns:

- the latest complete period, unless it was sent;
- every complete period after the last one sent (the runs that were missed), at most
  ``CATCH_UP[interval]`` periods back, the latest included; with nothing sent yet, only
  the latest (a new customer is not sent a backlog);
- every period tried but not sent (failed, or left pending by a run that died), within
  the same window: a failure is retried by each run until it is sent or falls out of
  the window.

A period is *sent* once: ``periods_due`` never returns one that was. Records of other
shapes (an explicit resend of any range, or the periods of an earlier interval) are
ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from televikar_pbx.domain.reporting import ReportInterval

# How many periods back a run catches up (the latest complete one included): a month of
# days, two months of weeks, a quarter of months.
CATCH_UP: dict[ReportInterval, int] = {
    ReportInterval.DAILY: 31,
    ReportInterval.WEEKLY: 8,
    ReportInterval.MONTHLY: 3,
}
_DAY = dt.timedelta(days=1)


class DeliveryStatus(StrEnum):
    """Where a report's e-mail is: being sent, sent (never again), failed (retried)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, order=True)
class ReportPeriod:
    """Local dates ``first_day``..``last_day``, both included."""

    first_day: dt.date
    last_day: dt.date

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise ValueError(
                f"the period ends ({self.last_day}) before it starts ({self.first_day})"
            )

    @property
    def shape(self) -> ReportInterval:
        """The interval whose period this is: a day, an ISO week, a calendar month, or
        ``none`` for any other range."""
        for interval in CATCH_UP:
            if period_containing(interval, self.first_day) == self:
                return interval
        return ReportInterval.NONE

    def __str__(self) -> str:
        if self.first_day == self.last_day:
            return str(self.first_day)
        return f"{self.first_day}..{self.last_day}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A recorded report e-mail (a row of ``report_deliveries``)."""

    id: int
    customer_id: int
    interval: ReportInterval
    period: ReportPeriod
    status: DeliveryStatus
    attempts: int
    recipients: tuple[str, ...]
    last_error: str | None
    last_attempt_at: dt.datetime | None
    sent_at: dt.datetime | None


def period_containing(interval: ReportInterval, day: dt.date) -> ReportPeriod:
    """The period of ``interval`` that ``day`` belongs to."""
    if interval is ReportInterval.DAILY:
        return ReportPeriod(day, day)
    if interval is ReportInterval.WEEKLY:
        monday = day - dt.timedelta(days=day.weekday())
        return ReportPeriod(monday, monday + dt.timedelta(days=6))
    if interval is ReportInterval.MONTHLY:
        first = day.replace(day=1)
        next_first = (first + dt.timedelta(days=31)).replace(day=1)
        return ReportPeriod(first, next_first - _DAY)
    raise ValueError(f"a report interval of {interval.value!r} has no periods")


def previous_period(interval: ReportInterval, period: ReportPeriod) -> ReportPeriod:
    return period_containing(interval, period.first_day - _DAY)


def latest_complete(interval: ReportInterval, today: dt.date) -> ReportPeriod:
    """The last period that ended before ``today`` (the customer's local date)."""
    return previous_period(interval, period_containing(interval, today))


def periods_due(
    interval: ReportInterval,
    today: dt.date,
    sent: Iterable[ReportPeriod],
    unsent: Iterable[ReportPeriod] = (),
    *,
    limit: int | None = None,
) -> list[ReportPeriod]:
    """The periods to send now, oldest first (rules in the module docstring).

    ``sent``: periods recorded as sent; ``unsent``: periods tried but not sent (failed or
    pending). ``limit`` overrides ``CATCH_UP[interval]``. ``none`` has nothing due.
    """
    if interval is ReportInterval.NONE:
        return []
    limit = CATCH_UP[interval] if limit is None else limit
    if limit < 1:
        raise ValueError(f"the catch-up limit must be at least 1, got {limit}")
    window = [latest_complete(interval, today)]
    while len(window) < limit:
        window.append(previous_period(interval, window[-1]))
    window.reverse()

    in_window = set(window)
    ours = {p for p in sent if p == period_containing(interval, p.first_day)}
    done = ours & in_window
    retry = {p for p in unsent if p in in_window}
    last_sent = max(ours, default=None)
    return [
        p
        for p in window
        if p not in done
        and (p in retry or p == window[-1] or (last_sent is not None and p > last_sent))
    ]

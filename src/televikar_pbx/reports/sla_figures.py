"""Reading and storing the SLA figures: ``sla report``'s read and ``sla nightly``'s store.

The figures of one customer's local dates come from one read of the call log
(``CallRepository.ended_calls_between``, only the columns the figures need), turned into
facts by ``domain.call_facts`` and computed by ``domain.sla``. The nightly job stores the
hourly and daily figures of each customer's previous local day, and of every day missed
since the last stored one (at most ``CATCH_UP_DAYS`` back), in ``sla_aggregates``,
replacing what was stored for those periods.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from televikar_pbx.db.calls_repo import CallRepository
from televikar_pbx.db.directory_repo import DirectoryRepository
from televikar_pbx.db.sla_repo import SlaRepository
from televikar_pbx.domain.call_facts import facts_of
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.reporting import ReportInterval
from televikar_pbx.domain.sla import By, SlaReport, sla_reports
from televikar_pbx.reports.call_log import local_days

# How far back ``nightly`` catches up missed days (a customer's previous day included).
CATCH_UP_DAYS = 62


async def sla_figures(
    repo: DirectoryRepository, customer: Customer, first: dt.date, last: dt.date
) -> dict[By, SlaReport]:
    """The customer's figures by hour and by day, from one read of the call log (in the
    directory's transaction)."""
    start, end = local_days(customer.timezone, first, last)
    calls = await CallRepository(repo.source).ended_calls_between(customer.id, start, end)
    return sla_reports(
        map(facts_of, calls),
        first_day=first,
        last_day=last,
        settings=await repo.report_settings(customer.id),
        timezone=customer.timezone,
    )


def days_due(
    last_stored: dt.date | None, previous_day: dt.date, *, limit: int = CATCH_UP_DAYS
) -> list[dt.date]:
    """The local days ``nightly`` computes: from the day after the last stored one (or
    only the previous day, when nothing is stored) to the previous day, that one always
    included (its calls may have ended late), and at most ``limit`` days."""
    first = previous_day if last_stored is None else last_stored + dt.timedelta(days=1)
    first = max(min(first, previous_day), previous_day - dt.timedelta(days=limit - 1))
    return [first + dt.timedelta(days=n) for n in range((previous_day - first).days + 1)]


def previous_local_day(now: dt.datetime, timezone: str) -> dt.date:
    """The local date before ``now``'s in ``timezone``: the day ``nightly`` closes."""
    return now.astimezone(ZoneInfo(timezone)).date() - dt.timedelta(days=1)


async def store_nightly(
    repo: DirectoryRepository, now: dt.datetime, only: dt.date | None = None
) -> tuple[list[tuple[Customer, list[dt.date]]], bool]:
    """Store the figures of the days due (``only``: that day, for every customer), as
    computed at ``now``. Returns the days stored per customer, and whether any customer
    wants report e-mails."""
    store = SlaRepository(repo.source)
    done = []
    reports_wanted = False
    for customer in await repo.list_customers():
        wanted = await repo.report_settings(customer.id)
        reports_wanted |= wanted.interval is not ReportInterval.NONE and bool(wanted.emails)
        if only is not None:
            days = [only]
        else:
            previous = previous_local_day(now, customer.timezone)
            days = days_due(await store.last_stored_day(customer.id), previous)
        for day in days:
            for report in (await sla_figures(repo, customer, day, day)).values():
                await store.store_day(customer.id, day, report, now)
        done.append((customer, days))
    return done, reports_wanted

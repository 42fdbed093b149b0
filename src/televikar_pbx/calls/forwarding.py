"""The forwarding watch in the service and on the command line (domain/forwarding.py).

:func:`read_rates` turns the call log's last weeks into each customer's 168 hourly rates
(``domain/staffing/measure.arrival_rates``, open hours only); :func:`read_traffic` adds
each customer's last call. ``serve`` runs :class:`ForwardingService`: the rates at start
and every hour, the last calls and a check every ``check_s``, one ``forwarding.silent``
warning when a customer's silence becomes improbable and one ``forwarding.resumed``
when its next call arrives. ``status`` and the wallboard show :meth:`flagged`;
``customers last-calls`` reads the same figures from the database itself.

It reads the database, never the routing's state: calls the dialplan took while the
service was down count too, once imported, and routing pays nothing for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial
from itertools import chain, repeat
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from televikar_pbx.clock import Clock
from televikar_pbx.db.arrivals_repo import ArrivalRepository
from televikar_pbx.db.repo_base import SessionSource
from televikar_pbx.domain.directory import Customer, Directory
from televikar_pbx.domain.forwarding import (
    ForwardingWatch,
    Reading,
    SilenceBegan,
    Traffic,
    is_open,
    threshold_for,
)
from televikar_pbx.domain.staffing.measure import arrival_rates

log = structlog.get_logger("televikar_pbx.forwarding")

# How often the rates are read again from the call log.
RELOAD_RATES_S = 3600.0

Rates = dict[int, tuple[float, ...]]


def history_window(now: datetime, weeks: float) -> tuple[datetime, datetime]:
    """The whole hours the rates come from: ``weeks`` back from the last hour's end."""
    end = now.replace(minute=0, second=0, microsecond=0)
    return end - timedelta(weeks=weeks), end


def rates_from_counts(
    counts: Iterable[tuple[int, datetime, int]],
    customers: Sequence[Customer],
    start: datetime,
    end: datetime,
) -> Rates:
    """Each customer's 168 rates from its calls per hour (empty: no call at all)."""
    per_customer: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for customer_id, hour, n in counts:
        per_customer[customer_id].append((hour, n))
    rates: Rates = {}
    for customer in customers:
        hours = per_customer.get(customer.id)
        if not hours:
            rates[customer.id] = ()
            continue
        calendar = customer.calendar
        figures = arrival_rates(
            chain.from_iterable(repeat(hour, n) for hour, n in hours),
            start=start,
            end=end,
            tz=ZoneInfo(calendar.timezone),
            is_open=partial(is_open, calendar),
        )
        rates[customer.id] = tuple(figures) if any(figures) else ()
    return rates


async def read_rates(
    source: SessionSource, directory: Directory, now: datetime, weeks: float
) -> Rates:
    """The rates from the call log's last ``weeks`` (counted per hour by the database;
    the arithmetic in a worker thread, off the event loop)."""
    start, end = history_window(now, weeks)
    counts = await ArrivalRepository(source).hourly_arrivals(start, end)
    customers = list(directory.customers)
    return await asyncio.to_thread(rates_from_counts, counts, customers, start, end)


async def read_traffic(source: SessionSource, directory: Directory, rates: Rates) -> list[Traffic]:
    last = await ArrivalRepository(source).last_arrivals()
    return [
        Traffic(c.id, c.calendar, rates.get(c.id, ()), last.get(c.id)) for c in directory.customers
    ]


def reading_json(reading: Reading, customer: Customer | None) -> dict[str, Any]:
    """One customer's figures for ``status --json``, the wallboard and ``last-calls``."""
    last = reading.last_call
    if last is not None and customer is not None:  # with the customer's UTC offset
        last = last.astimezone(ZoneInfo(customer.calendar.timezone))
    return {
        "id": reading.customer_id,
        "name": customer.name if customer else None,
        "last_call": last.isoformat() if last else None,
        "silent_s": round((reading.at - last).total_seconds(), 1) if last else None,
        "open_now": reading.open_now,
        "rate_per_hour": round(reading.rate_now, 2),
        "expected_since_last_call": round(reading.expected, 2),
        "chance_of_silence": reading.chance,
        "flagged": reading.flagged,
    }


async def read_once(
    source: SessionSource, directory: Directory, now: datetime, *, weeks: float, silence_p: float
) -> list[Reading]:
    """Every customer's reading at ``now``, straight from the database (the command
    line's ``customers last-calls``): a customer is flagged as the service would."""
    rates = await read_rates(source, directory, now, weeks)
    watch = ForwardingWatch(threshold_for(silence_p))
    watch.check(await read_traffic(source, directory, rates), now)
    return [watch.readings[c.id] for c in directory.customers]


class ForwardingService:
    """The watch as a task of ``serve`` (see the module doc)."""

    def __init__(
        self,
        source: SessionSource,
        directory: Callable[[], Directory],
        clock: Clock,
        *,
        history_weeks: float,
        silence_p: float,
        check_s: float,
    ) -> None:
        self._source = source
        self._directory = directory
        self._clock = clock
        self._weeks = history_weeks
        self._check_s = check_s
        self.watch = ForwardingWatch(threshold_for(silence_p))
        self._rates: Rates = {}
        self._rates_at: float | None = None  # loop time of the last reload
        self._rates_of: Directory | None = None  # the directory they were read for
        self._task: asyncio.Task[None] | None = None
        self._subscribers: list[Callable[[dict[str, Any]], None]] = []

    def subscribe(self, checked: Callable[[dict[str, Any]], None]) -> None:
        """Call ``checked(self.flagged())`` after every check (the wallboards)."""
        self._subscribers.append(checked)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="forwarding-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def flagged(self) -> dict[str, Any]:
        """The customers in an episode of silence, for ``status`` and the wallboard."""
        customers = {c.id: c for c in self._directory().customers}
        checked_at = max((r.at for r in self.watch.readings.values()), default=None)
        return {
            "checked_at": checked_at.isoformat() if checked_at else None,
            "threshold": round(self.watch.threshold, 3),
            "flagged": [
                reading_json(r, customers.get(r.customer_id)) for r in self.watch.flagged()
            ],
        }

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:  # the database away: try again at the next check
                log.warning("forwarding.check_failed", error=str(exc).splitlines()[0])
            await asyncio.sleep(self._check_s)

    async def check(self) -> None:
        directory = self._directory()
        now = self._clock.now()
        loop_time = asyncio.get_running_loop().time()
        stale = self._rates_at is None or loop_time - self._rates_at >= RELOAD_RATES_S
        if stale or directory is not self._rates_of:
            self._rates = await read_rates(self._source, directory, now, self._weeks)
            self._rates_at, self._rates_of = loop_time, directory
            log.info(
                "forwarding.rates_loaded",
                customers=sum(1 for r in self._rates.values() if r),
                weeks=self._weeks,
            )
        traffic = await read_traffic(self._source, directory, self._rates)
        names = {c.id: c.name for c in directory.customers}
        for notice in self.watch.check(traffic, now):
            bound = log.bind(customer=names.get(notice.customer_id), customer_id=notice.customer_id)
            if isinstance(notice, SilenceBegan):
                bound.warning(
                    "forwarding.silent",
                    last_call=notice.last_call.isoformat(),
                    expected=round(notice.expected, 2),
                )
            else:
                silent_s = (notice.call_at - notice.silent_since).total_seconds()
                bound.info(
                    "forwarding.resumed",
                    silent_since=notice.silent_since.isoformat(),
                    call_at=notice.call_at.isoformat(),
                    silent_s=round(silent_s, 1),
                )
        if self._subscribers:
            flagged = self.flagged()
            for checked in self._subscribers:
                checked(flagged)

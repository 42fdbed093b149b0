"""Customers (numbers, rules, calendar, report settings, bookings) and agents, as
``domain`` types.

Rules are stored as plain columns and checked (``directory_rows``) against the domain's
StrEnums; a customer without weekly hours is open around the clock, one without an
agreement is answered only during its bookings (see ``domain.calendar``).

Unique keys (customer name, forwarded-from number, agent endpoint) are looked up before
writing, for an error that names the holder; the schema's unique indexes still decide
a race (a ``Conflict`` from the flush).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import Enum
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from televikar_pbx.db import models
from televikar_pbx.db.agents_repo import AgentCredentials, AgentRepository
from televikar_pbx.db.directory_rows import (
    DEFAULT_RULES,
    agreement_columns,
    check_exceptions,
    hours_key,
    load_agents,
    load_customers,
    load_reports,
    price_columns,
    report_columns,
    rule_columns,
)
from televikar_pbx.db.repo_base import (
    Conflict,
    NotFound,
    SessionSource,
    flush,
    require_aware,
)
from televikar_pbx.domain.billing import Prices
from televikar_pbx.domain.calendar import Agreement, Booking, DateException, OpeningHours
from televikar_pbx.domain.desk_live import check_greeting
from televikar_pbx.domain.directory import Customer, CustomerRules, Directory
from televikar_pbx.domain.reporting import ReportSettings

DEFAULT_TIMEZONE = "Europe/Oslo"
__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_TIMEZONE",
    "KEEP",
    "AgentCredentials",
    "DirectoryRepository",
    "load_directory",
]


class Keep(Enum):
    """``update_customer``'s "leave as it is" where None means something."""

    KEEP = "keep"


KEEP = Keep.KEEP


async def load_directory(source: SessionSource) -> Directory:
    return await DirectoryRepository(source).load()


class DirectoryRepository(AgentRepository):
    """Customers, their numbers, rules, calendars and report settings; agents and whom
    they answer for (``AgentRepository``)."""

    async def load(self) -> Directory:
        async with self._unit() as s:
            return Directory(customers=await load_customers(s), agents=await load_agents(s))

    async def has_customers(self) -> bool:
        async with self._unit() as s:
            return bool(await s.scalar(select(exists().select_from(models.Customer))))

    # --- customers ----------------------------------------------------------------------

    async def list_customers(self) -> tuple[Customer, ...]:
        async with self._unit() as s:
            return await load_customers(s)

    async def get_customer(self, customer_id: int) -> Customer:
        async with self._unit() as s:
            found = await load_customers(s, [customer_id])
        if not found:
            raise NotFound(f"no customer with id {customer_id}")
        return found[0]

    async def find_customer(self, key: str) -> Customer:
        """The customer named ``key`` (exactly, else ignoring case), else with id ``key``."""
        c = models.Customer
        async with self._unit() as s:
            ids = list(await s.scalars(select(c.id).where(c.name == key)))
            if not ids:
                lowered = key.casefold()
                rows = await s.execute(select(c.id, c.name))
                ids = [i for i, name in rows if name.casefold() == lowered]
            if not ids and key.isdigit():
                ids = list(await s.scalars(select(c.id).where(c.id == int(key))))
            if len(ids) != 1:
                raise NotFound(f"no customer {key!r} (give its name or id)")
            return (await load_customers(s, ids))[0]

    async def report_settings(self, customer_id: int) -> ReportSettings:
        async with self._unit() as s:
            reports = await load_reports(s, [customer_id])
        if customer_id not in reports:
            raise NotFound(f"no customer with id {customer_id}")
        return reports[customer_id]

    async def all_report_settings(self) -> dict[int, ReportSettings]:
        """Report settings by customer id."""
        async with self._unit() as s:
            return await load_reports(s)

    async def add_customer(
        self,
        name: str,
        display_name: str,
        numbers: Iterable[str] = (),
        *,
        timezone: str = DEFAULT_TIMEZONE,
        forwarded_from: Iterable[str] = (),
        rules: CustomerRules | None = None,
        agreement: Agreement | None = None,
        hours: Iterable[OpeningHours] = (),
        exceptions: Iterable[DateException] = (),
        report: ReportSettings | None = None,
        prices: Prices | None = None,
    ) -> Customer:
        """Add a customer with its DIDs (``numbers``, which other customers may share),
        forwarded-from numbers (each names one customer only), rules (None: the service's
        defaults), calendar (no hours: always open; no agreement: bookings only) and
        report settings (None: the design's default targets, no reports) and prices
        (None: all 0)."""
        dids, forwards = (
            _unique("number", numbers),
            _unique("forwarded-from number", forwarded_from),
        )
        weekly = tuple(sorted(hours, key=hours_key))
        special = tuple(sorted(exceptions, key=lambda e: e.day))
        check_exceptions(special)
        report = report or ReportSettings()
        columns = rule_columns(rules) | agreement_columns(agreement) | report_columns(report)
        columns |= price_columns(prices or Prices())
        async with self._unit() as s:
            await _check_name_free(s, name, None)
            row = models.Customer(
                name=name, display_name=display_name, timezone=timezone, **columns
            )
            s.add(row)
            await flush(s, f"customer {name!r}")
            await _write_numbers(s, row.id, name, dids, forwards)
            await _write_calendar(s, row.id, name, weekly, special)
            await _write_emails(s, row.id, name, report.emails)
            return (await load_customers(s, [row.id]))[0]

    async def set_greeting(self, customer_id: int, greeting: str | None) -> None:
        """The agent's greeting template (checked: ``domain.desk_live.check_greeting``);
        None: the default."""
        if greeting is not None:
            greeting = check_greeting(greeting)
        async with self._unit() as s:
            await s.execute(
                update(models.Customer)
                .where(models.Customer.id == customer_id)
                .values(greeting=greeting)
            )

    async def update_customer(
        self,
        customer_id: int,
        *,
        name: str | None = None,
        display_name: str | None = None,
        timezone: str | None = None,
        numbers: Iterable[str] | None = None,
        forwarded_from: Iterable[str] | None = None,
        rules: CustomerRules | None = None,
        agreement: Agreement | Literal[Keep.KEEP] | None = KEEP,
        hours: Iterable[OpeningHours] | None = None,
        exceptions: Iterable[DateException] | None = None,
        report: ReportSettings | None = None,
        prices: Prices | None = None,
    ) -> Customer:
        """Change what is given (None, or KEEP for ``agreement``: leave as it is). Lists
        given replace the stored ones: DIDs and forwarded-from numbers each as a whole,
        weekly hours, date exceptions, report addresses. Given ``rules`` replace every
        rule, the wrap-up time included. Bookings stay."""
        columns: dict[str, object] = {}
        if rules is not None:
            columns |= rule_columns(rules)
        if agreement is not KEEP:
            columns |= agreement_columns(agreement)
        if report is not None:
            columns |= report_columns(report)
        if prices is not None:
            columns |= price_columns(prices)
        columns |= {
            key: value
            for key, value in (
                ("name", name),
                ("display_name", display_name),
                ("timezone", timezone),
            )
            if value is not None
        }
        weekly = None if hours is None else tuple(sorted(hours, key=hours_key))
        special = None if exceptions is None else tuple(sorted(exceptions, key=lambda e: e.day))
        if special is not None:
            check_exceptions(special)
        async with self._unit() as s:
            row = await s.get(models.Customer, customer_id)
            if row is None:
                raise NotFound(f"no customer with id {customer_id}")
            if name is not None:
                await _check_name_free(s, name, customer_id)
            for key, value in columns.items():
                setattr(row, key, value)
            await flush(s, f"customer {row.name!r}")
            cn = models.CustomerNumber
            for kind, given in (("did", numbers), ("forwarded_from", forwarded_from)):
                if given is not None:
                    await s.execute(delete(cn).where(cn.customer_id == row.id, cn.kind == kind))
            await _write_numbers(
                s,
                row.id,
                row.name,
                () if numbers is None else _unique("number", numbers),
                () if forwarded_from is None else _unique("forwarded-from number", forwarded_from),
            )
            if weekly is not None:
                oh = models.OpeningHours
                await s.execute(delete(oh).where(oh.customer_id == row.id))
            if special is not None:
                de = models.DateException
                await s.execute(delete(de).where(de.customer_id == row.id))
            await _write_calendar(s, row.id, row.name, weekly or (), special or ())
            if report is not None:
                e = models.CustomerReportEmail
                await s.execute(delete(e).where(e.customer_id == row.id))
                await _write_emails(s, row.id, row.name, report.emails)
            return (await load_customers(s, [row.id]))[0]

    async def add_booking(
        self, customer_id: int, starts_at: dt.datetime, ends_at: dt.datetime
    ) -> Booking:
        """Book ``[starts_at, ends_at)`` for the customer; a ``Conflict`` if it overlaps
        one of the customer's bookings. Returned in UTC, as ``list_bookings`` gives it."""
        require_aware("starts_at", starts_at)
        require_aware("ends_at", ends_at)
        booking = Booking(starts_at.astimezone(dt.UTC), ends_at.astimezone(dt.UTC))
        b = models.Booking
        async with self._unit() as s:
            # A no-op write to the customer's row first: on PostgreSQL it takes the row
            # lock, on SQLite it starts the write transaction. Either way two bookings of
            # one customer queue here, so the overlap check below cannot race.
            locked = (
                await s.execute(
                    update(models.Customer)
                    .where(models.Customer.id == customer_id)
                    .values(timezone=models.Customer.timezone)
                    .returning(models.Customer.name, models.Customer.timezone)
                    .execution_options(synchronize_session=False)
                )
            ).first()
            if locked is None:
                raise NotFound(f"no customer with id {customer_id}")
            clash = await s.scalar(
                select(b)
                .where(
                    b.customer_id == customer_id,
                    b.starts_at < booking.ends_at,
                    booking.starts_at < b.ends_at,
                )
                .order_by(b.starts_at)
                .limit(1)
            )
            if clash is not None:
                zone = ZoneInfo(locked.timezone)
                raise Conflict(
                    f"booking {_span(booking.starts_at, booking.ends_at, zone)} of customer"
                    f" {locked.name!r} overlaps its booking"
                    f" {_span(clash.starts_at, clash.ends_at, zone)} ({locked.timezone} time)"
                )
            s.add(b(customer_id=customer_id, starts_at=booking.starts_at, ends_at=booking.ends_at))
            await flush(s, f"booking of customer {customer_id}")
        return booking

    async def list_bookings(self, customer_id: int) -> list[Booking]:
        """The customer's bookings in order of start, past ones included."""
        b = models.Booking
        async with self._unit() as s:
            rows = await s.execute(
                select(b.starts_at, b.ends_at)
                .where(b.customer_id == customer_id)
                .order_by(b.starts_at)
            )
            return [Booking(starts_at, ends_at) for starts_at, ends_at in rows]


# --- writes shared by add and update ------------------------------------------------


def _unique(what: str, values: Iterable[str]) -> tuple[str, ...]:
    given = tuple(values)
    for value in given:
        if given.count(value) > 1:
            raise Conflict(f"{what} {value} is given twice")
    return given


def _span(starts_at: dt.datetime, ends_at: dt.datetime, zone: ZoneInfo) -> str:
    start, end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    return f"{start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M}"


async def _check_name_free(s: AsyncSession, name: str, customer_id: int | None) -> None:
    c = models.Customer
    holder = await s.scalar(select(c.id).where(c.name == name, c.id != (customer_id or 0)))
    if holder is not None:
        raise Conflict(f"a customer named {name!r} exists already (id {holder})")


async def _write_numbers(
    s: AsyncSession, customer_id: int, name: str, dids: tuple[str, ...], forwards: tuple[str, ...]
) -> None:
    if forwards:
        cn, c = models.CustomerNumber, models.Customer
        taken = (
            await s.execute(
                select(cn.number, c.name)
                .join(c, c.id == cn.customer_id)
                .where(
                    cn.kind == "forwarded_from",
                    cn.number.in_(forwards),
                    cn.customer_id != customer_id,
                )
                .order_by(cn.number)
            )
        ).first()
        if taken is not None:
            raise Conflict(
                f"forwarded-from number {taken.number} belongs to customer {taken.name!r}"
            )
    s.add_all(
        [models.CustomerNumber(customer_id=customer_id, number=n, kind="did") for n in dids]
        + [
            models.CustomerNumber(customer_id=customer_id, number=n, kind="forwarded_from")
            for n in forwards
        ]
    )
    await flush(s, f"numbers of customer {name!r} ({', '.join(dids + forwards)})")


async def _write_calendar(
    s: AsyncSession,
    customer_id: int,
    name: str,
    weekly: tuple[OpeningHours, ...],
    special: tuple[DateException, ...],
) -> None:
    s.add_all(
        models.OpeningHours(
            customer_id=customer_id, weekday=h.weekday, opens=h.opens, closes=h.closes
        )
        for h in weekly
    )
    s.add_all(
        models.DateException(customer_id=customer_id, day=e.day, opens=e.opens, closes=e.closes)
        for e in special
    )
    await flush(s, f"service hours of customer {name!r}")


async def _write_emails(
    s: AsyncSession, customer_id: int, name: str, emails: tuple[str, ...]
) -> None:
    s.add_all(models.CustomerReportEmail(customer_id=customer_id, email=e) for e in emails)
    await flush(s, f"report addresses of customer {name!r}")

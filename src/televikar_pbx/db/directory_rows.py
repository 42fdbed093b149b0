"""Rows to ``domain`` objects and back, for ``directory_repo``: customers with their
numbers, rules, calendars and report settings; agents with whom they answer for.

Values of a growing vocabulary (hold style, report interval, ...) are checked here
against the domain's StrEnums; a value unknown to this version (written by a newer one)
raises ValueError on the way out.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Collection
from types import MappingProxyType
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from televikar_pbx.db import models
from televikar_pbx.domain.billing import PRICE_FIELDS, Prices
from televikar_pbx.domain.calendar import (
    Agreement,
    Booking,
    Calendar,
    DateException,
    OpeningHours,
)
from televikar_pbx.domain.directory import (
    Agent,
    ClosedAction,
    Customer,
    CustomerRules,
    HoldStyle,
    OutsidePolicy,
)
from televikar_pbx.domain.reporting import ReportInterval, ReportSettings

DEFAULT_RULES = CustomerRules()

Ids = Collection[int] | None  # None: every row
S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def _only(query: S, column: Any, ids: Ids) -> S:
    return query if ids is None else query.where(column.in_(ids))


async def load_customers(s: AsyncSession, ids: Ids = None) -> tuple[Customer, ...]:
    """Customers (all, or those with ``ids``) in order of id."""
    numbers: defaultdict[int, list[str]] = defaultdict(list)
    forwarded: defaultdict[int, list[str]] = defaultdict(list)
    cn = models.CustomerNumber
    query = select(cn.customer_id, cn.number, cn.kind).order_by(cn.id)
    for customer_id, number, kind in await s.execute(_only(query, cn.customer_id, ids)):
        (numbers if kind == "did" else forwarded)[customer_id].append(number)

    hours: defaultdict[int, list[OpeningHours]] = defaultdict(list)
    oh = models.OpeningHours
    query_oh = select(oh).order_by(oh.customer_id, oh.weekday, oh.opens, oh.closes, oh.id)
    for h in await s.scalars(_only(query_oh, oh.customer_id, ids)):
        hours[h.customer_id].append(OpeningHours(h.weekday, h.opens, h.closes))

    exceptions: defaultdict[int, list[DateException]] = defaultdict(list)
    de = models.DateException
    query_de = select(de).order_by(de.customer_id, de.day)
    for e in await s.scalars(_only(query_de, de.customer_id, ids)):
        exceptions[e.customer_id].append(DateException(e.day, e.opens, e.closes))

    bookings: defaultdict[int, list[Booking]] = defaultdict(list)
    b = models.Booking
    query_b = select(b.customer_id, b.starts_at, b.ends_at).order_by(b.customer_id, b.starts_at)
    for customer_id, starts_at, ends_at in await s.execute(_only(query_b, b.customer_id, ids)):
        bookings[customer_id].append(Booking(starts_at, ends_at))

    c = models.Customer
    return tuple(
        Customer(
            id=row.id,
            name=row.name,
            display_name=row.display_name,
            timezone=row.timezone,
            numbers=tuple(numbers[row.id]),
            forwarded_from=tuple(forwarded[row.id]),
            rules=rules_from_row(row),
            prices=prices_from_row(row),
            greeting=row.greeting,
            calendar=Calendar(
                timezone=row.timezone,
                agreement=(
                    Agreement(row.agreement_start, row.agreement_end)
                    if row.agreement_start is not None
                    else None
                ),
                bookings=tuple(bookings[row.id]),
                hours=tuple(hours[row.id]),
                exceptions=tuple(exceptions[row.id]),
            ),
        )
        for row in await s.scalars(_only(select(c).order_by(c.id), c.id, ids))
    )


async def load_agents(s: AsyncSession, ids: Ids = None) -> tuple[Agent, ...]:
    """Agents (all, or those with ``ids``) in order of id."""
    priorities: defaultdict[int, dict[int, int]] = defaultdict(dict)
    ac = models.AgentCustomer
    query = select(ac.agent_id, ac.customer_id, ac.priority).order_by(ac.agent_id, ac.customer_id)
    for agent_id, customer_id, priority in await s.execute(_only(query, ac.agent_id, ids)):
        priorities[agent_id][customer_id] = priority
    a = models.Agent
    return tuple(
        Agent(
            id=row.id,
            name=row.name,
            endpoint=row.endpoint,
            customer_ids=frozenset(priorities[row.id]),
            priorities=MappingProxyType(priorities[row.id]),
            logged_in=row.logged_in,
            paused=row.paused,
        )
        for row in await s.scalars(_only(select(a).order_by(a.id), a.id, ids))
    )


async def load_reports(s: AsyncSession, ids: Ids = None) -> dict[int, ReportSettings]:
    """Report settings by customer id (all customers, or those with ``ids``)."""
    emails: defaultdict[int, list[str]] = defaultdict(list)
    e = models.CustomerReportEmail
    query = select(e.customer_id, e.email).order_by(e.customer_id, e.id)
    for customer_id, email in await s.execute(_only(query, e.customer_id, ids)):
        emails[customer_id].append(email)
    c = models.Customer
    query_c = select(c.id, c.sl12_target, c.sl20_target, c.lost_target, c.report_interval).order_by(
        c.id
    )
    return {
        customer_id: ReportSettings(
            sl12_target=sl12,
            sl20_target=sl20,
            lost_target=lost,
            interval=ReportInterval(interval),
            emails=tuple(emails[customer_id]),
        )
        for customer_id, sl12, sl20, lost, interval in await s.execute(_only(query_c, c.id, ids))
    }


def prices_from_row(row: models.Customer) -> Prices:
    return Prices(**{name: getattr(row, name) for name in PRICE_FIELDS})


def rules_from_row(row: models.Customer) -> CustomerRules:
    return CustomerRules(
        hold_style=HoldStyle(row.hold_style),
        hold_media=row.hold_media,
        wrap_up_s=DEFAULT_RULES.wrap_up_s if row.wrap_up_s is None else row.wrap_up_s,
        max_wait_s=row.max_wait_s,
        answer_target_s=row.answer_target_s,
        closed_action=ClosedAction(row.closed_action),
        outside_policy=OutsidePolicy(row.outside_policy),
        message_prompt=row.message_prompt,
    )


# --- checks on the way in -----------------------------------------------------------


def rule_columns(rules: CustomerRules | None) -> dict[str, Any]:
    """The customers columns for ``rules``; None stores wrap_up_s as NULL (the service
    default, whatever it becomes) and today's defaults for the rest."""
    given = rules or DEFAULT_RULES
    for field in ("wrap_up_s", "max_wait_s", "answer_target_s"):
        value = getattr(given, field)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{field} must be a finite number >= 0, got {value!r}")
    return {
        "hold_style": HoldStyle(given.hold_style).value,
        "hold_media": given.hold_media,
        "wrap_up_s": None if rules is None else given.wrap_up_s,
        "max_wait_s": given.max_wait_s,
        "answer_target_s": given.answer_target_s,
        "closed_action": ClosedAction(given.closed_action).value,
        "outside_policy": OutsidePolicy(given.outside_policy).value,
        "message_prompt": given.message_prompt,
    }


def price_columns(prices: Prices) -> dict[str, Any]:
    """The customers columns for ``prices`` (whole øre, checked by ``Prices``)."""
    return {name: getattr(prices, name) for name in PRICE_FIELDS}


def report_columns(report: ReportSettings) -> dict[str, Any]:
    return {
        "sl12_target": report.sl12_target,
        "sl20_target": report.sl20_target,
        "lost_target": report.lost_target,
        "report_interval": ReportInterval(report.interval).value,
    }


def agreement_columns(agreement: Agreement | None) -> dict[str, Any]:
    if agreement is not None and agreement.end is not None and agreement.end < agreement.start:
        raise ValueError(f"agreement ends ({agreement.end}) before it starts")
    return {
        "agreement_start": agreement.start if agreement else None,
        "agreement_end": agreement.end if agreement else None,
    }


def hours_key(hours: OpeningHours) -> tuple[int, dt.time, dt.time]:
    return (hours.weekday, hours.opens, hours.closes)


def check_exceptions(exceptions: tuple[DateException, ...]) -> None:
    days = [e.day for e in exceptions]
    if len(set(days)) != len(days):
        raise ValueError(f"more than one exception for one day: {sorted(days)}")
    for e in exceptions:
        if (e.opens is None) != (e.closes is None):
            raise ValueError(f"exception on {e.day}: give both opens and closes, or neither")
        if e.opens is not None and e.closes is not None:
            OpeningHours(e.day.weekday(), e.opens, e.closes)  # closes after opens

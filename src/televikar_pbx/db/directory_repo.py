"""Customers (numbers, rules, calendar, bookings) and agents, as ``domain.directory``
types.

Rules are stored as plain columns and checked here against the domain's StrEnums; a
customer without weekly hours is open around the clock, one without an agreement is
answered only during its bookings (see ``domain.calendar``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from televikar_pbx.db import models
from televikar_pbx.db.repo_base import (
    Conflict,
    NotFound,
    Repository,
    SessionSource,
    flush,
    require_aware,
)
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
    Directory,
    HoldStyle,
    OutsidePolicy,
)

DEFAULT_TIMEZONE = "Europe/Oslo"
DEFAULT_RULES = CustomerRules()


async def load_directory(source: SessionSource) -> Directory:
    return await DirectoryRepository(source).load()


class DirectoryRepository(Repository):
    """Customers, their numbers, rules and calendars; agents and whom they answer for."""

    async def load(self) -> Directory:
        async with self._unit() as s:
            return Directory(customers=await _load_customers(s), agents=await _load_agents(s))

    async def has_customers(self) -> bool:
        async with self._unit() as s:
            return bool(await s.scalar(select(exists().select_from(models.Customer))))

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
    ) -> Customer:
        """Add a customer with its DIDs (``numbers``, which other customers may share),
        forwarded-from numbers (each names one customer only), rules (None: the service's
        defaults) and calendar (no hours: always open; no agreement: bookings only)."""
        dids, forwards = tuple(numbers), tuple(forwarded_from)
        rule_columns = _rule_columns(rules)
        if agreement is not None and agreement.end is not None and agreement.end < agreement.start:
            raise ValueError(f"agreement ends ({agreement.end}) before it starts")
        weekly = tuple(sorted(hours, key=_hours_key))
        special = tuple(sorted(exceptions, key=lambda e: e.day))
        _check_exceptions(special)
        async with self._unit() as s:
            row = models.Customer(
                name=name,
                display_name=display_name,
                timezone=timezone,
                agreement_start=agreement.start if agreement else None,
                agreement_end=agreement.end if agreement else None,
                **rule_columns,
            )
            s.add(row)
            await flush(s, f"customer {name!r}")
            s.add_all(
                [models.CustomerNumber(customer_id=row.id, number=n, kind="did") for n in dids]
                + [
                    models.CustomerNumber(customer_id=row.id, number=n, kind="forwarded_from")
                    for n in forwards
                ]
            )
            await flush(s, f"numbers of customer {name!r} ({', '.join(dids + forwards)})")
            s.add_all(
                models.OpeningHours(
                    customer_id=row.id, weekday=h.weekday, opens=h.opens, closes=h.closes
                )
                for h in weekly
            )
            s.add_all(
                models.DateException(customer_id=row.id, day=e.day, opens=e.opens, closes=e.closes)
                for e in special
            )
            await flush(s, f"service hours of customer {name!r}")
            customer_id = row.id
        return Customer(
            id=customer_id,
            name=name,
            display_name=display_name,
            timezone=timezone,
            numbers=dids,
            forwarded_from=forwards,
            rules=rules or DEFAULT_RULES,
            calendar=Calendar(
                timezone=timezone, agreement=agreement, hours=weekly, exceptions=special
            ),
        )

    async def add_agent(
        self,
        name: str,
        endpoint: str,
        customer_ids: Iterable[int] | Mapping[int, int] = (),
        *,
        logged_in: bool = False,
        paused: bool = False,
    ) -> Agent:
        """Add an agent serving ``customer_ids`` (or a mapping customer id -> priority)."""
        priorities = (
            dict(customer_ids)
            if isinstance(customer_ids, Mapping)
            else dict.fromkeys(customer_ids, 0)
        )
        async with self._unit() as s:
            if priorities:
                known = set(
                    await s.scalars(
                        select(models.Customer.id).where(models.Customer.id.in_(priorities))
                    )
                )
                missing = sorted(set(priorities) - known)
                if missing:
                    raise NotFound(f"agent {endpoint!r}: no customer with id {missing}")
            row = models.Agent(name=name, endpoint=endpoint, logged_in=logged_in, paused=paused)
            s.add(row)
            await flush(s, f"agent {endpoint!r}")
            s.add_all(
                models.AgentCustomer(agent_id=row.id, customer_id=cid, priority=prio)
                for cid, prio in priorities.items()
            )
            await flush(s, f"customers of agent {endpoint!r}")
            agent_id = row.id
        return Agent(
            id=agent_id,
            name=name,
            endpoint=endpoint,
            customer_ids=frozenset(priorities),
            priorities=MappingProxyType(priorities),
            logged_in=logged_in,
            paused=paused,
        )

    async def set_agent_state(
        self, agent_id: int, *, logged_in: bool | None = None, paused: bool | None = None
    ) -> None:
        """Store the agent's login and pause state (None: leave as it is)."""
        values = {
            key: value
            for key, value in (("logged_in", logged_in), ("paused", paused))
            if value is not None
        }
        async with self._unit() as s:
            if values:
                found = await s.scalar(
                    update(models.Agent)
                    .where(models.Agent.id == agent_id)
                    .values(**values)
                    .returning(models.Agent.id)
                    .execution_options(synchronize_session=False)
                )
            else:
                found = await s.scalar(select(models.Agent.id).where(models.Agent.id == agent_id))
            if found is None:
                raise NotFound(f"no agent with id {agent_id}")

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
            locked = await s.scalar(
                update(models.Customer)
                .where(models.Customer.id == customer_id)
                .values(timezone=models.Customer.timezone)
                .returning(models.Customer.id)
                .execution_options(synchronize_session=False)
            )
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
                raise Conflict(
                    f"booking {booking.starts_at:%Y-%m-%d %H:%M}..{booking.ends_at:%Y-%m-%d %H:%M}"
                    f" UTC of customer {customer_id} overlaps the booking"
                    f" {clash.starts_at:%Y-%m-%d %H:%M}..{clash.ends_at:%Y-%m-%d %H:%M} UTC"
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


# --- rows to domain objects ---------------------------------------------------------


async def _load_customers(s: AsyncSession) -> tuple[Customer, ...]:
    numbers: defaultdict[int, list[str]] = defaultdict(list)
    forwarded: defaultdict[int, list[str]] = defaultdict(list)
    cn = models.CustomerNumber
    for customer_id, number, kind in await s.execute(
        select(cn.customer_id, cn.number, cn.kind).order_by(cn.id)
    ):
        (numbers if kind == "did" else forwarded)[customer_id].append(number)

    hours: defaultdict[int, list[OpeningHours]] = defaultdict(list)
    oh = models.OpeningHours
    for h in await s.scalars(
        select(oh).order_by(oh.customer_id, oh.weekday, oh.opens, oh.closes, oh.id)
    ):
        hours[h.customer_id].append(OpeningHours(h.weekday, h.opens, h.closes))

    exceptions: defaultdict[int, list[DateException]] = defaultdict(list)
    de = models.DateException
    for e in await s.scalars(select(de).order_by(de.customer_id, de.day)):
        exceptions[e.customer_id].append(DateException(e.day, e.opens, e.closes))

    bookings: defaultdict[int, list[Booking]] = defaultdict(list)
    b = models.Booking
    for customer_id, starts_at, ends_at in await s.execute(
        select(b.customer_id, b.starts_at, b.ends_at).order_by(b.customer_id, b.starts_at)
    ):
        bookings[customer_id].append(Booking(starts_at, ends_at))

    return tuple(
        Customer(
            id=row.id,
            name=row.name,
            display_name=row.display_name,
            timezone=row.timezone,
            numbers=tuple(numbers[row.id]),
            forwarded_from=tuple(forwarded[row.id]),
            rules=_rules(row),
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
        for row in await s.scalars(select(models.Customer).order_by(models.Customer.id))
    )


async def _load_agents(s: AsyncSession) -> tuple[Agent, ...]:
    priorities: defaultdict[int, dict[int, int]] = defaultdict(dict)
    ac = models.AgentCustomer
    for agent_id, customer_id, priority in await s.execute(
        select(ac.agent_id, ac.customer_id, ac.priority).order_by(ac.agent_id, ac.customer_id)
    ):
        priorities[agent_id][customer_id] = priority
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
        for row in await s.scalars(select(models.Agent).order_by(models.Agent.id))
    )


def _rules(row: models.Customer) -> CustomerRules:
    # A value unknown to this version (written by a newer one) raises ValueError.
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


def _rule_columns(rules: CustomerRules | None) -> dict[str, Any]:
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


def _hours_key(hours: OpeningHours) -> tuple[int, dt.time, dt.time]:
    return (hours.weekday, hours.opens, hours.closes)


def _check_exceptions(exceptions: tuple[DateException, ...]) -> None:
    days = [e.day for e in exceptions]
    if len(set(days)) != len(days):
        raise ValueError(f"more than one exception for one day: {sorted(days)}")
    for e in exceptions:
        if (e.opens is None) != (e.closes is None):
            raise ValueError(f"exception on {e.day}: give both opens and closes, or neither")
        if e.opens is not None and e.closes is not None:
            OpeningHours(e.day.weekday(), e.opens, e.closes)  # closes after opens

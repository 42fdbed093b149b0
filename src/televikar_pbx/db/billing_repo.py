"""What billing reads: each customer's prices, agreement and time zone, its answered
calls and voice messages (by the calls' outcome) and the messages and orders agents
took (by the messages' kind and when they were taken), counted in the database
(``COUNT .. GROUP BY``, no rows loaded), and its bookings that overlap the month.
The rules are ``domain.billing``.

A customer's month is its local calendar month, so customers in different time zones
have different UTC bounds: the counts run once per time zone among the customers.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, select

from televikar_pbx.db import models
from televikar_pbx.db.directory_rows import prices_from_row
from televikar_pbx.db.repo_base import Repository, require_aware
from televikar_pbx.domain.billing import CustomerMonth, Month
from televikar_pbx.domain.calendar import Agreement, Booking
from televikar_pbx.domain.outcomes import Outcome

# The outcomes billing charges for, and the CallCounts field each one adds to.
BILLED_OUTCOMES = {Outcome.ANSWERED: "answered", Outcome.MESSAGE: "messages"}


@dataclass(frozen=True, slots=True)
class CallCounts:
    answered: int = 0
    messages: int = 0


# The kinds of message agents take, and the CallCounts field each one adds to. (A voice
# message is counted by its call's outcome, ``message``, as before messages had kinds.)
BILLED_KINDS = {"message": "taken_messages", "order": "orders"}


@dataclass(frozen=True, slots=True)
class TakenCounts:
    taken_messages: int = 0
    orders: int = 0


@dataclass(frozen=True, slots=True)
class BilledCustomer:
    """One customer's name and what billing needs of its month."""

    id: int
    name: str
    inputs: CustomerMonth


class BillingRepository(Repository):
    """Reads only; billing writes nothing."""

    async def call_counts(
        self, customer_ids: Collection[int], start: dt.datetime, end: dt.datetime
    ) -> dict[int, CallCounts]:
        """Answered calls and messages per customer among ``customer_ids`` that arrived
        in ``[start, end)``; a customer without any is left out."""
        require_aware("start", start)
        require_aware("end", end)
        if not customer_ids:
            return {}
        call = models.Call
        query = (
            select(call.customer_id, call.outcome, func.count())
            .where(
                call.customer_id.in_(customer_ids),
                call.arrived_at >= start,
                call.arrived_at < end,
                call.outcome.in_([o.value for o in BILLED_OUTCOMES]),
            )
            .group_by(call.customer_id, call.outcome)
        )
        counts: defaultdict[int, dict[str, int]] = defaultdict(dict)
        async with self._unit() as s:
            for customer_id, outcome, count in await s.execute(query):
                # Never None here: the WHERE clause asks for both.
                assert customer_id is not None and outcome is not None
                counts[customer_id][BILLED_OUTCOMES[Outcome(outcome)]] = count
        return {customer_id: CallCounts(**values) for customer_id, values in counts.items()}

    async def taken_counts(
        self, customer_ids: Collection[int], start: dt.datetime, end: dt.datetime
    ) -> dict[int, TakenCounts]:
        """Messages and orders agents took for ``customer_ids`` in ``[start, end)``."""
        require_aware("start", start)
        require_aware("end", end)
        if not customer_ids:
            return {}
        m = models.Message
        query = (
            select(m.customer_id, m.kind, func.count())
            .where(
                m.customer_id.in_(customer_ids),
                m.taken_at >= start,
                m.taken_at < end,
                m.kind.in_(list(BILLED_KINDS)),
            )
            .group_by(m.customer_id, m.kind)
        )
        counts: defaultdict[int, dict[str, int]] = defaultdict(dict)
        async with self._unit() as s:
            for customer_id, kind, count in await s.execute(query):
                counts[customer_id][BILLED_KINDS[kind]] = count
        return {customer_id: TakenCounts(**values) for customer_id, values in counts.items()}

    async def bookings_between(
        self, customer_ids: Collection[int], start: dt.datetime, end: dt.datetime
    ) -> dict[int, list[Booking]]:
        """The bookings of each of ``customer_ids`` that overlap ``[start, end)``, whole
        (not cut to the range), in order of start."""
        require_aware("start", start)
        require_aware("end", end)
        if not customer_ids:
            return {}
        b = models.Booking
        query = (
            select(b.customer_id, b.starts_at, b.ends_at)
            .where(b.customer_id.in_(customer_ids), b.starts_at < end, b.ends_at > start)
            .order_by(b.customer_id, b.starts_at)
        )
        found: defaultdict[int, list[Booking]] = defaultdict(list)
        async with self._unit() as s:
            for customer_id, starts_at, ends_at in await s.execute(query):
                found[customer_id].append(Booking(starts_at, ends_at))
        return dict(found)

    async def customer_months(
        self, month: Month, customer_ids: Collection[int] | None = None
    ) -> list[BilledCustomer]:
        """What ``domain.billing.invoice`` needs of ``month`` for each customer (all, or
        those with ``customer_ids``), in order of id."""
        c = models.Customer
        query = select(c).order_by(c.id)
        if customer_ids is not None:
            query = query.where(c.id.in_(customer_ids))
        async with self._unit() as s:
            rows = list(await s.scalars(query))
        by_zone: defaultdict[str, list[int]] = defaultdict(list)
        for row in rows:
            by_zone[row.timezone].append(row.id)
        counts: dict[int, CallCounts] = {}
        taken: dict[int, TakenCounts] = {}
        bookings: dict[int, list[Booking]] = {}
        for timezone, ids in by_zone.items():
            start, end = month.bounds(timezone)
            counts |= await self.call_counts(ids, start, end)
            taken |= await self.taken_counts(ids, start, end)
            bookings |= await self.bookings_between(ids, start, end)
        return [
            BilledCustomer(
                id=row.id,
                name=row.name,
                inputs=CustomerMonth(
                    month=month,
                    timezone=row.timezone,
                    prices=prices_from_row(row),
                    agreement=(
                        None
                        if row.agreement_start is None
                        else Agreement(row.agreement_start, row.agreement_end)
                    ),
                    bookings=tuple(bookings.get(row.id, ())),
                    answered_calls=counts.get(row.id, CallCounts()).answered,
                    messages=counts.get(row.id, CallCounts()).messages
                    + taken.get(row.id, TakenCounts()).taken_messages,
                    orders=taken.get(row.id, TakenCounts()).orders,
                ),
            )
            for row in rows
        ]

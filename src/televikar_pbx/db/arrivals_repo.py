"""What the forwarding watch reads of the call log: when calls arrived, per customer.

Every call with a customer counts as an arrival, whatever became of it (answered,
message, closed announcement, or taken by the dialplan while the service was down and
imported later): the question is whether the forwarding brings calls at all.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, func, literal_column, select

from televikar_pbx.db import models
from televikar_pbx.db.repo_base import Repository, require_aware

# An hour's start as text, in UTC, per dialect: SQLite stores UTCDateTime as
# 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC); PostgreSQL's timestamptz is formatted in UTC.
_HOUR_TEXT = {
    "sqlite": "substr(calls.arrived_at, 1, 13)",
    "postgresql": "to_char(calls.arrived_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')",
}


class ArrivalRepository(Repository):
    async def last_arrivals(self) -> dict[int, dt.datetime]:
        """Each customer's latest call (one index lookup per customer; customers
        without any call are left out)."""
        call, customer = models.Call, models.Customer
        latest = (
            select(func.max(call.arrived_at))
            .where(call.customer_id == customer.id)
            .scalar_subquery()
        )
        async with self._unit() as s:
            rows = await s.execute(select(customer.id, latest))
            return {customer_id: at for customer_id, at in rows if at is not None}

    async def hourly_arrivals(
        self, start: dt.datetime, end: dt.datetime
    ) -> list[tuple[int, dt.datetime, int]]:
        """Calls per customer per UTC hour that arrived in ``[start, end)``: (customer
        id, the hour's start, how many), counted by the database, so weeks of history
        are a few thousand rows, not every call."""
        require_aware("start", start)
        require_aware("end", end)
        call = models.Call
        async with self._unit() as s:
            conn = await s.connection()
            hour = literal_column(_HOUR_TEXT[conn.dialect.name], String())
            query = (
                select(call.customer_id, hour, func.count())
                .where(
                    call.customer_id.is_not(None),
                    call.arrived_at >= start,
                    call.arrived_at < end,
                )
                .group_by(call.customer_id, hour)
            )
            rows = await conn.execute(query)
            return [
                (int(customer_id), _hour(hour), int(n))
                for customer_id, hour, n in rows
                if customer_id is not None
            ]


def _hour(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H").replace(tzinfo=dt.UTC)

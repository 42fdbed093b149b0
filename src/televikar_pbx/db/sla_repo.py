"""Stored SLA figures: the hourly and daily aggregates ``sla nightly`` writes.

A period's row is replaced, never added to: storing a day twice leaves the same rows
(figures and all) as storing it once, so the nightly job can re-run and catch up freely.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select

from televikar_pbx.db import models
from televikar_pbx.db.repo_base import Repository, require_aware
from televikar_pbx.domain.sla import SlaReport


@dataclass(frozen=True, slots=True)
class SlaAggregateRecord:
    """One stored period: its figures as ``PeriodFigures.to_dict()``."""

    customer_id: int
    by: str
    period: str
    period_start: dt.datetime
    period_end: dt.datetime
    local_date: dt.date
    definition_version: int
    figures: dict[str, Any]
    computed_at: dt.datetime


class SlaRepository(Repository):
    """The ``sla_aggregates`` table."""

    async def store_day(
        self, customer_id: int, day: dt.date, report: SlaReport, computed_at: dt.datetime
    ) -> int:
        """Replace the stored periods of ``report`` (one local day, by hour or day) with
        its figures; returns the number of rows written."""
        require_aware("computed_at", computed_at)
        table = models.SlaAggregate
        starts = [p.period.start for p in report.periods]
        rows = [
            {
                "customer_id": customer_id,
                "by": report.by,
                "period": p.period.label,
                "period_start": p.period.start,
                "period_end": p.period.end,
                "local_date": day,
                "definition_version": report.definition_version,
                "figures": p.to_dict(),
                "computed_at": computed_at,
            }
            for p in report.periods
        ]
        async with self._unit() as s:
            await s.execute(
                delete(table).where(
                    table.customer_id == customer_id,
                    table.by == report.by,
                    table.period_start.in_(starts),
                )
            )
            if rows:
                await s.execute(insert(table), rows)
        return len(rows)

    async def last_stored_day(self, customer_id: int) -> dt.date | None:
        """The latest local date with a stored daily row; None: nothing stored yet."""
        table = models.SlaAggregate
        async with self._unit() as s:
            day: dt.date | None = await s.scalar(
                select(func.max(table.local_date)).where(
                    table.customer_id == customer_id, table.by == "day"
                )
            )
            return day

    async def aggregates(
        self, customer_id: int, by: str, first_day: dt.date, last_day: dt.date
    ) -> list[SlaAggregateRecord]:
        """The stored periods of local dates ``first_day``..``last_day``, in order."""
        table = models.SlaAggregate
        query = (
            select(table)
            .where(
                table.customer_id == customer_id,
                table.by == by,
                table.local_date >= first_day,
                table.local_date <= last_day,
            )
            .order_by(table.period_start)
        )
        async with self._unit() as s:
            return [
                SlaAggregateRecord(
                    customer_id=r.customer_id,
                    by=r.by,
                    period=r.period,
                    period_start=r.period_start,
                    period_end=r.period_end,
                    local_date=r.local_date,
                    definition_version=r.definition_version,
                    figures=dict(r.figures),
                    computed_at=r.computed_at,
                )
                for r in await s.scalars(query)
            ]

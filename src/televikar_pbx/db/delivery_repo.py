"""Report e-mails: what ``reports send`` sent, tried, or is sending (``report_deliveries``).

One row per customer and period. Sending goes ``claim`` (pending, an attempt more) →
SMTP → ``mark_sent`` or ``mark_failed``, each its own transaction when the repository is
built on a sessionmaker, so the row says *pending* while the e-mail is on its way.

``claim`` is the guard against sending twice: it takes the row only if it is not sent
(unless an explicit resend) and not pending from a run still going on, with a
conditional write that a concurrent run cannot also win (the unique key decides a race
to insert, the previous status and attempt count a race to update). A pending row older
than ``PENDING_STALE`` was left by a run that died before recording the outcome; it is
taken over (at worst the customer gets that report twice, rather than never).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from televikar_pbx.db import models
from televikar_pbx.db.repo_base import NotFound, Repository, require_aware
from televikar_pbx.domain.delivery import Delivery, DeliveryStatus, ReportPeriod
from televikar_pbx.domain.reporting import ReportInterval

PENDING_STALE = dt.timedelta(minutes=30)
# Stored errors are one line; an SMTP reply can be long.
MAX_ERROR_CHARS = 1000


def _delivery(row: models.ReportDelivery) -> Delivery:
    return Delivery(
        id=row.id,
        customer_id=row.customer_id,
        interval=ReportInterval(row.interval),
        period=ReportPeriod(row.first_day, row.last_day),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        recipients=tuple(a for a in row.recipients.split(",") if a),
        last_error=row.last_error,
        last_attempt_at=row.last_attempt_at,
        sent_at=row.sent_at,
    )


def _insert_new(dialect: str, values: dict[str, Any]) -> Insert:
    """INSERT that does nothing when the customer's period already has a row."""
    key = ["customer_id", "first_day", "last_day"]
    table = models.ReportDelivery
    if dialect == "postgresql":
        return postgresql.insert(table).values(values).on_conflict_do_nothing(index_elements=key)
    if dialect == "sqlite":
        return sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=key)
    raise NotImplementedError(f"no INSERT .. ON CONFLICT for {dialect}")


class DeliveryRepository(Repository):
    """The ``report_deliveries`` table, as ``domain.delivery.Delivery`` records."""

    async def deliveries(self, customer_id: int | None = None) -> list[Delivery]:
        """Every record (of one customer), by customer, then period."""
        table = models.ReportDelivery
        query = select(table).order_by(table.customer_id, table.first_day, table.last_day)
        if customer_id is not None:
            query = query.where(table.customer_id == customer_id)
        async with self._unit() as s:
            return [_delivery(row) for row in await s.scalars(query)]

    async def claim(
        self,
        customer_id: int,
        interval: ReportInterval,
        period: ReportPeriod,
        recipients: Sequence[str],
        now: dt.datetime,
        *,
        resend: bool = False,
    ) -> Delivery | None:
        """Mark the period pending (one attempt more) for this run to send it; None: it
        was sent already (and ``resend`` is false) or another run is sending it."""
        require_aware("now", now)
        table = models.ReportDelivery
        values = {
            "interval": ReportInterval(interval).value,
            "status": DeliveryStatus.PENDING.value,
            "recipients": ",".join(recipients),
            "last_attempt_at": now,
        }
        key = (
            table.customer_id == customer_id,
            table.first_day == period.first_day,
            table.last_day == period.last_day,
        )
        async with self._unit() as s:
            columns = (table.id, table.status, table.attempts, table.last_attempt_at)
            row = (await s.execute(select(*columns).where(*key))).first()
            if row is None:
                new = {
                    "customer_id": customer_id,
                    "first_day": period.first_day,
                    "last_day": period.last_day,
                    "attempts": 1,
                    **values,
                }
                insert = _insert_new(s.get_bind().dialect.name, new).returning(table.id)
                claimed = await s.scalar(insert)
            else:
                status = DeliveryStatus(row.status)
                if status is DeliveryStatus.SENT and not resend:
                    return None
                if status is DeliveryStatus.PENDING and (
                    row.last_attempt_at is None or row.last_attempt_at > now - PENDING_STALE
                ):
                    return None
                # Unchanged since read: a concurrent run that took it changed both.
                same = (
                    table.id == row.id,
                    table.status == row.status,
                    table.attempts == row.attempts,
                )
                claimed = await s.scalar(
                    update(table)
                    .where(*same)
                    .values(attempts=table.attempts + 1, **values)
                    .returning(table.id)
                )
            if claimed is None:
                return None
            return _delivery(await s.get_one(table, claimed, populate_existing=True))

    async def mark_sent(
        self, delivery_id: int, now: dt.datetime, warning: str | None = None
    ) -> Delivery:
        """Sent at ``now``; ``warning``: what the server said of the recipients it
        refused (the others got it, so it is not sent again)."""
        require_aware("now", now)
        return await self._finish(
            delivery_id, status=DeliveryStatus.SENT, sent_at=now, last_error=_line(warning)
        )

    async def mark_failed(self, delivery_id: int, error: str) -> Delivery:
        """Not sent: the next run retries it (while it is in the catch-up window)."""
        return await self._finish(
            delivery_id, status=DeliveryStatus.FAILED, last_error=_line(error)
        )

    async def _finish(self, delivery_id: int, *, status: DeliveryStatus, **values: Any) -> Delivery:
        table = models.ReportDelivery
        async with self._unit() as s:
            done = await s.scalar(
                update(table)
                .where(table.id == delivery_id)
                .values(status=status.value, **values)
                .returning(table.id)
            )
            if done is None:
                raise NotFound(f"no report delivery with id {delivery_id}")
            return _delivery(await s.get_one(table, done, populate_existing=True))


def _line(text: str | None) -> str | None:
    if text is None:
        return None
    return " ".join(text.split())[:MAX_ERROR_CHARS]


def periods_by_status(
    deliveries: Iterable[Delivery],
) -> tuple[list[ReportPeriod], list[ReportPeriod]]:
    """The periods sent, and those tried but not sent (``periods_due``'s inputs)."""
    sent: list[ReportPeriod] = []
    unsent: list[ReportPeriod] = []
    for d in deliveries:
        (sent if d.status is DeliveryStatus.SENT else unsent).append(d.period)
    return sent, unsent

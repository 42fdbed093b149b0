"""The audit log (``domain.audit``): written by the desk, read by ``audit list``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from televikar_pbx.db import models
from televikar_pbx.db.repo_base import Repository, flush, require_aware
from televikar_pbx.domain.audit import AuditAction, AuditRecord

DEFAULT_LIMIT = 1000


class AuditRepository(Repository):
    async def record(self, entry: AuditRecord) -> AuditRecord:
        require_aware("at", entry.at)
        async with self._unit() as s:
            row = models.AuditEntry(
                at=entry.at,
                action=AuditAction(entry.action).value,
                user_id=entry.user_id,
                username=entry.username,
                customer_id=entry.customer_id,
                object_id=entry.object_id,
                address=entry.address,
                detail=entry.detail,
            )
            s.add(row)
            await flush(s, f"audit entry {entry.action}")
            return _record(row)

    async def list_entries(
        self,
        *,
        user_id: int | None = None,
        username: str | None = None,
        customer_id: int | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> tuple[AuditRecord, ...]:
        """Entries in [since, until), oldest first; the newest ``limit`` of them.
        ``username`` matches the name as recorded (any case), for failed log-ins of
        names that are no user."""
        a = models.AuditEntry
        query = select(a)
        if user_id is not None:
            query = query.where(a.user_id == user_id)
        if username is not None:
            query = query.where(func.lower(a.username) == username.strip().lower())
        if customer_id is not None:
            query = query.where(a.customer_id == customer_id)
        if since is not None:
            require_aware("since", since)
            query = query.where(a.at >= since)
        if until is not None:
            require_aware("until", until)
            query = query.where(a.at < until)
        async with self._unit() as s:
            rows = list(await s.scalars(query.order_by(a.at.desc(), a.id.desc()).limit(limit)))
        return tuple(_record(r) for r in reversed(rows))


def _record(row: models.AuditEntry) -> AuditRecord:
    return AuditRecord(
        at=row.at,
        action=AuditAction(row.action),
        user_id=row.user_id,
        username=row.username,
        customer_id=row.customer_id,
        object_id=row.object_id,
        address=row.address,
        detail=row.detail,
        id=row.id,
    )

"""Messages callers left when nobody could answer: one per call at most."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from televikar_pbx.db import models
from televikar_pbx.db.records import MessageRecord
from televikar_pbx.db.repo_base import Conflict, MessageNotFound, Repository


class MessageRepository(Repository):
    async def add_message(
        self,
        call_id: int,
        customer_id: int,
        caller_number: str | None,
        file: str,
        duration_s: float,
    ) -> int:
        """Record the message of call ``call_id``; returns its id. A second message for
        the same call, or a call or customer that does not exist, is a ``Conflict``."""
        if not math.isfinite(duration_s) or duration_s < 0:
            raise ValueError(f"duration_s must be a finite number >= 0, got {duration_s!r}")
        if not file:
            raise ValueError("file must name the recording")
        stmt = (
            insert(models.Message)
            .values(
                call_id=call_id,
                customer_id=customer_id,
                caller_number=caller_number,
                file=file,
                duration_s=duration_s,
            )
            .returning(models.Message.id)
        )
        async with self._unit() as s:
            try:
                return (await s.execute(stmt)).scalar_one()
            except IntegrityError as exc:
                raise Conflict(f"message of call {call_id}: {exc.orig}") from exc

    async def get_message(self, message_id: int) -> MessageRecord:
        record = await self._find_message(models.Message.id == message_id)
        if record is None:
            raise MessageNotFound(f"no message with id {message_id}")
        return record

    async def message_for_call(self, call_id: int) -> MessageRecord | None:
        return await self._find_message(models.Message.call_id == call_id)

    async def _find_message(self, where: Any) -> MessageRecord | None:
        async with self._unit() as s:
            row = await s.scalar(select(models.Message).where(where))
            return None if row is None else message_record(row)


def message_record(row: models.Message) -> MessageRecord:
    return MessageRecord(
        id=row.id,
        call_id=row.call_id,
        customer_id=row.customer_id,
        caller_number=row.caller_number,
        file=row.file,
        duration_s=row.duration_s,
        created_at=row.created_at,
    )

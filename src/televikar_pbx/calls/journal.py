"""The one writer (and reader) of the call journal and the calls row's summary.

Every state change of a call is a typed entry (:class:`JournalEntry`); each has one
method here with the data it carries, so the call service, the fallback import and
recovery write the same shapes (``docs/desk.md`` lists them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from televikar_pbx.calls.ports import CallStore
from televikar_pbx.domain.journal import JournalEntry
from televikar_pbx.domain.outcomes import Outcome


class CallJournal:
    def __init__(self, store: CallStore) -> None:
        self._store = store

    async def _append(
        self,
        record_id: int,
        entry: JournalEntry,
        at: datetime,
        agent_id: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        await self._store.append_event(record_id, entry.value, at, agent_id=agent_id, data=data)

    async def entries(self, record_id: int) -> frozenset[JournalEntry]:
        """The entry types a call has (unknown types from elsewhere are left out)."""
        known = {e.value for e in JournalEntry}
        events = await self._store.events(record_id)
        return frozenset(JournalEntry(e.type) for e in events if e.type in known)

    @staticmethod
    def arrival(
        *, dialled: str, caller: str | None, forwarded_from: str | None
    ) -> tuple[str, dict[str, Any]]:
        """The ``arrived`` entry, written with the call's row (``create_call``'s
        ``first_event``): one transaction while the caller waits for an agent."""
        data = {"dialled": dialled, "caller": caller, "forwarded_from": forwarded_from}
        return JournalEntry.ARRIVED.value, data

    async def offered(self, record_id: int, at: datetime, agent_id: int) -> None:
        await self._append(record_id, JournalEntry.OFFERED, at, agent_id)

    async def offer_missed(
        self, record_id: int, at: datetime, agent_id: int, cause: int | None, cause_txt: str | None
    ) -> None:
        data: dict[str, Any] = {"cause_txt": cause_txt}
        if cause is not None:  # none when the offer could not even be placed
            data = {"cause": cause, **data}
        await self._append(record_id, JournalEntry.OFFER_MISSED, at, agent_id, data)

    async def agent_answered(self, record_id: int, at: datetime, agent_id: int) -> None:
        await self._append(record_id, JournalEntry.AGENT_ANSWERED, at, agent_id)

    async def answered(self, record_id: int, at: datetime, agent_id: int) -> None:
        """Caller and agent are bridged: the row's answer, and its entry."""
        await self._store.mark_answered(record_id, agent_id, at)
        await self._append(record_id, JournalEntry.ANSWERED, at, agent_id)

    async def message_capture(self, record_id: int, at: datetime, reason: str) -> None:
        await self._append(record_id, JournalEntry.MESSAGE_CAPTURE, at, data={"reason": reason})

    async def announcement(self, record_id: int, at: datetime, announcement: str) -> None:
        data = {"announcement": announcement}
        await self._append(record_id, JournalEntry.ANNOUNCEMENT, at, data=data)

    async def adopted(
        self, record_id: int, at: datetime, agent_id: int | None, state: str, capture: str | None
    ) -> None:
        data = {"state": state, "capture": capture}
        await self._append(record_id, JournalEntry.ADOPTED, at, agent_id, data)

    async def ended(
        self,
        record_id: int,
        at: datetime,
        outcome: Outcome,
        *,
        cause: int | None = None,
        cause_txt: str | None = None,
        recovered_from: str | None = None,
    ) -> None:
        """The call is over: the row's end and outcome, and its entry (``recovered_from``:
        closed by recovery, the end from ``cdr`` or ``recovery``)."""
        await self.close_row(record_id, at, outcome, cause=cause, cause_txt=cause_txt)
        data: dict[str, Any] = {"outcome": outcome.value}
        if recovered_from is not None:
            data["recovered_from"] = recovered_from
        await self._append(record_id, JournalEntry.ENDED, at, data=data)

    async def close_row(
        self,
        record_id: int,
        at: datetime,
        outcome: Outcome,
        *,
        cause: int | None = None,
        cause_txt: str | None = None,
    ) -> None:
        """The row's end and outcome only (the fallback import writes no ``ended``)."""
        await self._store.mark_ended(
            record_id,
            ended_at=at,
            outcome=outcome.value,
            hangup_cause=cause,
            hangup_cause_text=cause_txt,
        )

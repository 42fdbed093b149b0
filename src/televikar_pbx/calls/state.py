"""What the shell remembers about a call in progress (the desk keeps the decisions)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from televikar_pbx.domain.directory import Customer, HoldStyle


@dataclass(slots=True)
class ActiveCall:
    key: str
    # The call's row id: written at once on arrival, but the routing does not wait for
    # it (a database write never stands between the caller and the agent's phone);
    # what needs the id awaits :meth:`record`.
    row: asyncio.Future[int]
    caller_channel: str
    customer: Customer | None
    log: Any
    caller_number: str | None = None
    agent_id: int | None = None
    agent_channel: str | None = None
    bridge_id: str | None = None
    offers: int = 0
    answered: bool = False  # by us (hold music, prompt, announcement) or by bridging
    hold: HoldStyle | None = None
    recording_name: str | None = None  # set once the recording runs
    caller_gone: bool = False
    ringing: bool = False  # 180 sent, not answered: sent again (calls/commands.py)
    cause: Any = None
    cause_txt: Any = None

    @property
    def record_id(self) -> int | None:
        """The row's id if it is written (the web desk's cards), else None."""
        if self.row.done() and not self.row.cancelled() and self.row.exception() is None:
            return self.row.result()
        return None

    async def record(self) -> int:
        """The row's id, once written (raises what writing it raised)."""
        return await asyncio.shield(self.row)


def written(record_id: int) -> asyncio.Future[int]:
    """The ``row`` of a call whose row exists (adopted from the database)."""
    row: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    row.set_result(record_id)
    return row


def caller_id(display_name: str, number: str | None) -> str:
    """The caller-ID the agent's phone shows: the customer's name, the caller's number."""
    name = display_name.replace('"', "'").replace("\\", "")
    return f'"{name}" <{number or ""}>'

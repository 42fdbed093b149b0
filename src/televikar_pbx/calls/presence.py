"""What the desk looks like from outside: device states for the Asterisk CLI and phones'
busy-lamp fields, queue counts as global variables, and the status snapshot.

* Each agent's state is published as the device state ``Stasis:agent-<endpoint>``
  (``asterisk -rx "devicestate list"``): idle NOT_INUSE, offered RINGING, on call INUSE,
  wrap-up BUSY, paused ONHOLD, logged out UNAVAILABLE.
* Each customer queue is published as ``Stasis:queue-<customer id>`` (NOT_INUSE when
  nobody waits, RINGING when callers wait) and its waiting count as the global variable
  ``TELEVIKAR_WAITING_<customer id>`` (``asterisk -rx "dialplan show globals"``).

Publishing runs in its own task and sends only the latest value of what changed, so a
burst of calls never delays call handling. The desk is compared with what was published
at most every :data:`COALESCE_S` (a call changes the desk about six times in a few
milliseconds; each comparison copies the whole desk's view): lamps follow within that.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from typing import Any, Protocol

import structlog

from televikar_pbx.domain import acd
from televikar_pbx.domain.desk_view import DeskView, DeskViewer
from televikar_pbx.domain.directory import Directory
from televikar_pbx.errors import AriError

log = structlog.get_logger("televikar_pbx.presence")

COALESCE_S = 0.05

DEVICE_STATES = {
    acd.AgentState.IDLE: "NOT_INUSE",
    acd.AgentState.OFFERED: "RINGING",
    acd.AgentState.ON_CALL: "INUSE",
    acd.AgentState.WRAP_UP: "BUSY",
    acd.AgentState.PAUSED: "ONHOLD",
    acd.AgentState.LOGGED_OUT: "UNAVAILABLE",
}


class Publisher(Protocol):
    async def set_device_state(self, device: str, state: str) -> None: ...

    async def set_global(self, name: str, value: str) -> None: ...


def waiting_counts(view: DeskView) -> Counter[int]:
    return Counter(c.customer_id for c in view.calls if c.customer_id is not None and c.waiting)


class Presence:
    def __init__(self, ari: Publisher, directory: Directory, desk: DeskViewer) -> None:
        self._ari = ari
        self._endpoints = {a.id: a.endpoint for a in directory.agents}
        self._customers = [c.id for c in directory.customers]
        self._desk = desk
        self._published: dict[str, str] = {}
        self._pending: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._due: asyncio.TimerHandle | None = None

    def reload(self, directory: Directory) -> None:
        self._endpoints = {a.id: a.endpoint for a in directory.agents}
        self._customers = [c.id for c in directory.customers]
        self.changed()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="presence")

    async def close(self) -> None:
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def resync(self) -> None:
        """Publish everything again (after a reconnect or an Asterisk restart)."""
        self._published.clear()
        self.changed()

    def changed(self) -> None:
        """The desk changed: compare it with what was published within COALESCE_S."""
        if self._due is None:
            self._due = asyncio.get_running_loop().call_later(COALESCE_S, self._compare)

    def _compare(self) -> None:
        """Compare the desk with what was published; queue the differences."""
        self._due = None
        wanted: dict[str, str] = {}
        view = self._desk.view()
        for agent in view.agents:
            endpoint = self._endpoints.get(agent.agent_id)
            if endpoint:
                wanted[f"device:agent-{endpoint}"] = DEVICE_STATES[agent.state]
        counts = waiting_counts(view)
        for customer_id in self._customers:
            waiting = counts.get(customer_id, 0)
            wanted[f"device:queue-{customer_id}"] = "RINGING" if waiting else "NOT_INUSE"
            wanted[f"global:TELEVIKAR_WAITING_{customer_id}"] = str(waiting)
        for key, value in wanted.items():
            if self._published.get(key) != value:
                self._pending[key] = value
        if self._pending:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, {}
            for key, value in pending.items():
                kind, _, name = key.partition(":")
                try:
                    if kind == "device":
                        await self._ari.set_device_state(name, value)
                    else:
                        await self._ari.set_global(name, value)
                    self._published[key] = value
                except AriError as exc:
                    log.warning("presence.publish_failed", name=name, error=str(exc))


def snapshot(
    view: DeskView, directory: Directory, calls: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The live view ``televikar-pbx status`` shows (stable keys: scripts read it)."""
    agents = {a.id: a for a in directory.agents}
    customers = []
    for customer in directory.customers:
        waiting = [
            {
                "call_id": c.call_id,
                "caller": getattr(calls.get(c.call_id), "caller_number", None),
                "wait_s": round((now - c.arrived_at).total_seconds(), 1),
                "state": c.state.value,
            }
            for c in view.calls  # in order of arrival
            if c.customer_id == customer.id and c.waiting
        ]
        customers.append({"id": customer.id, "name": customer.name, "waiting": waiting})
    agent_rows = []
    for slot in view.agents:
        agent = agents.get(slot.agent_id)
        agent_rows.append(
            {
                "id": slot.agent_id,
                "name": agent.name if agent else None,
                "endpoint": agent.endpoint if agent else None,
                "state": slot.state.value,
                "call_id": slot.call_id,
                "missed_in_a_row": slot.misses,
            }
        )
    return {"at": now.isoformat(), "customers": customers, "agents": agent_rows}

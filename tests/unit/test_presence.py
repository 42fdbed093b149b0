"""Presence (calls/presence.py): device states and waiting counts follow the desk, a
burst of desk changes compared and published once, only what changed."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from televikar_pbx.calls.presence import COALESCE_S, Presence
from televikar_pbx.domain.calendar import Agreement, Calendar
from televikar_pbx.domain.desk_messages import AgentState, CallState
from televikar_pbx.domain.desk_view import AgentView, CallView, DeskView
from televikar_pbx.domain.directory import Agent, Customer, Directory

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ACME = Customer(
    1, "Acme AS", "Acme", numbers=("4721000001",),
    calendar=Calendar(agreement=Agreement(date(2026, 1, 1))),
)  # fmt: skip
KARI = Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True)


class Lamps:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def set_device_state(self, device: str, state: str) -> None:
        self.sent.append((device, state))

    async def set_global(self, name: str, value: str) -> None:
        self.sent.append((name, value))


class Desk:
    def __init__(self) -> None:
        self.state, self.waiting, self.views = AgentState.IDLE, 0, 0

    def view(self) -> DeskView:
        self.views += 1
        calls = tuple(CallView(f"c{n}", 1, T0, CallState.QUEUED, None) for n in range(self.waiting))
        return DeskView((AgentView(7, self.state, None, 0, True),), calls)


async def test_a_burst_of_changes_is_compared_once_and_publishes_the_last_state() -> None:
    lamps, desk = Lamps(), Desk()
    presence = Presence(lamps, Directory((ACME,), (KARI,)), desk)
    presence.start()
    try:
        presence.changed()
        await asyncio.sleep(COALESCE_S * 3)
        assert sorted(lamps.sent) == [
            ("TELEVIKAR_WAITING_1", "0"), ("agent-agent1", "NOT_INUSE"),
            ("queue-1", "NOT_INUSE"),
        ]  # fmt: skip
        lamps.sent.clear()
        views = desk.views
        for n in range(1, 20):  # a caller arrives, rings Kari, talks: one change each
            desk.waiting = n % 3
            desk.state = (AgentState.OFFERED, AgentState.ON_CALL)[n % 2]
            presence.changed()
        assert desk.views == views  # nothing compared yet
        await asyncio.sleep(COALESCE_S * 3)
        assert desk.views == views + 1
        assert sorted(lamps.sent) == [
            ("TELEVIKAR_WAITING_1", "1"), ("agent-agent1", "INUSE"),
            ("queue-1", "RINGING"),
        ]  # fmt: skip
    finally:
        await presence.close()

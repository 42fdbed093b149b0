"""The desk's live feed for the web pages: one hub in the service, one queue per page.

``CallService`` calls :meth:`LiveDesk.changed` after every change of the desk (the same
moment presence learns of it, before the agent's phone is even dialled). The hub only
marks itself dirty there; the cards are built and compared on the next turn of the event
loop, once for any number of changes in that turn, and only while a page listens. So
routing pays one ``call_soon`` per change, whatever the number of pages.

* An agent's page gets its card (``domain.desk_live.AgentCard``) as ``agent`` events:
  the current one when it connects (a page that reconnects catches up) and then each
  change.
* A wallboard gets ``board`` events (waiting callers per customer, agents' states) at
  most every ``board_interval_s``, and ``sla`` events (today's figures) from
  :class:`web.desk.SlaFeed`.

A page that does not keep up (its queue full) is dropped and reconnects (EventSource
does it by itself) to the current state: a slow page never holds memory or the desk.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Protocol

import structlog

from televikar_pbx.clock import Clock
from televikar_pbx.domain.desk_live import AgentCard, CallerInfo, agent_cards, wallboard
from televikar_pbx.domain.desk_view import DeskView
from televikar_pbx.domain.directory import Directory

log = structlog.get_logger("televikar_pbx.web")

QUEUE_SIZE = 64


class CallFacts(Protocol):
    record_id: int
    caller_number: str | None


class LiveSource(Protocol):
    """What the hub reads: ``CallService`` is one."""

    @property
    def clock(self) -> Clock: ...

    @property
    def directory(self) -> Directory: ...

    @property
    def calls(self) -> Mapping[str, CallFacts]: ...

    def view(self) -> DeskView: ...


class Subscription:
    """One page's feed: (event, JSON) pairs; ``None`` means "dropped, reconnect"."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue(QUEUE_SIZE + 1)
        self.dropped = False

    def put(self, event: str, data: dict[str, Any]) -> None:
        if self.dropped:
            return
        if self.queue.qsize() >= QUEUE_SIZE:
            self.dropped = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait((event, json.dumps(data, ensure_ascii=False)))

    def close(self) -> None:
        if not self.dropped:
            self.dropped = True
            self.queue.put_nowait(None)


class LiveDesk:
    def __init__(self, source: LiveSource, *, board_interval_s: float = 0.5) -> None:
        self._source = source
        self._board_interval_s = board_interval_s
        self._agents: dict[int, set[Subscription]] = {}
        self._boards: set[Subscription] = set()
        self._sent: dict[int, AgentCard] = {}
        self._scheduled = False
        self._board_due: asyncio.TimerHandle | None = None
        self._board_at = float("-inf")  # the first push goes at once
        self._sla: dict[str, Any] | None = None

    # --- the desk's side ------------------------------------------------------------

    def changed(self) -> None:
        """The desk changed: publish on the next turn of the loop (cheap, coalesced)."""
        if self._scheduled or not (self._agents or self._boards):
            return
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._publish)

    def _publish(self) -> None:
        self._scheduled = False
        if self._agents:
            cards = self._cards()
            for agent_id, subscribers in self._agents.items():
                card = cards.get(agent_id)
                if card is None or card == self._sent.get(agent_id):
                    continue
                self._sent[agent_id] = card
                data = self._stamped(card)
                for subscription in subscribers:
                    subscription.put("agent", data)
        if self._boards:
            self._schedule_board()

    def _cards(self) -> dict[int, AgentCard]:
        source = self._source
        directory = source.directory
        callers = {
            key: CallerInfo(call.record_id, call.caller_number)
            for key, call in source.calls.items()
        }
        return agent_cards(
            source.view(),
            {c.id: c for c in directory.customers},
            {a.id: a.name for a in directory.agents},
            callers,
            source.clock.now(),
        )

    def _stamped(self, card: AgentCard) -> dict[str, Any]:
        """The card with the server's time: the page counts waits and wrap-up from it,
        whatever its own clock says."""
        return card.to_json() | {"now": self._source.clock.now().isoformat()}

    def card(self, agent_id: int) -> AgentCard | None:
        return self._cards().get(agent_id)

    def board(self) -> dict[str, Any]:
        source = self._source
        directory = source.directory
        return wallboard(
            source.view(),
            {c.id: c for c in directory.customers},
            {a.id: a.name for a in directory.agents},
            source.clock.now(),
        )

    def _schedule_board(self) -> None:
        if self._board_due is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._board_at + self._board_interval_s - loop.time())
        self._board_due = loop.call_later(delay, self._send_board)

    def _send_board(self) -> None:
        self._board_due = None
        self._board_at = asyncio.get_running_loop().time()
        data = self.board()
        for subscription in self._boards:
            subscription.put("board", data)

    def set_sla(self, data: dict[str, Any]) -> None:
        """Today's figures per customer (from the call log): to every wallboard."""
        self._sla = data
        for subscription in self._boards:
            subscription.put("sla", data)

    # --- the pages' side ------------------------------------------------------------

    def subscribe_agent(self, agent_id: int) -> Subscription:
        subscription = Subscription()
        card = self.card(agent_id)
        if card is not None:
            subscription.put("agent", self._stamped(card))
            if agent_id not in self._agents:  # else the others may still wait for it
                self._sent[agent_id] = card
        self._agents.setdefault(agent_id, set()).add(subscription)
        return subscription

    def subscribe_board(self) -> Subscription:
        subscription = Subscription()
        subscription.put("board", self.board())
        if self._sla is not None:
            subscription.put("sla", self._sla)
        self._boards.add(subscription)
        return subscription

    @property
    def has_sla(self) -> bool:
        return self._sla is not None

    def close_all(self) -> None:
        """End every feed (the service stops): each page's stream returns."""
        for subscription in {*self._boards, *(s for v in self._agents.values() for s in v)}:
            subscription.close()
        self._boards.clear()
        self._agents.clear()
        self._sent.clear()

    @property
    def watching_boards(self) -> bool:
        return bool(self._boards)

    def unsubscribe(self, subscription: Subscription) -> None:
        self._boards.discard(subscription)
        for agent_id, subscribers in list(self._agents.items()):
            subscribers.discard(subscription)
            if not subscribers:
                del self._agents[agent_id]
                self._sent.pop(agent_id, None)

    @property
    def pages(self) -> int:
        return len(self._boards) + sum(len(s) for s in self._agents.values())

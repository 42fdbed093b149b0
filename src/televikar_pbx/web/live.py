"""The desk's live feed for the web pages: one hub in the service, one queue per page.

``CallService`` calls :meth:`LiveDesk.changed` after every change of the desk (the same
moment presence learns of it, before the agent's phone is even dialled). The hub only
marks itself dirty there; the cards are built and compared ``PUBLISH_DELAY_S`` later,
once for any number of changes meanwhile, and only while a page listens. So routing
pays one timer per change, whatever the number of pages, and the publish runs after the
change's own commands (the originate that rings the phone) have gone out, not before
them: run at once, it stood between a caller and the agent's INVITE, and the next
caller's (docs/performance.md, "Screen pop and the desk's pages").

On that turn only the cards whose inputs changed are built: an agent's card is a
function of its slot in the desk's view, its call's slot, the call's record and caller,
and the directory, so an agent whose inputs are what they were at its last card keeps
that card (building every card on every change cost a loaded service ~2 ms of CPU a
call: docs/performance.md, "Screen pop and the desk's pages"). A card is built at the
change that makes it (its greeting's time of day is the one of the pop), and each card
is serialised once for all the pages of its agent.

* An agent's page gets its card (``domain.desk_live.AgentCard``) as ``agent`` events:
  the current one when it connects (a page that reconnects catches up) and then each
  change.
* A wallboard gets ``board`` events (waiting callers per customer, agents' states) at
  most every ``board_interval_s``, ``sla`` events (today's figures) from
  :class:`web.desk.SlaFeed`, and ``forwarding`` events (the customers whose calls
  stopped arriving) after each of the forwarding watch's checks (calls/forwarding.py).

A page that does not keep up (its queue full) is dropped and reconnects (EventSource
does it by itself) to the current state: a slow page never holds memory or the desk.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Protocol

import structlog

from televikar_pbx.clock import Clock
from televikar_pbx.domain.desk_live import AgentCard, CallerInfo, agent_cards, wallboard
from televikar_pbx.domain.desk_view import AgentView, CallView, DeskView
from televikar_pbx.domain.directory import Customer, Directory

log = structlog.get_logger("televikar_pbx.web")

QUEUE_SIZE = 64
# How long after a change its cards go out: longer than an originate takes to leave
# (~1 ms), far shorter than a phone takes to be picked up (the pop's goal: 300 ms).
PUBLISH_DELAY_S = 0.005


class CallFacts(Protocol):
    @property
    def record_id(self) -> int | None: ...  # None until the call's row is written

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


class _CardInputs(NamedTuple):
    """Everything an agent's card is built from, but the clock (a tuple: made for every
    followed agent on every change, and compared)."""

    agent: AgentView
    call: CallView | None
    record_id: int | None
    caller_number: str | None
    directory: Directory  # a snapshot, replaced on reload: compared by identity first


class Subscription:
    """One page's feed: (event, JSON) pairs; ``None`` means "dropped, reconnect"."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue(QUEUE_SIZE + 1)
        self.dropped = False

    def put(self, event: str, data: dict[str, Any]) -> None:
        self.put_text(event, json.dumps(data, ensure_ascii=False))

    def put_text(self, event: str, text: str) -> None:
        """``put`` for data already serialised (one card, many pages)."""
        if self.dropped:
            return
        if self.queue.qsize() >= QUEUE_SIZE:
            self.dropped = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait((event, text))

    def close(self) -> None:
        if not self.dropped:
            self.dropped = True
            self.queue.put_nowait(None)


class LiveDesk:
    def __init__(
        self,
        source: LiveSource,
        *,
        board_interval_s: float = 0.5,
        publish_delay_s: float = PUBLISH_DELAY_S,
    ) -> None:
        self._source = source
        self._board_interval_s = board_interval_s
        self._publish_delay_s = publish_delay_s
        self._agents: dict[int, set[Subscription]] = {}
        self._boards: set[Subscription] = set()
        self._sent: dict[int, AgentCard] = {}
        # What each followed agent's last card was built from (see the module's doc).
        self._inputs: dict[int, _CardInputs] = {}
        self._directory: Directory | None = None
        self._customers: dict[int, Customer] = {}
        self._agent_names: dict[int, str] = {}
        self._scheduled = False
        self._board_due: asyncio.TimerHandle | None = None
        self._board_at = float("-inf")  # the first push goes at once
        self._sla: dict[str, Any] | None = None
        self._forwarding: dict[str, Any] | None = None

    # --- the desk's side ------------------------------------------------------------

    def changed(self) -> None:
        """The desk changed: publish ``publish_delay_s`` later (cheap, coalesced)."""
        if self._scheduled or not (self._agents or self._boards):
            return
        self._scheduled = True
        asyncio.get_running_loop().call_later(self._publish_delay_s, self._publish)

    def _publish(self) -> None:
        self._scheduled = False
        if self._agents:
            view = self._source.view()
            inputs = self._inputs_of(view, self._agents.keys())
            due = [i for agent_id, i in inputs.items() if i != self._inputs.get(agent_id)]
            cards = self._cards(due)
            for agent_id, card in cards.items():
                self._inputs[agent_id] = inputs[agent_id]
                if card == self._sent.get(agent_id):
                    continue
                self._sent[agent_id] = card
                text = json.dumps(self._stamped(card), ensure_ascii=False)
                for subscription in self._agents[agent_id]:
                    subscription.put_text("agent", text)
        if self._boards:
            self._schedule_board()

    def _inputs_of(self, view: DeskView, agent_ids: Iterable[int]) -> dict[int, _CardInputs]:
        """What the cards of ``agent_ids`` (those in the view) are built from."""
        wanted = set(agent_ids)
        calls = {c.call_id: c for c in view.calls}
        facts = self._source.calls
        directory = self._source.directory
        inputs = {}
        for agent in view.agents:
            if agent.agent_id not in wanted:
                continue
            if agent.call_id is None:
                inputs[agent.agent_id] = _CardInputs(agent, None, None, None, directory)
                continue
            call, fact = calls.get(agent.call_id), facts.get(agent.call_id)
            inputs[agent.agent_id] = (
                _CardInputs(agent, call, None, None, directory)
                if fact is None
                else _CardInputs(agent, call, fact.record_id, fact.caller_number, directory)
            )
        return inputs

    def _cards(self, inputs: Iterable[_CardInputs]) -> dict[int, AgentCard]:
        """The cards of these agents, from these inputs."""
        agents, calls, callers = [], {}, {}
        for i in inputs:
            agents.append(i.agent)
            if i.call is not None:
                calls[i.call.call_id] = i.call
                if i.record_id is not None:
                    callers[i.call.call_id] = CallerInfo(i.record_id, i.caller_number)
        if not agents:
            return {}
        directory = self._source.directory
        if directory is not self._directory:  # a snapshot: replaced on reload, never changed
            self._directory = directory
            self._customers = {c.id: c for c in directory.customers}
            self._agent_names = {a.id: a.name for a in directory.agents}
        return agent_cards(
            DeskView(tuple(agents), tuple(calls.values())),
            self._customers,
            self._agent_names,
            callers,
            self._source.clock.now(),
        )

    def _stamped(self, card: AgentCard) -> dict[str, Any]:
        """The card with the server's time: the page counts waits and wrap-up from it,
        whatever its own clock says."""
        return card.to_json() | {"now": self._source.clock.now().isoformat()}

    def card(self, agent_id: int) -> AgentCard | None:
        return self._cards(self._inputs_of(self._source.view(), (agent_id,)).values()).get(agent_id)

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
        inputs = self._inputs_of(self._source.view(), (agent_id,)).get(agent_id)
        card = None if inputs is None else self._cards((inputs,)).get(agent_id)
        if inputs is not None and card is not None:
            subscription.put("agent", self._stamped(card))
            if agent_id not in self._agents:  # else the others may still wait for it
                self._sent[agent_id] = card
                self._inputs[agent_id] = inputs
        self._agents.setdefault(agent_id, set()).add(subscription)
        return subscription

    def subscribe_board(self) -> Subscription:
        subscription = Subscription()
        subscription.put("board", self.board())
        if self._sla is not None:
            subscription.put("sla", self._sla)
        if self._forwarding is not None:
            subscription.put("forwarding", self._forwarding)
        self._boards.add(subscription)
        return subscription

    def set_forwarding(self, data: dict[str, Any]) -> None:
        """The forwarding watch's flagged customers, after each check: to every wallboard."""
        self._forwarding = data
        for subscription in self._boards:
            subscription.put("forwarding", data)

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
        self._inputs.clear()

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
                self._inputs.pop(agent_id, None)

    @property
    def pages(self) -> int:
        return len(self._boards) + sum(len(s) for s in self._agents.values())

"""The async shell around the desk: ARI events in, desk commands carried out, records kept.

Each caller leg is a *call key* (its Asterisk channel id). Agent legs we originate get
ids derived from it and are bound to the same key, so the dispatcher hands every event
of one call to one worker, in order; playback and recording events follow their target
channel. A desk command for another call is queued to that call's worker instead of
being run here, so each call's ARI requests and records stay in order too. The desk is
shared and synchronous: it is only touched between awaits, so no lock is needed.

By job: ``stasis.py`` turns ARI events into desk events, ``commands.py`` carries the
desk's commands out against Asterisk, ``journal.py`` writes the call journal; this
class wires them to the desk and is what the rest of the service talks to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog

from televikar_pbx.calls.agent_log import AgentLog
from televikar_pbx.calls.commands import RING_AGAIN_S, DeskCommands
from televikar_pbx.calls.events import GLOBAL_KEY, AriEvent
from televikar_pbx.calls.journal import CallJournal
from televikar_pbx.calls.media import MediaFlows
from televikar_pbx.calls.ports import CallStore, Telephony
from televikar_pbx.calls.presence import Presence
from televikar_pbx.calls.recovery import ADOPT, Adoption
from televikar_pbx.calls.shell import TICK, current_key, synthetic
from televikar_pbx.calls.stasis import StasisEvents
from televikar_pbx.calls.state import ActiveCall, written
from televikar_pbx.clock import Clock
from televikar_pbx.domain import acd
from televikar_pbx.domain.directory import Agent, Directory

log = structlog.get_logger("televikar_pbx.calls")


class CallService(StasisEvents, DeskCommands):
    """Turns ARI events into desk events and desk commands into ARI requests."""

    def __init__(
        self,
        *,
        ari: Telephony,
        store: CallStore,
        directory: Directory,
        desk: acd.Desk,
        bind: Callable[[str, str], None],
        unbind: Callable[[str], None],
        dispatch: Callable[[AriEvent], None],
        media: MediaFlows,
        clock: Clock,
        presence: Presence | None = None,
        agent_log: AgentLog | None = None,
        ring_again_s: float | None = RING_AGAIN_S,
    ) -> None:
        self.clock = clock
        self._ring_again_s = ring_again_s
        self._ari = ari
        self._store = store
        self._journal = CallJournal(store)
        self.directory = directory
        self.desk = desk
        self._bind = bind
        self._unbind = unbind
        self._dispatch = dispatch
        self._media = media
        self._presence = presence
        self._agent_log = agent_log
        self.calls: dict[str, ActiveCall] = {}
        self._channel_call: dict[str, str] = {}
        self._agents: dict[int, Agent] = {a.id: a for a in directory.agents}
        # Channels whose ChannelDestroyed we will get (see the handler table).
        self._subscribed: set[str] = set()
        self._tick_at: datetime | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        self._watchers: list[Callable[[], None]] = []
        self._rows: set[asyncio.Future[int]] = set()  # calls' rows being written
        self._handlers = self.stasis_handlers()

    async def handle(self, event: AriEvent) -> None:
        handler = self._handlers.get(event.type)
        if handler is None:
            log.debug("ari.event_ignored", ari_event=event.type, channel=event.channel_id)
            return
        cid = event.channel_id or event.target_channel_id
        token = current_key.set(self._channel_call.get(cid, cid) if cid else GLOBAL_KEY)
        try:
            await handler(event)
        finally:
            current_key.reset(token)

    def ari_event_types(self) -> frozenset[str]:
        """The ARI event types the service handles (``AriClient.filter_events``); the
        synthetic ones it queues itself are named ``Televikar…``."""
        return frozenset(t for t in self._handlers if not t.startswith("Televikar"))

    async def adopt(self, adoptions: list[Adoption]) -> None:
        """Take back calls found in Asterisk (calls/recovery.py), in the given order.

        The desk learns of all of them at once (so an agent on an adopted call is busy
        before any adopted caller is routed); the rest (subscriptions, journal, a capture
        to resume) runs in each call's own worker, before the desk's commands for it.
        """
        now = self.clock.now()
        commands: list[acd.Command] = []
        for adoption in adoptions:
            record = adoption.record
            key = str(record.channel_id)
            customer = next(
                (c for c in self.directory.customers if c.id == record.customer_id), None
            )
            if key in self.calls or customer is None:
                continue
            agent_id = record.agent_id if adoption.state is acd.CallState.CONNECTED else None
            state = adoption.state
            if state is acd.CallState.CAPTURING and adoption.capture_phase == "recording":
                state = acd.CallState.RECORDING
            event = acd.CallAdopted(key, customer.id, record.arrived_at, state, agent_id)
            try:
                commands += self.desk.handle(event, now)
            except acd.IllegalEvent as exc:
                log.error("recovery.adopt_refused", call_id=key, error=str(exc))
                continue
            bound = log.bind(call_id=key, customer=customer.name)
            call = ActiveCall(key, written(record.id), key, customer, bound, record.caller_number)
            call.offers, call.answered = adoption.offers, adoption.caller_up
            call.hold = customer.rules.hold_style
            if adoption.state is acd.CallState.CONNECTED:
                call.agent_id, call.agent_channel = agent_id, adoption.agent_channel
                call.bridge_id, call.answered = adoption.bridge_id, True
                agent = self._agents.get(agent_id) if agent_id is not None else None
                if agent is not None:
                    call.log = call.log.bind(agent=agent.name)
                if call.agent_channel:
                    self._channel_call[call.agent_channel] = key
                    self._subscribed.add(call.agent_channel)
                    self._bind(call.agent_channel, key)
            self.calls[key] = call
            self._channel_call[key] = key
            self._subscribed.add(key)
            self._dispatch(synthetic(ADOPT, now, key, adopt=adoption))
        self._after_change()
        await self.execute(commands, now)

    def _schedule_tick(self) -> None:
        deadline = self.desk.next_deadline()
        if deadline == self._tick_at:
            return
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        self._tick_at = deadline
        if deadline is None:
            return
        delay = max(0.0, (deadline - self.clock.now()).total_seconds())
        self._tick_handle = asyncio.get_running_loop().call_later(
            delay, lambda: self._dispatch(synthetic(TICK, self.clock.now(), GLOBAL_KEY))
        )

    # --- the desk and its commands -------------------------------------------------------

    def view(self) -> acd.DeskView:
        """The desk as presence, control and status may see it (a frozen copy)."""
        return self.desk.view()

    async def agent_event(self, event: acd.AgentEvent, at: datetime) -> list[acd.Command]:
        """An agent logged in or out, paused or resumed (feature code, command line);
        the desk's answer. Raises :class:`acd.IllegalEvent` when the desk refuses it."""
        commands = self.desk.handle(event, at)
        self._after_change()
        if self._agent_log is not None:  # a request during a call counts from now
            availability = self.desk.availability(event.agent_id)
            await self._agent_log.changed(event.agent_id, availability, at)
        await self.execute(commands, at)
        return commands

    async def reload(self, directory: Directory) -> None:
        """The operator changed customers or agents: route with the new directory."""
        now = self.clock.now()
        self.directory = directory
        self._agents = {a.id: a for a in directory.agents}
        commands = self.desk.reload(directory, now)
        if self._presence is not None:
            self._presence.reload(directory)
        if self._agent_log is not None:  # agents added or retired: no command says so
            await self._agent_log.sync(self.desk.availabilities(), now)
        self._after_change()
        log.info(
            "service.reloaded", customers=len(directory.customers), agents=len(directory.agents)
        )
        await self.execute(commands, now)

    async def phone_reachability(self, endpoint: str, reachable: bool) -> None:
        """AMI presence: an agent's phone became reachable or unreachable."""
        agent_id = next((a.id for a in self.directory.agents if a.endpoint == endpoint), None)
        if agent_id is None:
            return  # not an agent (the carrier trunk, another phone)
        log.info("agent.phone", agent=self._agents[agent_id].name, reachable=reachable)
        event = acd.PhoneReachable(agent_id) if reachable else acd.PhoneUnreachable(agent_id)
        await self._feed(event, self.clock.now())

    def watch(self, changed: Callable[[], None]) -> None:
        """Call ``changed()`` after every change of the desk (the web desk's live feed).
        It runs in the routing path: it must only take note and return."""
        self._watchers.append(changed)

    def _row_written(self, key: str, row: asyncio.Future[int]) -> None:
        """A call's row is written (or refused): the web desk's cards may show its id."""
        self._rows.discard(row)
        if row.cancelled():
            return
        error = row.exception()
        if error is not None:
            # Not an outage (that is spooled): a bug or data the database refuses. The
            # call is routed all the same; its journal writes fail, each logged.
            log.error("call.row_refused", call_id=key, error=str(error).splitlines()[0])
            return
        for changed in self._watchers:
            changed()

    async def rows_written(self) -> None:
        """Wait for the calls' rows still being written (before the store closes)."""
        if self._rows:
            await asyncio.gather(*list(self._rows), return_exceptions=True)

    def _after_change(self) -> None:
        self._schedule_tick()
        if self._presence is not None:
            self._presence.changed()
        for changed in self._watchers:
            changed()

    async def _feed(self, event: acd.Event, at: datetime) -> None:
        try:
            commands = self.desk.handle(event, at)
        except acd.IllegalEvent as exc:
            log.error("desk.illegal_event", error=str(exc))
            return
        self._after_change()
        await self.execute(commands, at)

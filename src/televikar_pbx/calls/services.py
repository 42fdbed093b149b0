"""The async shell around the desk: ARI events in, desk commands carried out, records kept.

Each caller leg is a *call key* (its Asterisk channel id). Agent legs we originate get
ids derived from it and are bound to the same key, so the dispatcher hands every event
of one call to one worker, in order; playback and recording events follow their target
channel. A desk command for another call is queued to that call's worker instead of
being run here, so each call's ARI requests and records stay in order too. The desk is
shared and synchronous: it is only touched between awaits, so no lock is needed.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from televikar_pbx.ari.adapter import GLOBAL_KEY, AriEvent
from televikar_pbx.calls import naming
from televikar_pbx.calls.journal import CallJournal
from televikar_pbx.calls.media import MediaFlows, recording_name
from televikar_pbx.calls.ports import CallStore, Telephony
from televikar_pbx.calls.presence import Presence
from televikar_pbx.calls.recovery import ADOPT, Adoption
from televikar_pbx.calls.state import ActiveCall, caller_id
from televikar_pbx.clock import Clock
from televikar_pbx.domain import acd
from televikar_pbx.domain.directory import Agent, Directory, HoldStyle
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.errors import AriError, AriNotFound

log = structlog.get_logger("televikar_pbx.calls")

# Synthetic events we put into a call's own queue, so they are ordered with the rest.
OFFER_FAILED_LATER = "TelevikarOfferFailed"
COMMAND = "TelevikarCommand"
TICK = "TelevikarTick"
# After an offer could not even be placed (endpoint unknown, Asterisk refused), wait
# before telling the desk: otherwise a broken agent would be re-offered in a tight loop.
ORIGINATE_RETRY_S = 1.0

_current_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_key", default=None)


def synthetic(kind: str, at: datetime, key: str, **fields: Any) -> AriEvent:
    return AriEvent(kind, at, {"type": kind, "channel": {"id": key}, **fields})


class CallService:
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
    ) -> None:
        self.clock = clock
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
        self.calls: dict[str, ActiveCall] = {}
        self._channel_call: dict[str, str] = {}
        self._agents: dict[int, Agent] = {a.id: a for a in directory.agents}
        # Channels whose ChannelDestroyed we will get (see the handler table).
        self._subscribed: set[str] = set()
        self._tick_at: datetime | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        self._handlers: dict[str, Callable[[AriEvent], Any]] = {
            "StasisStart": self._on_stasis_start,
            # A channel that leaves Stasis is no longer ours: Asterisk sends no
            # ChannelDestroyed for it after StasisEnd unless we subscribed to the channel.
            # Caller legs are subscribed on arrival so that ChannelDestroyed brings the
            # hang-up cause; StasisEnd ends a leg only when that subscription failed.
            # Agent legs we originate are subscribed by the originate itself.
            "StasisEnd": self._on_stasis_end,
            "ChannelDestroyed": self._on_leg_gone,
            "PlaybackFinished": self._on_playback_finished,
            "RecordingFinished": self._on_recording_done,
            "RecordingFailed": self._on_recording_done,
            OFFER_FAILED_LATER: self._on_offer_failed_later,
            COMMAND: self._on_command,
            TICK: self._on_tick,
            ADOPT: self._on_adopt,
        }

    async def handle(self, event: AriEvent) -> None:
        handler = self._handlers.get(event.type)
        if handler is None:
            log.debug("ari.event_ignored", ari_event=event.type, channel=event.channel_id)
            return
        cid = event.channel_id or event.target_channel_id
        token = _current_key.set(self._channel_call.get(cid, cid) if cid else GLOBAL_KEY)
        try:
            await handler(event)
        finally:
            _current_key.reset(token)

    # --- arrivals ------------------------------------------------------------------------

    async def _on_stasis_start(self, event: AriEvent) -> None:
        args = event.args
        role = args[0] if args else "inbound"
        if role == "agent":
            await self._on_agent_answered(event, args[1] if len(args) > 1 else "")
        else:
            await self._on_caller_arrived(event, args[1] if len(args) > 1 else None)

    async def _on_caller_arrived(self, event: AriEvent, dialled: str | None) -> None:
        channel = event.channel
        key = str(channel["id"])
        dialled = dialled or str(channel.get("dialplan", {}).get("exten", ""))
        caller = channel.get("caller", {})
        caller_number = str(caller.get("number") or "") or None
        caller_name = str(caller.get("name") or "") or None
        customer = self.directory.customer_for_call(dialled)
        forwarded_from = None
        if customer is None:
            # Shared entry number or unknown: the Diversion header (res_pjsip_diversion
            # puts it in REDIRECTING) may name the customer's own forwarded line.
            forwarded_from = await self._variable(key, "REDIRECTING(from-num)")
            customer = self.directory.customer_for_call(dialled, forwarded_from)
        linkedid = await self._variable(key, "CHANNEL(linkedid)")
        try:
            await self._ari.subscribe_channel(key)
            self._subscribed.add(key)
        except AriError as exc:
            log.warning("call.subscribe_failed", call_id=key, error=str(exc))
        record_id = await self._store.create_call(
            channel_id=key,
            linkedid=linkedid,
            customer_id=customer.id if customer else None,
            dialled_number=dialled,
            caller_number=caller_number,
            caller_name=caller_name,
            arrived_at=event.timestamp,
        )
        bound = log.bind(call_id=key, customer=customer.name if customer else None)
        call = ActiveCall(key, record_id, key, customer, bound, caller_number)
        self.calls[key] = call
        self._channel_call[key] = key
        await self._journal.arrived(
            record_id,
            event.timestamp,
            dialled=dialled,
            caller=caller_number,
            forwarded_from=forwarded_from,
        )
        if customer is None:
            bound.warning("call.unknown_number", dialled=dialled, forwarded_from=forwarded_from)
        else:
            bound.info("call.arrived", dialled=dialled, caller=caller_number)
        await self._feed(acd.CallerArrived(key, customer.id if customer else None), event.timestamp)

    async def _variable(self, channel_id: str, name: str) -> str | None:
        try:
            return await self._ari.get_variable(channel_id, name) or None
        except AriError:
            return None

    async def _on_agent_answered(self, event: AriEvent, key: str) -> None:
        channel_id = event.channel_id or ""
        call = self.calls.get(key)
        if call is None or call.agent_channel != channel_id or call.agent_id is None:
            # The caller is gone or a newer offer replaced this leg: nobody to talk to.
            log.info("call.stale_agent_leg", call_id=key, channel=channel_id)
            await quietly(self._ari.hangup(channel_id))
            return
        await self._journal.agent_answered(call.record_id, event.timestamp, call.agent_id)
        await self._feed(acd.AgentAnswered(key, call.agent_id), event.timestamp)

    # --- calls taken back after a restart or reconnect (calls/recovery.py) -------------

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
            call = ActiveCall(
                key, record.id, key, customer, log.bind(call_id=key, customer=customer.name),
                record.caller_number,
            )  # fmt: skip
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

    async def _on_adopt(self, event: AriEvent) -> None:
        adoption: Adoption = event.raw["adopt"]
        call = self.calls.get(str(adoption.record.channel_id))
        if call is None:
            return
        try:
            await self._ari.subscribe_channel(call.key)
        except AriError as exc:
            # Gone since the channel list was read: its end is the CDR's, next time.
            call.log.info("recovery.caller_gone", error=str(exc))
            await self._feed(acd.CallerHungUp(call.key), event.timestamp)
            return
        for leg in adoption.stale_agent_legs:  # offers from before: ring no more
            await quietly(self._ari.hangup(leg))
        await self._journal.adopted(
            call.record_id, event.timestamp, call.agent_id, adoption.state.value,
            adoption.capture_phase,
        )  # fmt: skip
        call.log.info("call.adopted", state=adoption.state.value, capture=adoption.capture_phase)
        if adoption.state is acd.CallState.CONNECTED:
            try:
                await self._ari.subscribe_channel(call.agent_channel or "")
            except AriError:  # the agent hung up while we were away
                await self._feed(acd.AgentHungUp(call.key, call.agent_id or 0), event.timestamp)
        elif adoption.state is acd.CallState.CAPTURING:
            await self._resume_capture(call, adoption.capture_phase, event.timestamp)

    async def _resume_capture(self, call: ActiveCall, phase: str | None, at: datetime) -> None:
        if phase == "recording":
            call.recording_name = recording_name(call)  # its RecordingFinished will come
        elif phase == "restart" and await asyncio.to_thread(self._media.recorded, call):
            # Recorded to the end while we were away.
            call.recording_name = recording_name(call)
            done = synthetic("RecordingFinished", at, call.key)
            duration = await self._media.recording_done(call, done)
            await self._feed(acd.MessageRecorded(call.key, duration), at)
        elif phase == "restart":
            # The prompt was heard (or cut short): the beep and the recording start now.
            await self._media_done(call, naming.prompt_playback(call.key), at)

    # --- departures ----------------------------------------------------------------------

    async def _on_stasis_end(self, event: AriEvent) -> None:
        if (event.channel_id or "") not in self._subscribed:
            await self._on_leg_gone(event)

    async def _on_leg_gone(self, event: AriEvent) -> None:
        channel_id = event.channel_id or ""
        self._unbind(channel_id)
        self._subscribed.discard(channel_id)
        key = self._channel_call.pop(channel_id, None)
        call = self.calls.get(key) if key else None
        if call is None:
            return
        cause, cause_txt = event.raw.get("cause"), event.raw.get("cause_txt")
        if channel_id == call.caller_channel:
            call.caller_gone = True
            call.cause, call.cause_txt = cause, cause_txt
            call.log.info("call.caller_hung_up", cause=cause, cause_txt=cause_txt)
            await self._feed(acd.CallerHungUp(call.key), event.timestamp)
        elif channel_id == call.agent_channel and call.agent_id is not None:
            gone = acd.AgentLegGone(call.key, call.agent_id, _cause(cause), _text(cause_txt))
            await self._feed(gone, event.timestamp)

    async def _on_offer_failed_later(self, event: AriEvent) -> None:
        call = self.calls.get(event.channel_id or "")
        agent_id = int(event.raw["agent_id"])
        if call is None or call.agent_id != agent_id or call.agent_channel is not None:
            return  # ended, or offered anew meanwhile
        gone = acd.AgentLegGone(call.key, agent_id, None, "originate_failed")
        await self._feed(gone, event.timestamp)

    # --- media (prompts, announcements, recordings) --------------------------------------

    async def _on_playback_finished(self, event: AriEvent) -> None:
        call = self._call_of(event.target_channel_id)
        if call is None:
            return
        playback_id = str(event.raw.get("playback", {}).get("id", ""))
        await self._media_done(call, playback_id, event.timestamp)

    async def _media_done(self, call: ActiveCall, playback_id: str, at: datetime) -> None:
        done = await self._media.playback_finished(call, playback_id)
        if done == "announcement":
            await self._feed(acd.AnnouncementDone(call.key), at)
        elif done == "recording_started":
            await self._feed(acd.RecordingStarted(call.key), at)
        elif done == "failed_capture":
            await self._feed(acd.MessageRecorded(call.key, 0.0), at)

    async def _on_recording_done(self, event: AriEvent) -> None:
        call = self._call_of(event.target_channel_id)
        if call is None or call.recording_name is None:
            return
        duration = await self._media.recording_done(call, event)
        await self._feed(acd.MessageRecorded(call.key, duration), event.timestamp)

    def _call_of(self, channel_id: str | None) -> ActiveCall | None:
        # A caller leg's channel id is its call key, even after the leg is gone.
        if not channel_id:
            return None
        return self.calls.get(self._channel_call.get(channel_id, channel_id))

    # --- time ----------------------------------------------------------------------------

    async def _on_tick(self, event: AriEvent) -> None:
        self._tick_at = None
        await self._feed(acd.Tick(), self.clock.now())

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

    def _after_change(self) -> None:
        self._schedule_tick()
        if self._presence is not None:
            self._presence.changed()

    async def _feed(self, event: acd.Event, at: datetime) -> None:
        try:
            commands = self.desk.handle(event, at)
        except acd.IllegalEvent as exc:
            log.error("desk.illegal_event", error=str(exc))
            return
        self._after_change()
        await self.execute(commands, at)

    async def _on_command(self, event: AriEvent) -> None:
        await self._run(event.raw["command"], event.timestamp)

    async def execute(self, commands: list[acd.Command], at: datetime) -> None:
        here = _current_key.get()
        for command in commands:
            if isinstance(command, acd.AgentStateChanged):
                self._agent_changed(command)
            elif isinstance(command, acd.PauseToggled):
                continue  # the answer to the one who asked (calls/features.py)
            elif command.call_id == here:
                await self._run(command, at)
            else:
                self._dispatch(synthetic(COMMAND, at, command.call_id, command=command))

    def _agent_changed(self, command: acd.AgentStateChanged) -> None:
        agent = self._agents.get(command.agent_id)
        name = agent.name if agent else str(command.agent_id)
        if command.state is acd.AgentState.PAUSED and "missed" in command.reason:
            log.warning("agent.paused_automatically", agent=name, reason=command.reason)
        else:
            log.info("agent.state", agent=name, state=command.state.value, reason=command.reason)

    async def _run(self, command: acd.Command, at: datetime) -> None:
        call = self.calls.get(getattr(command, "call_id", ""))
        if call is None:
            return  # ended meanwhile
        if isinstance(command, acd.StartWaiting):
            await self._start_waiting(call, command)
        elif isinstance(command, acd.RingAgent):
            await self._ring_agent(call, command.agent_id, command.timeout_s, at)
        elif isinstance(command, acd.ConnectCall):
            await self._connect(call, at)
        elif isinstance(command, acd.CancelOffer | acd.HangUpAgent):
            if call.agent_channel:
                await quietly(self._ari.hangup(call.agent_channel))
        elif isinstance(command, acd.HangUpCaller):
            if not call.caller_gone:
                await quietly(self._ari.hangup(call.caller_channel))
        elif isinstance(command, acd.CaptureMessage):
            await self._journal.message_capture(call.record_id, at, command.reason)
            call.log.info("call.message_capture", reason=command.reason)
            if not await self._media.capture(call, command.prompt):
                await self._feed(acd.MessageRecorded(call.key, 0.0), at)
        elif isinstance(command, acd.Announce):
            await self._journal.announcement(call.record_id, at, command.announcement)
            if not await self._media.announce(call, command.announcement):
                await self._feed(acd.AnnouncementDone(call.key), at)
        elif isinstance(command, acd.OfferMissed):
            call.log.info("call.offer_missed", reason=str(command.cause_txt or command.cause))
            await self._journal.offer_missed(
                call.record_id, at, command.agent_id, command.cause, command.cause_txt
            )
            call.agent_channel = None
        elif isinstance(command, acd.KeepHangupCause):
            call.log.info("call.agent_hung_up", cause=command.cause)
            call.cause, call.cause_txt = command.cause, command.cause_txt
        elif isinstance(command, acd.CloseCall):
            await self._close(call, command.outcome, command.ended_at)

    async def _start_waiting(self, call: ActiveCall, command: acd.StartWaiting) -> None:
        if command.hold_style is HoldStyle.RINGING:
            # 180 Ringing: the caller is not answered while waiting and hears ringback.
            await quietly(self._ari.ring(call.caller_channel))
        else:
            await self._media.hold(call, command.hold_style, command.media)

    async def _ring_agent(
        self, call: ActiveCall, agent_id: int, timeout_s: float, at: datetime
    ) -> None:
        agent = self._agents[agent_id]
        customer = call.customer
        assert customer is not None
        call.offers += 1
        call.agent_id = agent_id
        channel_id = naming.agent_leg(call.key, call.offers)
        call.agent_channel = channel_id
        self._channel_call[channel_id] = call.key
        self._subscribed.add(channel_id)
        self._bind(channel_id, call.key)
        call.log = call.log.bind(agent=agent.name)
        call.log.info("call.offered", endpoint=agent.endpoint, offer=call.offers)
        await self._journal.offered(call.record_id, at, agent_id)
        try:
            await self._ari.originate(
                f"PJSIP/{agent.endpoint}",
                channel_id=channel_id,
                app_args=f"agent,{call.key}",
                caller_id=caller_id(customer.display_name, call.caller_number),
                timeout_s=max(1, round(timeout_s)),
                originator=call.caller_channel,
            )
        except AriError as exc:
            call.log.warning("call.originate_failed", error=str(exc))
            self._unbind(channel_id)
            self._channel_call.pop(channel_id, None)
            self._subscribed.discard(channel_id)
            call.agent_channel = None
            asyncio.get_running_loop().call_later(
                ORIGINATE_RETRY_S,
                lambda: self._dispatch(
                    synthetic(OFFER_FAILED_LATER, self.clock.now(), call.key, agent_id=agent_id)
                ),
            )

    async def _connect(self, call: ActiveCall, at: datetime) -> None:
        assert call.agent_id is not None and call.agent_channel is not None
        try:
            await self._media.stop_hold(call)
            await self._ari.answer(call.caller_channel)
            call.bridge_id = naming.bridge(call.key)
            await self._ari.create_bridge(call.bridge_id, name=naming.bridge_name(call.key))
            await self._ari.add_to_bridge(call.bridge_id, [call.caller_channel, call.agent_channel])
        except AriNotFound:
            # One leg hung up meanwhile; its ChannelDestroyed will end the call.
            call.log.info("call.leg_gone_while_connecting")
            return
        await self._journal.answered(call.record_id, at, call.agent_id)
        call.log.info("call.answered")

    async def _close(self, call: ActiveCall, outcome: Outcome, ended_at: datetime) -> None:
        self.calls.pop(call.key, None)
        if call.bridge_id:
            await quietly(self._ari.destroy_bridge(call.bridge_id))
        await self._journal.ended(
            call.record_id,
            ended_at,
            outcome,
            cause=call.cause if isinstance(call.cause, int) else None,
            cause_txt=str(call.cause_txt) if call.cause_txt else None,
        )
        call.log.info("call.ended", outcome=outcome.value, cause=call.cause)


def _cause(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _text(value: Any) -> str | None:
    return str(value) if value else None


async def quietly(request: Any) -> None:
    """Run a request whose target may be gone already (hang-up races)."""
    try:
        await request
    except AriNotFound:
        pass
    except AriError as exc:
        log.warning("ari.request_failed", error=str(exc))

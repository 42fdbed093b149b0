"""ARI events → desk events: what each Asterisk event means for a call.

The handlers run in the call's own worker (``calls/events.py``), so a call's events are
handled in order. They keep the shell's memory of legs and channels and tell the desk
the facts (a caller arrived, a leg is gone with its cause, a recording started); the
desk decides what follows.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from televikar_pbx.calls import naming
from televikar_pbx.calls.events import AriEvent
from televikar_pbx.calls.media import recording_name
from televikar_pbx.calls.recovery import ADOPT, Adoption
from televikar_pbx.calls.shell import (
    COMMAND,
    OFFER_FAILED_LATER,
    RING_AGAIN,
    TICK,
    CallShell,
    quietly,
    synthetic,
)
from televikar_pbx.calls.state import ActiveCall
from televikar_pbx.domain import acd
from televikar_pbx.domain.directory import HoldStyle
from televikar_pbx.errors import AriError

log = structlog.get_logger("televikar_pbx.calls")

# Closer than this to the event, the dialplan's arrival stamp is the same moment: the
# event's time (finer) is kept, as before the stamp existed.
ARRIVAL_SLACK_S = 0.25


class StasisEvents(CallShell):
    def stasis_handlers(self) -> dict[str, Callable[[AriEvent], Any]]:
        return {
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
            RING_AGAIN: self._on_ring_again,
            ADOPT: self._on_adopt,
        }

    # --- arrivals ------------------------------------------------------------------------

    async def _on_stasis_start(self, event: AriEvent) -> None:
        args = event.args
        role = args[0] if args else "inbound"
        if role == "agent":
            await self._on_agent_answered(event, args[1] if len(args) > 1 else "")
        else:
            dialled = args[1] if len(args) > 1 else ""
            linkedid = args[2] if len(args) > 2 else ""
            arrived = args[3] if len(args) > 3 else ""
            await self._on_caller_arrived(event, dialled, linkedid, arrived)

    async def _on_caller_arrived(
        self, event: AriEvent, dialled: str, linkedid: str, arrived: str = ""
    ) -> None:
        """``dialled``, ``linkedid`` and ``arrived``: the dialplan's Stasis() arguments
        (empty when it did not give them: the channel's own, a request for the linked
        id, and the event's time). ``arrived`` (UTC epoch seconds) is earlier than the
        event when the caller rang while no desk was connected (a standby taking over,
        extensions.conf): the call's record counts the wait from then, and the desk
        queues the caller from then (``CallerArrived.rang_at``)."""
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
        linkedid = linkedid or await self._variable(key, "CHANNEL(linkedid)") or ""

        # The call's row is written at once, but nothing of the routing waits for it:
        # the subscription (Asterisk) is awaited, the desk decides and the agent's phone
        # rings while the database writes; what needs the row's id awaits it
        # (ActiveCall.record), after the agent's INVITE has left.
        rang_at = arrival(arrived, event.timestamp)
        row = asyncio.ensure_future(
            self._store.create_call(
                channel_id=key,
                linkedid=linkedid or None,
                customer_id=customer.id if customer else None,
                dialled_number=dialled,
                caller_number=caller_number,
                caller_name=caller_name,
                arrived_at=rang_at,
                first_event=self._journal.arrival(
                    dialled=dialled, caller=caller_number, forwarded_from=forwarded_from
                ),
            )
        )
        self._rows.add(row)
        row.add_done_callback(functools.partial(self._row_written, key))
        try:
            await self._ari.subscribe_channel(key)
            self._subscribed.add(key)
        except AriError as exc:
            log.warning("call.subscribe_failed", call_id=key, error=str(exc))
        bound = log.bind(call_id=key, customer=customer.name if customer else None)
        call = ActiveCall(key, row, key, customer, bound, caller_number)
        self.calls[key] = call
        self._channel_call[key] = key
        if customer is None:
            bound.warning("call.unknown_number", dialled=dialled, forwarded_from=forwarded_from)
        else:
            bound.info("call.arrived", dialled=dialled, caller=caller_number)
        arrived_event = acd.CallerArrived(
            key,
            customer.id if customer else None,
            rang_at if rang_at < event.timestamp else None,
        )
        await self._feed(arrived_event, event.timestamp)

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
        await self._journal.agent_answered(await call.record(), event.timestamp, call.agent_id)
        await self._feed(acd.AgentAnswered(key, call.agent_id), event.timestamp)

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
            await call.record(), event.timestamp, call.agent_id, adoption.state.value,
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
        elif not adoption.caller_up and call.hold is HoldStyle.RINGING:
            # A caller queued unanswered: its node's 180s went silent while we were
            # away; the SIP front waits for them (commands.py RING_AGAIN_S).
            await self._keep_ringing(call)

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
            gone = acd.AgentLegGone(
                call.key, call.agent_id, _cause(cause), _text(cause_txt),
                ours=bool(event.raw.get("ours")),
            )  # fmt: skip
            await self._feed(gone, event.timestamp)

    async def _on_offer_failed_later(self, event: AriEvent) -> None:
        call = self.calls.get(event.channel_id or "")
        agent_id = int(event.raw["agent_id"])
        if call is None or call.agent_id != agent_id or call.agent_channel is not None:
            return  # ended, or offered anew meanwhile
        gone = acd.AgentLegGone(
            call.key, agent_id, None, "originate_failed", ours=bool(event.raw.get("ours"))
        )
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


def _cause(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _text(value: Any) -> str | None:
    return str(value) if value else None


def arrival(stamp: str, event_at: datetime) -> datetime:
    """The caller's arrival: the dialplan's stamp (UTC epoch seconds) when it is earlier
    than the event by more than the stamp's own precision (the caller rang while no
    desk was connected), else the event's time."""
    try:
        at = datetime.fromtimestamp(float(stamp), UTC)
    except (ValueError, OverflowError, OSError):
        return event_at
    return at if (event_at - at).total_seconds() > ARRIVAL_SLACK_S else event_at

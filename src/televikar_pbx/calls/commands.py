"""Desk commands → telephony: ring, connect, capture, announce, hang up, close.

A command for another call than the one whose worker runs is queued to that call's
worker (as a synthetic event), so each call's ARI requests and records stay in order.
The journal is written through ``calls/journal.py``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog

from televikar_pbx.calls import naming
from televikar_pbx.calls.events import AriEvent
from televikar_pbx.calls.shell import (
    COMMAND,
    OFFER_FAILED_LATER,
    RING_AGAIN,
    CallShell,
    current_key,
    quietly,
    synthetic,
)
from televikar_pbx.calls.state import ActiveCall, caller_id
from televikar_pbx.domain import acd
from televikar_pbx.domain.directory import HoldStyle
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.errors import AriError, AriNotFound, AriUnavailable

log = structlog.get_logger("televikar_pbx.calls")

# After an offer could not even be placed (endpoint unknown, Asterisk refused), wait
# before telling the desk: otherwise a broken agent would be re-offered in a tight loop.
ORIGINATE_RETRY_S = 1.0

# A caller waiting unanswered (hold style "ringing") gets 180 Ringing again this often.
# The INVITE's transaction at the SIP front (Kamailio, asterisk/kamailio/kamailio.cfg
# route[DISPATCH]) takes a node silent for its ring timeout (7 s) after a provisional
# reply for dead and sends the caller to another node: the 180s are the node's sign of
# life. Asterisk sends a 180 at each ring indication while the channel is not answered
# (chan_pjsip: state Ring). Often enough to outlast a standby's takeover (about 2.5 s)
# within that timeout.
RING_AGAIN_S = 1.0
# Only behind a SIP front: without one nobody reads the 180s as a sign of life, and a
# second's ring request per waiting caller would be Asterisk's work for nothing (1,000
# callers waiting: 1,000 requests a second).


def ring_again_interval(sip_front: str | None, nodes: int) -> float | None:
    """How often a waiting caller's 180 is sent again: RING_AGAIN_S behind a SIP front
    (``TELEVIKAR_SIP_FRONT``, or several nodes, which sit behind one), else never."""
    return RING_AGAIN_S if sip_front or nodes else None


class DeskCommands(CallShell):
    async def _on_command(self, event: AriEvent) -> None:
        await self._run(event.raw["command"], event.timestamp)

    async def _keep_ringing(self, call: ActiveCall) -> None:
        """180 Ringing to the caller now and every ``_ring_again_s`` until the caller is
        answered or gone (RING_AGAIN_S)."""
        call.ringing = True
        await quietly(self._ari.ring(call.caller_channel))
        if self._ring_again_s is None:
            return
        key = call.key
        asyncio.get_running_loop().call_later(
            self._ring_again_s,
            lambda: self._dispatch(synthetic(RING_AGAIN, self.clock.now(), key)),
        )

    async def _on_ring_again(self, event: AriEvent) -> None:
        call = self.calls.get(str(event.channel.get("id", "")))
        # Answered meanwhile: a ring indication on an answered channel would play a
        # ringback tone into it (Asterisk's in-band fallback), so never after that.
        if call is None or not call.ringing or call.answered or call.caller_gone:
            return
        await self._keep_ringing(call)

    async def execute(self, commands: list[acd.Command], at: datetime) -> None:
        here = current_key.get()
        for command in commands:
            if isinstance(command, acd.AgentStateChanged):
                self._agent_changed(command)
                if self._agent_log is not None:  # behind the routing (calls/agent_log.py)
                    availability = self.desk.availability(command.agent_id)
                    await self._agent_log.changed(command.agent_id, availability, at)
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
            await self._journal.message_capture(await call.record(), at, command.reason)
            call.log.info("call.message_capture", reason=command.reason)
            if not await self._media.capture(call, command.prompt):
                await self._feed(acd.MessageRecorded(call.key, 0.0), at)
        elif isinstance(command, acd.FinishRecording):
            # Asterisk did not report the recording done after the caller left: take
            # what it wrote (recording_done keeps a file of 1 s or more, else nothing).
            call.log.warning("call.recording_not_reported", recording=call.recording_name)
            duration = 0.0
            if call.recording_name is not None:
                done = synthetic("RecordingFinished", at, call.key)
                duration = await self._media.recording_done(call, done)
            await self._feed(acd.MessageRecorded(call.key, duration), at)
        elif isinstance(command, acd.Announce):
            await self._journal.announcement(await call.record(), at, command.announcement)
            if not await self._media.announce(call, command.announcement):
                await self._feed(acd.AnnouncementDone(call.key), at)
        elif isinstance(command, acd.OfferMissed):
            call.log.info("call.offer_missed", reason=str(command.cause_txt or command.cause))
            await self._journal.offer_missed(
                await call.record(), at, command.agent_id, command.cause, command.cause_txt
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
            await self._keep_ringing(call)
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
        # The phone rings first, the journal follows (stamped with the offer's time): a
        # database write does not stand between the caller and the agent's INVITE.
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
            ours = isinstance(exc, AriUnavailable)  # Asterisk unreachable: not the agent's miss
            asyncio.get_running_loop().call_later(
                ORIGINATE_RETRY_S,
                lambda: self._dispatch(
                    synthetic(
                        OFFER_FAILED_LATER, self.clock.now(), call.key, agent_id=agent_id, ours=ours
                    )
                ),
            )
        await self._journal.offered(await call.record(), at, agent_id)

    async def _connect(self, call: ActiveCall, at: datetime) -> None:
        assert call.agent_id is not None and call.agent_channel is not None
        try:
            await self._media.stop_hold(call)
            call.ringing = False
            await self._ari.answer(call.caller_channel)
            call.bridge_id = naming.bridge(call.key)
            await self._ari.create_bridge(call.bridge_id, name=naming.bridge_name(call.key))
            await self._ari.add_to_bridge(call.bridge_id, [call.caller_channel, call.agent_channel])
        except AriNotFound:
            # One leg hung up meanwhile; its ChannelDestroyed will end the call.
            call.log.info("call.leg_gone_while_connecting")
            return
        await self._journal.answered(await call.record(), at, call.agent_id)
        call.log.info("call.answered")

    async def _close(self, call: ActiveCall, outcome: Outcome, ended_at: datetime) -> None:
        self.calls.pop(call.key, None)
        if call.bridge_id:
            await quietly(self._ari.destroy_bridge(call.bridge_id))
        await self._journal.ended(
            await call.record(),
            ended_at,
            outcome,
            cause=call.cause if isinstance(call.cause, int) else None,
            cause_txt=str(call.cause_txt) if call.cause_txt else None,
        )
        call.log.info("call.ended", outcome=outcome.value, cause=call.cause)

"""The async shell around the desk: ARI events in, desk commands carried out, records kept.

Each caller leg is a *call key* (its Asterisk channel id). Agent legs we originate get
ids derived from it and are bound to the same key, so the dispatcher hands every event
of one call to one worker, in order. The desk itself is shared and synchronous: it is
only touched between awaits, so no lock is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from televikar_pbx.ari.adapter import AriEvent
from televikar_pbx.calls.ports import CallStore, Telephony
from televikar_pbx.domain import acd
from televikar_pbx.domain.directory import Agent, Customer, Directory
from televikar_pbx.errors import AriError, AriNotFound

log = structlog.get_logger("televikar_pbx.calls")

# A synthetic event we put into a call's own queue, so it is ordered with the rest.
OFFER_FAILED_LATER = "TelevikarOfferFailed"
# After an offer could not even be placed (endpoint unknown, Asterisk refused), wait
# before telling the desk: otherwise a broken agent would be re-offered in a tight loop.
ORIGINATE_RETRY_S = 1.0


@dataclass(slots=True)
class ActiveCall:
    key: str
    record_id: int
    caller_channel: str
    customer: Customer | None
    log: Any
    caller_number: str | None = None
    agent_id: int | None = None
    agent_channel: str | None = None
    bridge_id: str | None = None
    offers: int = 0
    # Outcome decided outside the desk (e.g. unknown number), written when the leg ends.
    pending_outcome: str | None = None


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
        ring_timeout_s: int = 15,
    ) -> None:
        self._ari = ari
        self._store = store
        self._directory = directory
        self._desk = desk
        self._bind = bind
        self._unbind = unbind
        self._dispatch = dispatch
        self._ring_timeout_s = ring_timeout_s
        self.calls: dict[str, ActiveCall] = {}
        self._channel_call: dict[str, str] = {}
        # Channels whose ChannelDestroyed we will get (see the handler table).
        self._subscribed: set[str] = set()
        self._agents: dict[int, Agent] = {a.id: a for a in directory.agents}
        self._handlers: dict[str, Callable[[AriEvent], Any]] = {
            "StasisStart": self._on_stasis_start,
            # A channel that leaves Stasis is no longer ours: Asterisk sends no
            # ChannelDestroyed for it after StasisEnd unless we subscribed to the channel.
            # Caller legs are subscribed on arrival so that ChannelDestroyed brings the
            # hang-up cause; StasisEnd ends a leg only when that subscription failed.
            # Agent legs we originate are subscribed by the originate itself.
            "StasisEnd": self._on_stasis_end,
            "ChannelDestroyed": self._on_leg_gone,
            OFFER_FAILED_LATER: self._on_offer_failed_later,
        }

    async def handle(self, event: AriEvent) -> None:
        handler = self._handlers.get(event.type)
        if handler is None:
            log.debug("ari.event_ignored", ari_event=event.type, channel=event.channel_id)
            return
        await handler(event)

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
        customer = self._directory.customer_for_number(dialled)
        linkedid = await self._linkedid(key)
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
        bound = log.bind(call_id=key, customer=customer.name if customer else None, dialled=dialled)
        call = ActiveCall(key, record_id, key, customer, bound, caller_number)
        self.calls[key] = call
        self._channel_call[key] = key
        await self._store.append_event(
            record_id, "arrived", event.timestamp, data={"caller": caller_number}
        )
        if customer is None:
            bound.warning("call.unknown_number", caller=caller_number)
            call.pending_outcome = "unknown_number"
            # Cause 1 (unallocated number, SIP 404): the honest answer for a number that
            # is ours on the trunk but assigned to no customer.
            await self._quietly(self._ari.hangup(key, "unallocated"))
            return
        bound.info("call.arrived", caller=caller_number)
        # 180 Ringing: the caller is not answered while waiting and hears ringback.
        await self._quietly(self._ari.ring(key))
        await self._feed(acd.CallerArrived(key, customer.id), event.timestamp)

    async def _linkedid(self, channel_id: str) -> str | None:
        try:
            return await self._ari.get_variable(channel_id, "CHANNEL(linkedid)")
        except AriError:
            return None

    async def _on_agent_answered(self, event: AriEvent, key: str) -> None:
        channel_id = event.channel_id or ""
        call = self.calls.get(key)
        if call is None or call.agent_channel != channel_id or call.agent_id is None:
            # The caller is gone or a newer offer replaced this leg: nobody to talk to.
            log.info("call.stale_agent_leg", call_id=key, channel=channel_id)
            await self._quietly(self._ari.hangup(channel_id))
            return
        await self._store.append_event(
            call.record_id, "agent_answered", event.timestamp, agent_id=call.agent_id
        )
        await self._feed(acd.AgentAnswered(key, call.agent_id), event.timestamp)

    # --- departures ----------------------------------------------------------------------

    async def _on_stasis_end(self, event: AriEvent) -> None:
        channel_id = event.channel_id or ""
        if channel_id not in self._subscribed:
            await self._on_leg_gone(event)

    async def _on_leg_gone(self, event: AriEvent) -> None:
        channel_id = event.channel_id or ""
        self._unbind(channel_id)
        self._subscribed.discard(channel_id)
        key = self._channel_call.pop(channel_id, None)
        call = self.calls.get(key) if key else None
        if call is None:
            return
        cause = event.raw.get("cause")
        cause_txt = event.raw.get("cause_txt")
        if channel_id == call.caller_channel:
            if call.pending_outcome is not None:
                await self._close(call, call.pending_outcome, event.timestamp, cause, cause_txt)
                return
            call.log.info("call.caller_hung_up", cause=cause, cause_txt=cause_txt)
            await self._feed(acd.CallerHungUp(key or ""), event.timestamp, cause, cause_txt)
        elif channel_id == call.agent_channel and call.agent_id is not None:
            slot = self._desk.calls.get(call.key)
            if slot is not None and slot.state is acd.CallState.OFFERED:
                reason = str(cause_txt or cause)
                call.log.info(
                    "call.offer_failed", agent=self._agent_name(call.agent_id), reason=reason
                )
                await self._store.append_event(
                    call.record_id,
                    "offer_failed",
                    event.timestamp,
                    agent_id=call.agent_id,
                    data={"cause": cause, "cause_txt": cause_txt},
                )
                call.agent_channel = None
                await self._feed(acd.OfferFailed(call.key, call.agent_id, reason), event.timestamp)
            elif slot is not None and slot.state is acd.CallState.CONNECTED:
                call.log.info("call.agent_hung_up", cause=cause)
                await self._feed(
                    acd.AgentHungUp(call.key, call.agent_id), event.timestamp, cause, cause_txt
                )

    async def _on_offer_failed_later(self, event: AriEvent) -> None:
        call = self.calls.get(event.channel_id or "")
        agent_id = int(event.raw["agent_id"])
        if call is None or call.agent_id != agent_id:
            return
        slot = self._desk.calls.get(call.key)
        if slot is None or slot.state is not acd.CallState.OFFERED:
            return
        await self._feed(
            acd.OfferFailed(call.key, agent_id, str(event.raw["reason"])), event.timestamp
        )

    # --- the desk and its commands -------------------------------------------------------

    async def _feed(
        self, event: acd.Event, at: datetime, cause: Any = None, cause_txt: Any = None
    ) -> None:
        try:
            commands = self._desk.handle(event, at)
        except acd.IllegalEvent as exc:
            log.error("desk.illegal_event", error=str(exc))
            return
        await self.execute(commands, at, cause, cause_txt)

    async def execute(
        self, commands: list[acd.Command], at: datetime, cause: Any = None, cause_txt: Any = None
    ) -> None:
        for command in commands:
            call = self.calls.get(command.call_id)
            if call is None:
                log.error("desk.command_for_unknown_call", command=repr(command))
                continue
            if isinstance(command, acd.RingAgent):
                await self._ring_agent(call, command.agent_id, at)
            elif isinstance(command, acd.ConnectCall):
                await self._connect(call, at)
            elif isinstance(command, acd.CancelOffer | acd.HangUpAgent):
                if call.agent_channel:
                    await self._quietly(self._ari.hangup(call.agent_channel))
            elif isinstance(command, acd.HangUpCaller):
                await self._quietly(self._ari.hangup(call.caller_channel))
            elif isinstance(command, acd.CloseCall):
                await self._close(call, command.outcome.value, at, cause, cause_txt)

    async def _ring_agent(self, call: ActiveCall, agent_id: int, at: datetime) -> None:
        agent = self._agents[agent_id]
        customer = call.customer
        assert customer is not None
        call.offers += 1
        call.agent_id = agent_id
        channel_id = f"{call.key}-a{call.offers}"
        call.agent_channel = channel_id
        self._channel_call[channel_id] = call.key
        self._subscribed.add(channel_id)
        self._bind(channel_id, call.key)
        call.log = call.log.bind(agent=agent.name)
        call.log.info("call.offered", endpoint=agent.endpoint, offer=call.offers)
        await self._store.append_event(call.record_id, "offered", at, agent_id=agent_id)
        try:
            await self._ari.originate(
                f"PJSIP/{agent.endpoint}",
                channel_id=channel_id,
                app_args=f"agent,{call.key}",
                caller_id=caller_id(customer.display_name, call.caller_number),
                timeout_s=self._ring_timeout_s,
                originator=call.caller_channel,
            )
        except AriError as exc:
            call.log.warning("call.originate_failed", error=str(exc))
            self._unbind(channel_id)
            self._channel_call.pop(channel_id, None)
            call.agent_channel = None
            asyncio.get_running_loop().call_later(
                ORIGINATE_RETRY_S,
                self._dispatch,
                AriEvent.from_json(
                    {
                        "type": OFFER_FAILED_LATER,
                        "channel": {"id": call.key},
                        "agent_id": agent_id,
                        "reason": "originate_failed",
                    }
                ),
            )

    async def _connect(self, call: ActiveCall, at: datetime) -> None:
        assert call.agent_id is not None and call.agent_channel is not None
        try:
            await self._ari.answer(call.caller_channel)
            call.bridge_id = f"{call.key}-bridge"
            await self._ari.create_bridge(call.bridge_id, name=f"call {call.key}")
            await self._ari.add_to_bridge(call.bridge_id, [call.caller_channel, call.agent_channel])
        except AriNotFound:
            # One leg hung up meanwhile; its ChannelDestroyed will end the call.
            call.log.info("call.leg_gone_while_connecting")
            return
        await self._store.mark_answered(call.record_id, call.agent_id, at)
        await self._store.append_event(call.record_id, "answered", at, agent_id=call.agent_id)
        call.log.info("call.answered")

    async def _close(
        self, call: ActiveCall, outcome: str, at: datetime, cause: Any, cause_txt: Any
    ) -> None:
        self.calls.pop(call.key, None)
        if call.bridge_id:
            await self._quietly(self._ari.destroy_bridge(call.bridge_id))
        await self._store.mark_ended(
            call.record_id,
            ended_at=at,
            outcome=outcome,
            hangup_cause=int(cause) if isinstance(cause, int) else None,
            hangup_cause_text=str(cause_txt) if cause_txt else None,
        )
        await self._store.append_event(call.record_id, "ended", at, data={"outcome": outcome})
        call.log.info("call.ended", outcome=outcome, cause=cause)

    def _agent_name(self, agent_id: int) -> str:
        agent = self._agents.get(agent_id)
        return agent.name if agent else str(agent_id)

    @staticmethod
    async def _quietly(request: Any) -> None:
        """Run a request whose target may be gone already (hang-up races)."""
        try:
            await request
        except AriNotFound:
            pass
        except AriError as exc:
            log.warning("ari.request_failed", error=str(exc))


def caller_id(display_name: str, number: str | None) -> str:
    """The caller-ID the agent's phone shows: the customer's name, the caller's number."""
    name = display_name.replace('"', "'").replace("\\", "")
    return f'"{name}" <{number or ""}>'

"""Taking calls back after our process restarted or lost its ARI connection.

Asterisk keeps a Stasis application's channels and bridges when the application's
websocket goes away (our process was killed, or the connection dropped), and it keeps
delivering their events once we are back. What we may have missed is what happened in
between. Each time the ARI connection comes up, :func:`reconcile` compares three
sources and makes them agree:

- what Asterisk has now (``GET /channels``, ``GET /bridges``);
- the calls this process has in memory (after a reconnect);
- the calls the database has open (after a restart: left by the previous run).

A call's identity is its caller leg's channel id (Asterisk's uniqueid), which is the
``channel_id`` of its row and the *call key* in memory; agent legs, the bridge,
playbacks and recordings are named from it (``calls/naming.py``). So nothing is needed
on the channel itself to find a call again.

Outcomes, per call:

- In memory, but a leg is gone in Asterisk: the ``ChannelDestroyed`` we missed is
  replayed (its time from the CDR), and the call ends the usual way.
- Open in the database, caller still in Asterisk: *adopted* (see
  ``CallService._on_adopt``): a waiting caller is queued again with its arrival time
  (a stale offer ringing an agent is cancelled), a connected call goes on with its agent,
  a message capture goes on; a caller hearing an announcement is hung up (the
  announcement was nearly over).
- Open in the database, caller gone: closed from what is known: the end from
  Asterisk's CDR (else now), the outcome from the row and its journal (answered; a
  message, kept from the recording spool if it was recorded; announced; else abandoned).

The rules (what a call becomes) are pure functions in ``domain/recovery.py``; this
module gathers the facts and carries the result out.

Nothing is counted twice: rows are only ever updated, never added, and a call in memory
or adopted is closed once by its own worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from televikar_pbx.calls import naming
from televikar_pbx.calls.cdr import channel_ends
from televikar_pbx.calls.events import AriEvent
from televikar_pbx.calls.journal import CallJournal
from televikar_pbx.calls.media import keep_private, wav_seconds
from televikar_pbx.calls.ports import CallStore, Telephony
from televikar_pbx.clock import Clock
from televikar_pbx.domain.acd import CallState
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.recovery import (
    OpenCallFacts,
    adoption_state,
    announced_outcome,
    capture_phase,
    keeps_message,
    recovered_end,
    recovered_outcome,
)
from televikar_pbx.errors import AriError

log = structlog.get_logger("televikar_pbx.calls.recovery")

ADOPT = "TelevikarAdopt"
# Q.850 cause 38, "network out of order": a call on an Asterisk node that was lost.
NODE_LOST_CAUSE = 38


@dataclass(frozen=True, slots=True)
class Adoption:
    """What is known of an open call whose caller is still in Asterisk."""

    record: Any  # CallRecord
    state: CallState
    agent_channel: str | None = None  # CONNECTED: the agent leg in the bridge
    bridge_id: str | None = None
    capture_phase: str | None = None  # CAPTURING: "prompt", "recording" or "restart"
    stale_agent_legs: tuple[str, ...] = ()  # QUEUED: offers ringing from before
    offers: int = 0  # the highest agent leg number used so far (naming.agent_leg)
    caller_up: bool = False  # the caller's channel is answered (hold music, prompt)


async def reconcile(
    *,
    ari: Telephony,
    store: CallStore,
    app: str,
    in_memory: Callable[[], dict[str, Any]],
    dispatch: Callable[[AriEvent], None],
    adopt: Callable[[list[Adoption]], Awaitable[None]],
    cdr_file: Path | None,
    recording_spool: Path,
    messages_dir: Path,
    connected_at: datetime,
    clock: Clock,
    owns: Callable[[str], bool] = lambda _key: True,
) -> dict[str, int]:
    """Make memory, database and Asterisk agree; returns counts for the log.

    With several nodes (cluster/nodes.py) this runs per node: ``ari`` is that node's,
    and ``owns`` tells its calls (by key) from the other nodes' calls, which are left
    alone."""
    journal = CallJournal(store)
    channels = {str(c["id"]): c for c in await ari.list_channels()}
    bridges = {str(b["id"]): b for b in await ari.list_bridges()}
    counts = {"replayed": 0, "adopted": 0, "closed": 0, "arrived": 0}
    # The calls this process knows now are closed by their own workers (below, with a
    # replayed end), never by step 2, even when that happens while this runs.
    everything = dict(in_memory())
    mine = {key: call for key, call in everything.items() if owns(key)}

    # 1. Calls in memory whose legs went away while we were not listening.
    gone: list[tuple[str, str]] = []
    for key, call in mine.items():
        legs = [] if call.caller_gone else [call.caller_channel]
        legs += [call.agent_channel] if call.agent_channel else []
        gone += [(key, leg) for leg in legs if leg not in channels]
    ends = await asyncio.to_thread(channel_ends, cdr_file, [leg for _, leg in gone])
    for key, leg in gone:
        at = ends.get(leg) or clock.now()
        # "ours": it ended while we were not listening (for an offer: not the agent's miss).
        raw = {
            "type": "ChannelDestroyed", "channel": {"id": leg}, "cause_txt": "missed",
            "ours": True,
        }  # fmt: skip
        dispatch(AriEvent("ChannelDestroyed", at, raw))
        log.info("recovery.leg_gone", call_id=key, channel=leg)
        counts["replayed"] += 1

    # 2. Calls the database has open that this process does not know.
    open_rows = [
        r
        for r in await store.open_calls(connected_at)
        if owns(r.channel_id) and r.channel_id not in everything and r.channel_id not in in_memory()
    ]
    lost = [r for r in open_rows if r.channel_id not in channels]
    ends = await asyncio.to_thread(channel_ends, cdr_file, [r.channel_id for r in lost])
    adoptions: list[Adoption] = []
    for record in open_rows:
        key = record.channel_id
        facts = OpenCallFacts.of(
            await journal.entries(record.id),
            customer_id=record.customer_id,
            answered_at=record.answered_at,
            agent_id=record.agent_id,
        )
        if record in lost:
            kept = False
            if facts.capturing and not facts.answered:
                kept = await _message_left(store, record, facts, recording_spool, messages_dir)
            outcome = recovered_outcome(facts, kept)
            end = ends.get(key)
            ended_at = recovered_end(end, clock.now(), record.arrived_at, record.answered_at)
            await _mark(journal, record, outcome, ended_at, "cdr" if end else "recovery")
            counts["closed"] += 1
            continue
        adoption = await _adoption(ari, record, facts, channels, bridges)
        if adoption is None:
            await _quiet_hangup(ari, record.channel_id)
            await _mark(journal, record, announced_outcome(facts), clock.now(), "recovery")
            counts["closed"] += 1
            continue
        adoptions.append(adoption)
    # All at once, connected calls first: their agents are busy before anyone is routed.
    order = (CallState.CONNECTED, CallState.CAPTURING, CallState.QUEUED)
    await adopt(sorted(adoptions, key=lambda a: order.index(a.state)))
    counts["adopted"] = len(adoptions)

    # 3. Callers that entered our application while nobody listened (our process had
    # just died, Asterisk had not yet noticed): no row, no memory. They arrive now, with
    # the channel's creation time as their arrival.
    known = {r.channel_id for r in open_rows} | set(everything) | set(in_memory())
    for channel_id, channel in channels.items():
        args = _inbound_args(channel, app)
        if args is None or channel_id in known or naming.is_agent_leg(channel_id):
            continue
        if await store.find_by_channel(channel_id) is not None:
            continue  # its call was recorded and closed: not ours to start again
        created = _instant(channel.get("creationtime")) or clock.now()
        start: dict[str, Any] = {"type": "StasisStart", "channel": channel, "args": args}
        dispatch(AriEvent("StasisStart", created, start))
        log.info("recovery.unseen_arrival", call_id=channel_id)
        counts["arrived"] += 1

    # 4. Agent legs of ours that belong to no call any more.
    for channel_id in channels:
        parsed = naming.parse_agent_leg(channel_id)
        if parsed is not None and parsed[0] not in known and _ours(channels[channel_id]):
            await _quiet_hangup(ari, channel_id)
    if any(counts.values()):
        log.info("recovery.done", **counts)
    return counts


def lost_with_node(
    in_memory: dict[str, Any], owns: Callable[[str], bool], at: datetime, node: str
) -> list[AriEvent]:
    """The ends of the calls that were on a node we lost (several nodes, cluster/nodes.py
    NodeWatch): a killed Asterisk takes its channels with it and sends nothing more, so
    each caller leg still up is taken as gone at ``at``, the moment we lost the node,
    with cause 38; each call then ends the usual way (answered, abandoned, ...)."""
    events = []
    for key, call in in_memory.items():
        if owns(key) and not call.caller_gone:
            raw = {
                "type": "ChannelDestroyed", "channel": {"id": call.caller_channel},
                "cause": NODE_LOST_CAUSE, "cause_txt": f"Network out of order (node {node} lost)",
                "ours": True,
            }  # fmt: skip
            events.append(AriEvent("ChannelDestroyed", at, raw))
    return events


def _inbound_args(channel: dict[str, Any], app: str) -> list[str] | None:
    """The Stasis() arguments of a caller channel in ``app``; None for any other."""
    dialplan = channel.get("dialplan") or {}
    if str(dialplan.get("app_name", "")).lower() != "stasis":
        return None
    name, *args = str(dialplan.get("app_data", "")).split(",")
    return args if name == app and args[:1] == ["inbound"] else None


def _instant(value: Any) -> datetime | None:
    """An ARI timestamp (``2026-11-27T03:13:58.636+0000``) as an aware datetime."""
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None


def _ours(channel: dict[str, Any]) -> bool:
    dialplan = channel.get("dialplan") or {}
    return str(dialplan.get("app_name", "")).lower() == "stasis" or not dialplan


async def _adoption(
    ari: Telephony,
    record: Any,
    facts: OpenCallFacts,
    channels: dict[str, dict[str, Any]],
    bridges: dict[str, dict[str, Any]],
) -> Adoption | None:
    """How to take the call back; None: end it (unknown number, announcement)."""
    state = adoption_state(facts)
    if state is None:
        return None
    key = record.channel_id
    legs = naming.agent_legs(key, channels)
    offers = max((n for leg in legs if (n := _offer(leg))), default=0)
    caller_up = str(channels[key].get("state", "")) == "Up"
    if state is CallState.CAPTURING:
        phase = capture_phase(
            recording_live=await ari.live_recording_exists(naming.recording(record.id, key)),
            prompt_playing=await ari.playback_exists(naming.prompt_playback(key)),
        )
        return Adoption(record, state, capture_phase=phase, offers=offers, caller_up=caller_up)
    if state is CallState.CONNECTED:
        bridge_id = naming.bridge(key)
        bridge = bridges.get(bridge_id)
        in_bridge = set(bridge.get("channels", [])) if bridge else set()
        connected = [leg for leg in legs if leg in in_bridge]
        # The agent leg may have gone meanwhile: adopted, then its loss is replayed.
        leg = connected[0] if connected else naming.agent_leg(key, 0)
        return Adoption(
            record, state, agent_channel=leg, bridge_id=bridge_id, offers=offers,
            caller_up=caller_up,
        )  # fmt: skip
    return Adoption(
        record, CallState.QUEUED, stale_agent_legs=tuple(legs), offers=offers, caller_up=caller_up
    )


def _offer(leg: str) -> int:
    parsed = naming.parse_agent_leg(leg)
    return parsed[1] if parsed else 0


async def _message_left(
    store: CallStore, record: Any, facts: OpenCallFacts, recording_spool: Path, messages_dir: Path
) -> bool:
    """A capture that ended while we were away: its recording may be in the spool.
    Whether the call has its message now."""
    if await store.message_for_call(record.id) is not None:
        return True
    source = recording_spool / f"{naming.recording(record.id, record.channel_id)}.wav"
    seconds = await asyncio.to_thread(wav_seconds, source)
    if not keeps_message(facts, seconds):
        await asyncio.to_thread(source.unlink, True)
        return False
    folder = messages_dir / str(record.customer_id)

    def move() -> Path:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return keep_private(source, folder / source.name)

    target = await asyncio.to_thread(move)
    await store.add_message(
        record.id, record.customer_id, record.caller_number, str(target), seconds
    )
    return True


async def _mark(
    journal: CallJournal, record: Any, outcome: Outcome, ended_at: datetime, source: str
) -> None:
    await journal.ended(record.id, ended_at, outcome, recovered_from=source)
    log.info(
        "recovery.call_closed",
        call_id=record.channel_id,
        outcome=outcome.value,
        end_from=source,
    )


async def _quiet_hangup(ari: Telephony, channel_id: str) -> None:
    with contextlib.suppress(AriError):
        await ari.hangup(channel_id)

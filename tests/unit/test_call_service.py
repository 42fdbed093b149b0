"""The call shell with whole adapters replaced by recording fakes (no Asterisk, no DB)."""

from __future__ import annotations

import asyncio
import time
import wave
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from televikar_pbx.calls.commands import RING_AGAIN_S, ring_again_interval
from televikar_pbx.calls.events import AriEvent, EventDispatcher
from televikar_pbx.calls.media import MediaFlows
from televikar_pbx.calls.services import CallService
from televikar_pbx.domain.acd import Desk
from televikar_pbx.domain.calendar import Agreement, Calendar
from televikar_pbx.domain.directory import Agent, Customer, Directory
from televikar_pbx.errors import AriError, AriUnavailable

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ACME = Customer(
    1,
    "Acme AS",
    "Acme",
    numbers=("4721000001",),
    calendar=Calendar(agreement=Agreement(date(2026, 1, 1))),
)


class FakeAri:
    """Records every request; ``fail`` makes one operation raise as if Asterisk could not
    be reached, ``refuse`` as if it answered with an error (HTTP 500)."""

    def __init__(self) -> None:
        self.requests: list[tuple[Any, ...]] = []
        self.variables_read: list[str] = []
        self.fail: set[str] = set()
        self.refuse: set[str] = set()

    def _log(self, *request: Any) -> None:
        if request[0] in self.fail:
            raise AriUnavailable(f"{request[0]} failed")
        if request[0] in self.refuse:
            raise AriError(f"{request[0]}: HTTP 500 Allocation failed", 500)
        self.requests.append(request)

    async def ring(self, channel_id: str) -> None:
        self._log("ring", channel_id)

    async def answer(self, channel_id: str) -> None:
        self._log("answer", channel_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self._log("hangup", channel_id)

    async def subscribe_channel(self, channel_id: str) -> None:
        self._log("subscribe", channel_id)

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        self.variables_read.append(name)
        return channel_id if name == "CHANNEL(linkedid)" else None

    async def originate(self, endpoint: str, **kw: Any) -> dict[str, Any]:
        self._log("originate", endpoint, kw["channel_id"], kw["caller_id"])
        return {"id": kw["channel_id"]}

    async def play(self, channel_id: str, media: list[str], playback_id: str) -> None:
        self._log("play", channel_id, tuple(media), playback_id)

    async def record(
        self, channel_id: str, name: str, *, max_s: int, terminate_on: str = "#"
    ) -> None:
        self._log("record", channel_id, name, max_s)

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        self._log("start_moh", channel_id)

    async def stop_moh(self, channel_id: str) -> None:
        self._log("stop_moh", channel_id)

    async def create_bridge(self, bridge_id: str, name: str = "") -> dict[str, Any]:
        self._log("bridge", bridge_id)
        return {"id": bridge_id}

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        self._log("add_to_bridge", bridge_id, tuple(channel_ids))

    async def destroy_bridge(self, bridge_id: str) -> None:
        self._log("destroy_bridge", bridge_id)

    def names(self) -> list[str]:
        return [r[0] for r in self.requests]


class FakeStore:
    def __init__(self) -> None:
        self.calls: dict[int, dict[str, Any]] = {}
        self.events: list[tuple[int, str]] = []
        self.messages: list[dict[str, Any]] = []
        self.writes: list[str] = []  # each call = one transaction

    async def create_call(self, **kw: Any) -> int:
        self.writes.append("create_call")
        call_id = len(self.calls) + 1
        first = kw.pop("first_event", None)
        self.calls[call_id] = dict(kw)
        if first is not None:  # written with the row, as the repository does
            self.events.append((call_id, first[0]))
        return call_id

    async def append_event(
        self, call_id: int, type: str, at: datetime, agent_id: int | None = None, data: Any = None
    ) -> None:
        self.writes.append(f"append_event:{type}")
        self.events.append((call_id, type))

    async def mark_answered(self, call_id: int, agent_id: int, answered_at: datetime) -> None:
        self.calls[call_id].update(agent_id=agent_id, answered_at=answered_at)

    async def mark_ended(self, call_id: int, **kw: Any) -> None:
        self.calls[call_id].update(kw)

    async def add_message(
        self,
        call_id: int,
        customer_id: int,
        caller_number: str | None,
        file: str,
        duration_s: float,
    ) -> int:
        self.messages.append({"call_id": call_id, "file": file, "duration_s": duration_s})
        return len(self.messages)


def event(kind: str, at_s: float, **raw: Any) -> AriEvent:
    stamp = (T0 + timedelta(seconds=at_s)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return AriEvent.from_json({"type": kind, "timestamp": stamp, **raw})


def caller(channel: str = "c1", dialled: str = "4721000001") -> dict[str, Any]:
    return {
        "id": channel,
        "caller": {"number": "4790000001", "name": "Ola"},
        "dialplan": {"exten": dialled},
    }


class HarnessClock:
    """Starts at T0 and runs at the real pace (the service's timers are real asyncio
    timers): the events' stamps and the desk's deadlines live on the same time line,
    whatever day the test runs."""

    def __init__(self, start: datetime) -> None:
        self._start, self._t0 = start, time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._t0)


class Harness:
    def __init__(
        self,
        tmp_path: Path,
        agents: tuple[Agent, ...],
        store: FakeStore | None = None,
        ring_again_s: float | None = RING_AGAIN_S,
    ) -> None:
        self.ari = FakeAri()
        self.store = store or FakeStore()
        self.spool = tmp_path / "spool"
        self.spool.mkdir()
        self.messages_dir = tmp_path / "messages"
        directory = Directory((ACME,), agents)
        self.dispatcher = EventDispatcher(lambda e: self.service.handle(e))
        self.service = CallService(
            ari=self.ari,
            store=self.store,
            directory=directory,
            desk=Desk(directory, T0),
            clock=HarnessClock(T0),
            bind=self.dispatcher.bind,
            unbind=self.dispatcher.unbind,
            dispatch=self.dispatcher.dispatch,
            media=MediaFlows(
                self.ari, self.store, recording_spool=self.spool, messages_dir=self.messages_dir
            ),
            ring_again_s=ring_again_s,
        )

    async def send(self, *events: AriEvent) -> None:
        for e in events:
            self.dispatcher.dispatch(e)
        await self.dispatcher.drain()

    def write_wav(self, name: str, seconds: float) -> None:
        with wave.open(str(self.spool / f"{name}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\0\0" * int(8000 * seconds))


async def test_answered_call_rings_the_agent_with_the_customers_name_then_bridges(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, (Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True),))
    await h.send(event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001"]))
    assert ("ring", "c1") in h.ari.requests
    assert ("originate", "PJSIP/agent1", "c1-a1", '"Acme" <4790000001>') in h.ari.requests
    await h.send(event("StasisStart", 2, channel={"id": "c1-a1"}, args=["agent", "c1"]))
    assert h.ari.names()[-3:] == ["answer", "bridge", "add_to_bridge"]
    await h.send(
        event("ChannelDestroyed", 5, channel={"id": "c1"}, cause=16, cause_txt="Normal Clearing")
    )
    record = h.store.calls[1]
    assert record["outcome"] == "answered" and record["agent_id"] == 7
    assert record["ended_at"] - record["answered_at"] == timedelta(seconds=3)
    assert ("hangup", "c1-a1") in h.ari.requests


async def test_a_waiting_caller_hears_180_again_until_answered_never_after(
    tmp_path: Path,
) -> None:
    """The node's 180 Ringing again and again while the caller waits unanswered: the SIP
    front takes a node whose INVITE stops ringing for dead (kamailio.cfg). Not once the
    caller is answered: a ring indication on an answered channel plays a tone into it."""
    h = Harness(
        tmp_path, (Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True),), ring_again_s=0.05
    )
    await h.send(event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001"]))

    async def rings() -> int:
        await h.dispatcher.drain()
        return h.ari.requests.count(("ring", "c1"))

    await asyncio.sleep(0.3)
    waiting = await rings()
    assert waiting >= 3, h.ari.requests
    await h.send(event("StasisStart", 2, channel={"id": "c1-a1"}, args=["agent", "c1"]))
    assert h.ari.names()[-3:] == ["answer", "bridge", "add_to_bridge"]
    answered = await rings()
    await asyncio.sleep(0.3)
    assert await rings() == answered, h.ari.requests
    last_ring = max(i for i, r in enumerate(h.ari.requests) if r == ("ring", "c1"))
    assert last_ring < h.ari.requests.index(("answer", "c1"))


async def test_a_waiting_caller_who_hangs_up_is_rung_no_more(tmp_path: Path) -> None:
    h = Harness(
        tmp_path, (Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True),), ring_again_s=0.05
    )
    await h.send(event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001"]))
    await asyncio.sleep(0.12)
    await h.send(event("ChannelDestroyed", 1, channel={"id": "c1"}, cause=16))
    gone = h.ari.requests.count(("ring", "c1"))
    await asyncio.sleep(0.3)
    await h.dispatcher.drain()
    assert h.ari.requests.count(("ring", "c1")) == gone >= 2, h.ari.requests


async def test_without_a_sip_front_a_waiting_caller_is_rung_once(tmp_path: Path) -> None:
    """A single box (no SIP front reading the 180s as a sign of life): one 180, not one a
    second per waiting caller for Asterisk to send (app.py: ring_again_s None)."""
    h = Harness(
        tmp_path, (Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True),), ring_again_s=None
    )
    await h.send(event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001"]))
    await asyncio.sleep(0.3)  # Kari's phone rings; the caller waits
    await h.dispatcher.drain()
    assert h.ari.requests.count(("ring", "c1")) == 1, h.ari.requests


def test_the_180_is_sent_again_only_behind_a_sip_front() -> None:
    assert ring_again_interval(None, 0) is None  # a single box
    assert ring_again_interval("127.0.1.1:5060", 0) == RING_AGAIN_S
    assert ring_again_interval(None, 2) == RING_AGAIN_S


async def test_message_capture_plays_prompt_records_and_keeps_the_message(tmp_path: Path) -> None:
    h = Harness(tmp_path, ())  # nobody serves Acme: message capture at once
    await h.send(event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001"]))
    assert ("answer", "c1") in h.ari.requests
    assert ("play", "c1", ("sound:televikar/message-prompt",), "prompt-c1") in h.ari.requests
    await h.send(
        event("PlaybackFinished", 6, playback={"id": "prompt-c1", "target_uri": "channel:c1"})
    )
    record = next(r for r in h.ari.requests if r[0] == "record")
    name = record[2]
    h.write_wav(name, 5.0)
    await h.send(
        event("ChannelDestroyed", 11, channel={"id": "c1"}, cause=16),
        event("RecordingFinished", 11.1, recording={"name": name, "target_uri": "channel:c1"}),
    )
    assert h.store.calls[1]["outcome"] == "message"
    assert h.store.calls[1]["ended_at"] == T0 + timedelta(seconds=11)
    [message] = h.store.messages
    assert message["duration_s"] == pytest.approx(5.0)
    kept = Path(message["file"])
    assert kept.is_file() and kept.parent.parent == h.messages_dir
    assert kept.stat().st_mode & 0o777 == 0o600
    assert h.messages_dir.stat().st_mode & 0o777 == 0o700
    assert not (h.spool / f"{name}.wav").exists()


async def test_hang_up_during_the_prompt_is_no_message(tmp_path: Path) -> None:
    h = Harness(tmp_path, ())
    await h.send(event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001"]))
    # The arrival is journalled with the row: one transaction before anything else.
    assert h.store.events[:2] == [(1, "arrived"), (1, "message_capture")]
    assert h.store.writes[:2] == ["create_call", "append_event:message_capture"]
    await h.send(event("ChannelDestroyed", 2, channel={"id": "c1"}, cause=16))
    assert h.store.calls[1]["outcome"] == "no_message"
    assert "record" not in h.ari.names()


async def test_unknown_number_hears_the_announcement_and_is_hung_up(tmp_path: Path) -> None:
    h = Harness(tmp_path, ())
    await h.send(
        event(
            "StasisStart", 0, channel=caller(dialled="4799999999"), args=["inbound", "4799999999"]
        )
    )
    assert ("play", "c1", ("sound:televikar/unknown-number",), "ann-c1") in h.ari.requests
    await h.send(
        event("PlaybackFinished", 3, playback={"id": "ann-c1", "target_uri": "channel:c1"})
    )
    assert ("hangup", "c1") in h.ari.requests
    await h.send(event("ChannelDestroyed", 3.1, channel={"id": "c1"}, cause=16))
    assert h.store.calls[1]["outcome"] == "unknown_number"
    assert h.store.calls[1]["customer_id"] is None


async def test_an_offer_that_cannot_be_placed_is_a_miss_after_a_pause(tmp_path: Path) -> None:
    """Asterisk refuses the originate (the phone cannot be dialled): the agent's miss."""
    h = Harness(tmp_path, (Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True),))
    h.ari.refuse.add("originate")
    await h.send(event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001"]))
    assert h.service.desk.agents[7].misses == 0
    await asyncio.sleep(1.2)  # the retry pause, then the desk hears of the miss
    await h.dispatcher.drain()
    assert h.service.desk.agents[7].misses >= 1
    assert (1, "offer_missed") in h.store.events
    await h.send(event("ChannelDestroyed", 2, channel={"id": "c1"}, cause=16))
    assert h.store.calls[1]["outcome"] == "abandoned"


async def test_an_offer_asterisk_could_not_be_reached_for_is_no_miss(tmp_path: Path) -> None:
    """Asterisk unreachable for the originate: journalled, tried again, never the agent's
    miss, so a connection problem of ours pauses nobody."""
    h = Harness(tmp_path, (Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True),))
    h.ari.fail.add("originate")
    await h.send(event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001"]))
    await asyncio.sleep(1.2)  # the retry pause, then the desk hears of the lost offer
    await h.dispatcher.drain()
    assert (1, "offer_missed") in h.store.events
    assert h.service.desk.agents[7].misses == 0
    await h.send(event("ChannelDestroyed", 2, channel={"id": "c1"}, cause=16))
    assert h.store.calls[1]["outcome"] == "abandoned"


async def test_an_agent_leg_gone_while_ringing_is_journalled_as_a_missed_offer(
    tmp_path: Path,
) -> None:
    agents = (
        Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True),
        Agent(8, "Per", "agent2", frozenset({1}), logged_in=True),
    )
    h = Harness(tmp_path, agents)
    await h.send(event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001"]))
    first = next(r for r in h.ari.requests if r[0] == "originate")
    await h.send(event("ChannelDestroyed", 15, channel={"id": first[2]}, cause=19))
    assert (1, "offer_missed") in h.store.events
    second = [r for r in h.ari.requests if r[0] == "originate"][1]
    assert second[2] == "c1-a2" and second[1] != first[1]  # the next agent rings
    # The agent who answers and then hangs up ends the call with the agent's cause.
    await h.send(event("StasisStart", 17, channel={"id": "c1-a2"}, args=["agent", "c1"]))
    await h.send(
        event("ChannelDestroyed", 40, channel={"id": "c1-a2"}, cause=16, cause_txt="Normal")
    )
    record = h.store.calls[1]
    assert record["outcome"] == "answered"
    assert (record["hangup_cause"], record["hangup_cause_text"]) == (16, "Normal")
    assert ("hangup", "c1") in h.ari.requests
    assert [t for _, t in h.store.events].count("offer_missed") == 1


async def test_a_caller_gone_while_recording_ends_with_the_recording(tmp_path: Path) -> None:
    h = Harness(tmp_path, ())
    await h.send(event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001"]))
    await h.send(
        event("PlaybackFinished", 6, playback={"id": "prompt-c1", "target_uri": "channel:c1"})
    )
    assert h.service.view().calls[0].state.value == "recording"
    await h.send(event("ChannelDestroyed", 7, channel={"id": "c1"}, cause=16))
    assert "outcome" not in h.store.calls[1]  # the recording is still to end
    name = next(r for r in h.ari.requests if r[0] == "record")[2]
    h.write_wav(name, 0.5)
    await h.send(
        event("RecordingFinished", 7.1, recording={"name": name, "target_uri": "channel:c1"})
    )
    assert h.store.calls[1]["outcome"] == "no_message"
    assert h.store.calls[1]["ended_at"] == T0 + timedelta(seconds=7)


async def test_a_recording_asterisk_never_reports_is_taken_after_the_grace(
    tmp_path: Path,
) -> None:
    """The caller hung up as the recording started and no RecordingFinished came (seen
    under load in the chaos test): RECORDING_GRACE_S after the hang-up the shell takes
    the file itself, so the message is kept and the call ends. The events are stamped in
    the past, so the grace is already over when the hang-up is handled."""
    h = Harness(tmp_path, ())
    await h.send(event("StasisStart", -20, channel=caller(), args=["inbound", "4721000001"]))
    await h.send(
        event("PlaybackFinished", -14, playback={"id": "prompt-c1", "target_uri": "channel:c1"})
    )
    name = next(r for r in h.ari.requests if r[0] == "record")[2]
    h.write_wav(name, 3.0)  # Asterisk wrote it, and never said so
    await h.send(event("ChannelDestroyed", -10, channel={"id": "c1"}, cause=16))
    for _ in range(50):
        if "outcome" in h.store.calls[1]:
            break
        await asyncio.sleep(0.02)
        await h.dispatcher.drain()
    assert h.store.calls[1]["outcome"] == "message"
    assert h.store.calls[1]["ended_at"] == T0 - timedelta(seconds=10)
    [message] = h.store.messages
    assert message["duration_s"] == pytest.approx(3.0)
    # A late RecordingFinished after all changes nothing.
    await h.send(
        event("RecordingFinished", 1, recording={"name": name, "target_uri": "channel:c1"})
    )
    assert len(h.store.messages) == 1 and h.store.calls[1]["outcome"] == "message"


async def test_the_linked_id_comes_with_the_stasis_arguments_without_a_request(
    tmp_path: Path,
) -> None:
    """The dialplan passes ${CHANNEL(linkedid)} as the third Stasis() argument; a
    dialplan that does not (an older one) costs one request for it."""
    h = Harness(tmp_path, ())
    args = ["inbound", "4721000001", "1733.41"]
    await h.send(event("StasisStart", 0, channel=caller("c1"), args=args))
    assert h.store.calls[1]["linkedid"] == "1733.41" and h.ari.variables_read == []
    await h.send(event("StasisStart", 1, channel=caller("c2"), args=["inbound", "4721000001"]))
    assert h.store.calls[2]["linkedid"] == "c2"
    assert h.ari.variables_read == ["CHANNEL(linkedid)"]


def test_the_service_asks_asterisk_only_for_the_events_it_handles(tmp_path: Path) -> None:
    h = Harness(tmp_path, ())
    assert h.service.ari_event_types() == {
        "StasisStart", "StasisEnd", "ChannelDestroyed", "PlaybackFinished",
        "RecordingFinished", "RecordingFailed",
    }  # fmt: skip


class SlowStore(FakeStore):
    """A database that takes its time over a call's row, until ``written`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    async def create_call(self, **kw: Any) -> int:
        await self.written.wait()
        return await super().create_call(**kw)


async def test_the_agents_phone_rings_before_the_calls_row_is_written(tmp_path: Path) -> None:
    """The routing does not wait for the database: the agent's INVITE leaves while the
    call's row is still being written; the journal follows with the row's id, and the
    web desk hears of the id once it is known (its cards show the call's link then)."""
    store = SlowStore()
    h = Harness(tmp_path, (Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True),), store)
    changes: list[int | None] = []
    h.service.watch(lambda: changes.append(h.service.calls["c1"].record_id))
    h.dispatcher.dispatch(event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001"]))
    for _ in range(100):
        if "originate" in h.ari.names():
            break
        await asyncio.sleep(0.01)
    assert ("originate", "PJSIP/agent1", "c1-a1", '"Acme" <4790000001>') in h.ari.requests
    assert store.calls == {} and h.service.calls["c1"].record_id is None
    assert changes and changes[-1] is None  # the offer's change, before the row
    store.written.set()
    await h.dispatcher.drain()
    assert h.service.calls["c1"].record_id == 1
    assert changes[-1] == 1  # told once the id is known
    assert store.events == [(1, "arrived"), (1, "offered")]
    await h.send(event("StasisStart", 2, channel={"id": "c1-a1"}, args=["agent", "c1"]))
    await h.send(event("ChannelDestroyed", 5, channel={"id": "c1"}, cause=16))
    assert store.calls[1]["outcome"] == "answered" and store.calls[1]["agent_id"] == 7


async def test_a_row_the_database_refuses_is_logged_and_the_caller_still_routed(
    tmp_path: Path,
) -> None:
    """Not an outage (that is spooled): a refused row is one logged error; the caller is
    routed all the same (nobody is left in silence), the journal writes fail."""
    h = Harness(tmp_path, (Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True),))

    async def refuse(**kw: Any) -> int:
        raise ValueError("value too long for the column")

    h.store.create_call = refuse  # type: ignore[method-assign]
    with capture_logs() as logs:
        await h.send(event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001"]))
        await h.service.rows_written()
    refused = [e for e in logs if e["event"] == "call.row_refused"]
    assert [(e["call_id"], e["error"]) for e in refused] == [
        ("c1", "value too long for the column")
    ]
    assert ("originate", "PJSIP/agent1", "c1-a1", '"Acme" <4790000001>') in h.ari.requests
    assert h.service.calls["c1"].record_id is None
    assert h.store.events == []


async def test_a_caller_who_rang_while_no_desk_was_connected_counts_from_the_dialplans_stamp(
    tmp_path: Path,
) -> None:
    """extensions.conf passes the caller's arrival (UTC epoch seconds): when Stasis() had
    to be tried again while a standby took over, the record's wait starts then; a stamp
    of the same moment as the event leaves the event's finer time."""
    h = Harness(tmp_path, (Agent(7, "Kari", "agent1", frozenset({1}), logged_in=True),))
    earlier = f"{(T0 - timedelta(seconds=4)).timestamp():.3f}"
    await h.send(
        event("StasisStart", 0, channel=caller(), args=["inbound", "4721000001", "", earlier]),
        event("StasisStart", 1, channel=caller("c2"),
              args=["inbound", "4721000001", "", f"{T0.timestamp() + 0.9:.3f}"]),
        event("StasisStart", 2, channel=caller("c3"), args=["inbound", "4721000001", "", "x"]),
    )  # fmt: skip
    await h.service.rows_written()
    arrived = [c["arrived_at"] for c in h.store.calls.values()]
    assert arrived == [
        T0 - timedelta(seconds=4),
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=2),
    ]
    # The desk queues each caller from the same moment (its place and maximum wait).
    assert [h.service.desk.calls[c].arrived_at for c in ("c1", "c2", "c3")] == arrived

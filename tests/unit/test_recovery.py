"""How calls/recovery.py reconciles memory, database and Asterisk, with fakes for ARI
and the store (the real thing: tests/asterisk/test_faults.py)."""

from __future__ import annotations

import wave
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from televikar_pbx.calls.events import AriEvent
from televikar_pbx.calls.recovery import Adoption, lost_with_node, reconcile
from televikar_pbx.db.records import CallEventRecord, CallRecord
from televikar_pbx.domain.acd import CallState

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@dataclass
class FakeAri:
    channels: list[dict[str, Any]] = field(default_factory=list)
    bridges: list[dict[str, Any]] = field(default_factory=list)
    live: set[str] = field(default_factory=set)
    hangups: list[str] = field(default_factory=list)

    async def list_channels(self) -> list[dict[str, Any]]:
        return self.channels

    async def list_bridges(self) -> list[dict[str, Any]]:
        return self.bridges

    async def live_recording_exists(self, name: str) -> bool:
        return name in self.live

    async def playback_exists(self, playback_id: str) -> bool:
        return playback_id in self.live

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.hangups.append(channel_id)


@dataclass
class FakeStore:
    rows: dict[int, CallRecord]
    journal: dict[int, list[str]] = field(default_factory=dict)
    ended: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: list[tuple[int, str, float]] = field(default_factory=list)
    appended: list[tuple[int, str, dict[str, Any] | None]] = field(default_factory=list)

    async def open_calls(self, arrived_before: datetime) -> list[CallRecord]:
        return [r for r in self.rows.values() if r.arrived_at < arrived_before]

    async def events(self, call_id: int) -> list[CallEventRecord]:
        return [
            CallEventRecord(call_id, n, t, T0) for n, t in enumerate(self.journal.get(call_id, []))
        ]

    async def message_for_call(self, call_id: int) -> object | None:
        return next((m for m in self.messages if m[0] == call_id), None)

    async def find_by_channel(self, channel_id: str) -> object | None:
        return next((r for r in self.rows.values() if r.channel_id == channel_id), None)

    async def mark_ended(self, call_id: int, **kw: Any) -> None:
        self.ended[call_id] = kw

    async def append_event(
        self, call_id: int, type: str, at: datetime, agent_id: Any = None, data: Any = None
    ) -> None:
        self.appended.append((call_id, type, data))

    async def add_message(
        self, call_id: int, customer_id: int, caller: Any, file: str, duration_s: float
    ) -> int:
        self.messages.append((call_id, file, duration_s))
        return len(self.messages)


def row(n: int, *, answered: bool = False, customer: int | None = 1) -> CallRecord:
    return CallRecord(
        id=n, channel_id=f"17000.{n}", linkedid=f"17000.{n}", customer_id=customer,
        dialled_number="4721000001", caller_number="4790000001", caller_name=None,
        arrived_at=T0 + timedelta(seconds=n),
        answered_at=T0 + timedelta(seconds=n + 5) if answered else None,
        agent_id=7 if answered else None,
    )  # fmt: skip


def channel(cid: str, state: str = "Ring") -> dict[str, Any]:
    return {"id": cid, "state": state, "dialplan": {"app_name": "Stasis"}}


@dataclass(frozen=True)
class FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass
class Run:
    adopted: list[Adoption] = field(default_factory=list)
    dispatched: list[AriEvent] = field(default_factory=list)


async def run(
    ari: FakeAri, store: FakeStore, tmp_path: Path, memory: dict[str, Any] | None = None,
    cdr: str = "", owns: Callable[[str], bool] = lambda _key: True,
) -> Run:  # fmt: skip
    result = Run()
    cdr_file = tmp_path / "Master.csv"
    cdr_file.write_text(cdr)

    async def adopt(adoptions: list[Adoption]) -> None:
        result.adopted += adoptions

    await reconcile(
        ari=ari,  # type: ignore[arg-type]
        store=store,  # type: ignore[arg-type]
        app="televikar-pbx",
        in_memory=lambda: memory or {},
        dispatch=result.dispatched.append,
        adopt=adopt,
        cdr_file=cdr_file,
        recording_spool=tmp_path / "spool",
        messages_dir=tmp_path / "messages",
        connected_at=T0 + timedelta(hours=1),
        clock=FixedClock(T0 + timedelta(hours=2)),
        owns=owns,
    )
    return result


def cdr_line(uniqueid: str, end: str) -> str:
    fields = [
        uniqueid, uniqueid, "PJSIP/carrier-1", "", "4790000001", "4721000001", "",
        "from-carrier", "2026-11-27T09:00:00.000+0000", "", end, "10", "0", "NO ANSWER",
        "Stasis", "", "", "", "1",
    ]  # fmt: skip
    return ",".join(f'"{f}"' for f in fields) + "\n"


async def test_calls_gone_while_we_were_away_are_closed_with_the_cdr_end(tmp_path: Path) -> None:
    rows = {1: row(1), 2: row(2, answered=True), 3: row(3), 4: row(4, customer=None)}
    store = FakeStore(rows, journal={3: ["arrived", "message_capture"], 4: ["announcement"]})
    cdr = cdr_line("17000.1", "2026-11-27T09:00:09.250+0000") + cdr_line(
        "17000.2", "2026-11-27T09:01:00.500+0000"
    )
    result = await run(FakeAri(), store, tmp_path, cdr=cdr)
    assert result.adopted == []
    assert {n: e["outcome"] for n, e in store.ended.items()} == {
        1: "abandoned", 2: "answered", 3: "no_message", 4: "unknown_number",
    }  # fmt: skip
    assert store.ended[1]["ended_at"] == datetime(2026, 11, 27, 9, 0, 9, 250000, tzinfo=UTC)
    assert store.ended[2]["ended_at"] == datetime(2026, 11, 27, 9, 1, 0, 500000, tzinfo=UTC)
    sources = {n: d["recovered_from"] for n, t, d in store.appended if t == "ended" and d}
    assert sources == {1: "cdr", 2: "cdr", 3: "recovery", 4: "recovery"}


async def test_one_node_recovers_only_its_own_calls(tmp_path: Path) -> None:
    """Several nodes (cluster/nodes.py): node a's reconciliation sees only a's channels,
    so b's open calls and b's calls in memory are not a's to close or replay."""
    rows = {n: replace(row(n), channel_id=f"{node}-17000.{n}") for n, node in ((1, "a"), (2, "b"))}
    store = FakeStore(rows)
    in_memory_b = MemoryCall("b-17000.9")
    result = await run(
        FakeAri(), store, tmp_path, memory={"b-17000.9": in_memory_b},
        owns=lambda key: key.startswith("a-"),
    )  # fmt: skip
    assert list(store.ended) == [1]
    assert result.dispatched == []


def test_the_calls_of_a_lost_node_end_when_it_was_lost() -> None:
    memory = {
        "a-17000.1": MemoryCall("a-17000.1", "a-17000.1-a1"),
        "a-17000.2": MemoryCall("a-17000.2", caller_gone=True),  # ending already
        "b-17000.3": MemoryCall("b-17000.3"),
    }
    [event] = lost_with_node(memory, lambda key: key.startswith("a-"), T0, "a")
    assert (event.type, event.channel_id, event.timestamp) == ("ChannelDestroyed", "a-17000.1", T0)
    assert (event.raw["cause"], event.raw["ours"]) == (38, True)
    assert "node a lost" in event.raw["cause_txt"]


async def test_a_message_recorded_while_we_were_away_is_kept(tmp_path: Path) -> None:
    store = FakeStore({5: row(5)}, journal={5: ["message_capture"]})
    spool = tmp_path / "spool"
    spool.mkdir()
    with wave.open(str(spool / "msg-5-17000.5.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * 8000 * 3)
    await run(FakeAri(), store, tmp_path)
    assert store.ended[5]["outcome"] == "message"
    [(call_id, file, seconds)] = store.messages
    assert (call_id, seconds) == (5, 3.0)
    assert Path(file).stat().st_mode & 0o777 == 0o600
    assert not (spool / "msg-5-17000.5.wav").exists()


async def test_callers_still_in_asterisk_are_adopted_in_their_state(tmp_path: Path) -> None:
    rows = {1: row(1), 2: row(2, answered=True), 3: row(3), 4: row(4, customer=None)}
    store = FakeStore(rows, journal={3: ["message_capture"]})
    ari = FakeAri(
        channels=[
            channel("17000.1"), channel("17000.1-a2"),  # waiting; an offer ringing
            channel("17000.2", "Up"), channel("17000.2-a1", "Up"),  # talking
            channel("17000.3", "Up"), channel("17000.4", "Up"),
            channel("17999.9-a1"),  # an agent leg of no call
        ],
        bridges=[{"id": "17000.2-bridge", "channels": ["17000.2", "17000.2-a1"]}],
        live={"msg-3-17000.3"},
    )  # fmt: skip
    result = await run(ari, store, tmp_path)
    by_call = {a.record.id: a for a in result.adopted}
    assert [a.state for a in result.adopted] == [
        CallState.CONNECTED, CallState.CAPTURING, CallState.QUEUED,
    ]  # fmt: skip
    assert by_call[1].stale_agent_legs == ("17000.1-a2",) and by_call[1].offers == 2
    assert (by_call[2].agent_channel, by_call[2].bridge_id) == ("17000.2-a1", "17000.2-bridge")
    assert by_call[3].capture_phase == "recording"
    # The unknown number's announcement is cut short; the orphan agent leg hung up.
    assert store.ended[4]["outcome"] == "unknown_number"
    assert sorted(ari.hangups) == ["17000.4", "17999.9-a1"]


@dataclass
class MemoryCall:
    caller_channel: str
    agent_channel: str | None = None
    caller_gone: bool = False


async def test_legs_gone_from_calls_in_memory_are_replayed_not_closed_twice(
    tmp_path: Path,
) -> None:
    store = FakeStore({1: row(1, answered=True)})
    memory = {"17000.1": MemoryCall("17000.1", "17000.1-a1")}
    ari = FakeAri(channels=[channel("17000.1-a1", "Up")])
    result = await run(
        ari, store, tmp_path, memory, cdr=cdr_line("17000.1", "2026-11-27T09:02:00.000+0000")
    )
    [event] = result.dispatched
    assert (event.type, event.channel_id) == ("ChannelDestroyed", "17000.1")
    assert event.timestamp == datetime(2026, 11, 27, 9, 2, tzinfo=UTC)
    assert event.raw["ours"] is True  # ended while we were away: no agent's miss
    assert store.ended == {}  # the call's own worker ends it
    assert result.adopted == []


async def test_a_caller_that_entered_while_nobody_listened_arrives_now(tmp_path: Path) -> None:
    unseen = {
        "id": "17000.9",
        "state": "Ring",
        "creationtime": "2026-11-27T09:00:30.250+0000",
        "dialplan": {"app_name": "Stasis", "app_data": "televikar-pbx,inbound,4721000001"},
    }
    elsewhere = {
        **unseen,
        "id": "17000.8",
        "dialplan": {"app_name": "Stasis", "app_data": "other,inbound,1"},
    }
    store = FakeStore({})
    result = await run(FakeAri(channels=[unseen, elsewhere]), store, tmp_path)
    [event] = result.dispatched
    assert (event.type, event.channel_id, event.args) == (
        "StasisStart",
        "17000.9",
        ["inbound", "4721000001"],
    )
    assert event.timestamp == datetime(2026, 11, 27, 9, 0, 30, 250000, tzinfo=UTC)

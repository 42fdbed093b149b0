"""Per-call ordering and isolation of the ARI event dispatcher."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from televikar_pbx.calls.events import AriEvent, EventDispatcher, parse_ari_time


def ev(kind: str, channel: str | None, n: int) -> AriEvent:
    raw: dict[str, object] = {"type": kind, "n": n}
    if channel is not None:
        raw["channel"] = {"id": channel}
    return AriEvent.from_json(raw)


async def test_events_of_one_call_stay_in_order_and_a_slow_call_stalls_no_other() -> None:
    seen: list[tuple[str, int]] = []
    slow_started = asyncio.Event()
    release = asyncio.Event()

    async def handler(event: AriEvent) -> None:
        key = event.channel_id or "-"
        if key == "slow" and event.raw["n"] == 0:
            slow_started.set()
            await release.wait()
        seen.append((key, int(event.raw["n"])))

    d = EventDispatcher(handler)
    for n in range(3):
        d.dispatch(ev("X", "slow", n))
    await slow_started.wait()
    for n in range(3):
        d.dispatch(ev("X", "fast", n))
    await asyncio.sleep(0.01)
    # The fast call was fully handled while the slow one is stuck.
    assert seen == [("fast", 0), ("fast", 1), ("fast", 2)]
    release.set()
    await d.drain()
    assert [n for k, n in seen if k == "slow"] == [0, 1, 2]
    assert not d.busy


async def test_bound_agent_leg_shares_the_callers_queue() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    async def handler(event: AriEvent) -> None:
        if event.channel_id == "caller":
            await gate.wait()
        order.append(event.channel_id or "")

    d = EventDispatcher(handler)
    d.bind("caller-a1", "caller")
    d.dispatch(ev("X", "caller", 0))
    d.dispatch(ev("X", "caller-a1", 1))
    await asyncio.sleep(0.01)
    assert order == []  # the agent leg waits behind its caller
    gate.set()
    await d.drain()
    assert order == ["caller", "caller-a1"]


async def test_a_failing_handler_does_not_stop_the_queue() -> None:
    handled: list[int] = []

    async def handler(event: AriEvent) -> None:
        if event.raw["n"] == 0:
            raise RuntimeError("boom")
        handled.append(int(event.raw["n"]))

    d = EventDispatcher(handler)
    d.dispatch(ev("X", "c", 0))
    d.dispatch(ev("X", "c", 1))
    await d.drain()
    assert handled == [1]


def test_ari_timestamps_are_aware_utc() -> None:
    stamp = parse_ari_time("2026-11-27T01:13:01.123+0100")
    assert stamp == datetime(2026, 11, 27, 0, 13, 1, 123000, tzinfo=UTC)

"""Our ARI adapter against the real Asterisk: events, reconnects, heartbeat."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from televikar_pbx.ari.adapter import ARI_CONNECTIONS, AriClient, AriEvent
from televikar_pbx.errors import AriNotFound
from tests.asterisk import sipp
from tests.asterisk.conftest import Lab

APP = "televikar-adapter-test"


@pytest.fixture
async def client(lab: Lab) -> AsyncIterator[AriClient]:
    ari = AriClient(
        lab.env.get("TELEVIKAR_ARI_URL", "http://127.0.0.1:8088/"),
        lab.env["TELEVIKAR_ARI_USER"],
        lab.env["TELEVIKAR_ARI_PASSWORD"],
        APP,
        heartbeat_s=1.0,
        reconnect_max_s=1.0,
    )
    yield ari
    await ari.close()


def _our_ports() -> list[str]:
    """The local ports of this process's TCP connections to ARI."""
    listing = subprocess.run(
        ["ss", "-tnpH", "state", "established", "dst", "127.0.0.1:8088"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    mine = f"pid={os.getpid()},"
    return [line.split()[2].rsplit(":", 1)[1] for line in listing.splitlines() if mine in line]


def _kill_server_side(ports: list[str]) -> list[str]:
    """Destroy Asterisk's end of each connection; returns the sockets ``ss`` reports
    destroyed (it prints nothing when the kernel cannot destroy sockets)."""
    killed: list[str] = []
    for port in ports:
        done = subprocess.run(
            ["ss", "-KtnH", "state", "established", "src", "127.0.0.1:8088",
             "dst", f"127.0.0.1:{port}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        killed += done.stdout.splitlines()
    return killed


async def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_events_flow_and_the_connection_comes_back_after_a_drop(
    client: AriClient, lab: Lab, tmp_path: Path
) -> None:
    events: list[AriEvent] = []
    connections = 0

    async def on_connected() -> None:
        nonlocal connections
        connections += 1

    runner = asyncio.create_task(client.run(events.append, on_connected))
    try:
        await wait_for(lambda: connections == 1, 10, "the first connection")
        # A call to agent5's phone (sipp) enters our application once answered.
        with sipp.agent_phone(5, workdir=tmp_path, answer_ms=100):
            await client.originate(
                "PJSIP/agent5",
                channel_id="adapter-test-1",
                app_args="probe",
                caller_id='"Probe" <123>',
                timeout_s=5,
            )
            await wait_for(lambda: any(e.type == "StasisStart" for e in events), 10, "StasisStart")
            await client.hangup("adapter-test-1")
        start = next(e for e in events if e.type == "StasisStart")
        assert start.args == ["probe"]
        assert start.channel_id == "adapter-test-1"
        assert start.timestamp.tzinfo is not None
        with pytest.raises(AriNotFound):
            await client.hangup("no-such-channel")

        # Asterisk's side drops the connection: its end of each of our sockets to ARI is
        # destroyed (ss -K), as a crash or a network fault on that side would.
        ours = await asyncio.to_thread(_our_ports)
        killed = await asyncio.to_thread(_kill_server_side, ours)
        assert killed, f"ss -K destroyed nothing (our ports {ours})"
        assert all(line.split()[2] == "127.0.0.1:8088" for line in killed), killed
        await wait_for(lambda: connections == 2, 10, "the reconnection")
        assert not set(await asyncio.to_thread(_our_ports)) & set(ours)  # new sockets
        assert lab.ari("GET", f"applications/{APP}")["name"] == APP
    finally:
        await client.close()
        await asyncio.wait_for(runner, 5)


async def test_the_event_filter_leaves_only_the_types_asked_for(
    client: AriClient, tmp_path: Path
) -> None:
    """The hot-path requests (originate with variables, hangup) and ARI's eventFilter:
    with StasisStart and StasisEnd allowed, a call brings those two and nothing else
    (without the filter it brings ChannelVarset, ChannelStateChange, Dial, ...)."""
    events: list[AriEvent] = []
    connected = asyncio.Event()

    async def on_connected() -> None:
        await client.filter_events(["StasisStart", "StasisEnd"])
        connected.set()

    runner = asyncio.create_task(client.run(events.append, on_connected))
    try:
        await asyncio.wait_for(connected.wait(), 10)
        with sipp.agent_phone(5, workdir=tmp_path, answer_ms=100):
            await client.originate(
                "PJSIP/agent5",
                channel_id="adapter-test-2",
                app_args="probe,2",
                caller_id='"Probe" <123>',
                timeout_s=5,
                variables={"TELEVIKAR_PROBE": "a b,c"},
            )
            await wait_for(lambda: any(e.type == "StasisStart" for e in events), 10, "StasisStart")
            assert await client.get_variable("adapter-test-2", "TELEVIKAR_PROBE") == "a b,c"
            await client.hangup("adapter-test-2")
            await wait_for(lambda: any(e.type == "StasisEnd" for e in events), 10, "StasisEnd")
        assert [e.type for e in events] == ["StasisStart", "StasisEnd"]
        assert events[0].args == ["probe", "2"]
    finally:
        await client.close()
        await asyncio.wait_for(runner, 5)


async def test_a_burst_of_requests_uses_a_bounded_number_of_connections(
    client: AriClient,
) -> None:
    """200 requests at once (a slow Asterisk makes them pile up): they queue for at most
    ARI_CONNECTIONS connections of ours, far below Asterisk's session limit (100), which
    an unbounded pool would reach and so lock everyone else out."""
    answers = await asyncio.gather(
        *(client.get_variable(f"no-such-channel-{n}", "X") for n in range(200)),
        return_exceptions=True,
    )
    assert all(isinstance(a, AriNotFound) for a in answers)
    ours = await asyncio.to_thread(_our_ports)
    assert 1 <= len(ours) <= ARI_CONNECTIONS + 1, ours  # + aioswagger's, for the cold path


async def test_heartbeat_notices_a_silent_asterisk(client: AriClient, lab: Lab) -> None:
    pid = int((lab.env_file.parent / "asterisk.pid").read_text())
    connections = 0

    async def on_connected() -> None:
        nonlocal connections
        connections += 1

    runner = asyncio.create_task(client.run(lambda e: None, on_connected))
    try:
        await wait_for(lambda: connections == 1, 10, "the first connection")
        # A frozen Asterisk keeps the TCP connection open but answers no ping.
        os.kill(pid, signal.SIGSTOP)
        try:
            await wait_for(lambda: not client.connected.is_set(), 5, "the heartbeat to fail")
        finally:
            os.kill(pid, signal.SIGCONT)
        await wait_for(lambda: connections == 2, 15, "the reconnection after the freeze")
    finally:
        await client.close()
        await asyncio.wait_for(runner, 5)

"""Answering through faults (issue 6): the dialplan takes messages while our process is
down, and the service imports them when it is back."""

from __future__ import annotations

import signal
import subprocess
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from yarl import URL

from televikar_pbx.domain.directory import CustomerRules
from tests.asterisk import sipp
from tests.asterisk.ari_gate import AriGate
from tests.asterisk.conftest import (
    CDR_TOLERANCE_S,
    Lab,
    Service,
    StartService,
    poll,
)
from tests.asterisk.pg_instance import PgInstance  # the pg fixture: conftest.py
from tests.asterisk.test_desk import DIDS, PROMPT_AND_BEEP_MS, seeder

# The fallback dialplan's Answer() returns ~0.5 s after the 200 OK (it waits for media;
# LAB-NOTES), so its prompt and beep end that much later than the app's: the caller starts
# talking 1 s later than PROMPT_AND_BEEP_MS, after the recording surely began (with
# PROMPT_AND_BEEP_MS the first ~0.36 s of the talk were lost: measured 2.64 s of 3 s).
FALLBACK_ANSWER_S = 0.5
FALLBACK_LISTEN_MS = PROMPT_AND_BEEP_MS + 1000


def _fallback_dir(service: Service) -> Path:
    return Path(service.lab.env["TELEVIKAR_RECORDING_SPOOL"]) / "fallback"


def test_calls_while_the_service_is_down_leave_messages_imported_when_it_is_back(
    start_service: StartService, tmp_path: Path
) -> None:
    service: Service = start_service(seeder())
    service.stop()

    # Stasis() fails: the dialplan answers, plays the prompt and records.
    talking = sipp.carrier_message_call(
        DIDS[0],
        workdir=tmp_path,
        wait_ms=FALLBACK_LISTEN_MS,
        talk_ms=3000,
        caller_number="4790000042",
        name="down-talks",
    )
    assert talking.ok, talking.describe()
    silent = sipp.carrier_message_call(
        DIDS[0], workdir=tmp_path, wait_ms=PROMPT_AND_BEEP_MS, talk_ms=0, name="down-silent"
    )
    assert silent.ok, silent.describe()
    # Asterisk writes a .call file in the hang-up handler, just after sipp sees the BYE's
    # 200 OK: wait for both (the first alone made this poll return too early).
    poll(lambda: len(list(_fallback_dir(service).glob("*.call"))) >= 2, 5, "two call files")
    assert service.calls() == []

    service.launch()
    calls = poll(
        lambda: (c := service.calls()) and len(c) == 2 and all(x.ended_at for x in c) and c,
        10,
        "the two calls to be imported",
    )
    message, no_message = calls
    assert (message.outcome, no_message.outcome) == ("message", "no_message")
    assert message.customer_id == service.ids["c0"]
    assert message.caller_number == "4790000042"
    assert message.dialled_number == DIDS[0]
    capture = [e for e in service.events(message.id) if e.type == "message_capture"]
    assert [e.data["reason"] for e in capture] == ["service_down"]
    # Answered at once (the dialplan notes the time when Answer() returns, ~0.5 s after
    # the 200 OK); then the caller listens, talks 3 s and hangs up.
    answered_s = (capture[0].at - message.arrived_at).total_seconds()
    assert abs(answered_s - FALLBACK_ANSWER_S) <= 0.3, answered_s
    assert message.ended_at is not None
    duration_s = (message.ended_at - message.arrived_at).total_seconds()
    assert abs(duration_s - (FALLBACK_LISTEN_MS + 3000) / 1000) <= 0.3, duration_s
    kept = service.message(message.id)
    assert kept is not None
    path = Path(kept.file)
    assert path.stat().st_mode & 0o777 == 0o600
    with wave.open(str(path)) as wav:
        assert abs(wav.getnframes() / wav.getframerate() - 3.0) <= 0.3
    assert service.message(no_message.id) is None
    # Nothing left behind for a second import, and a restart imports nothing twice.
    assert not [p for p in _fallback_dir(service).iterdir() if message.channel_id in p.name]
    service.stop()
    service.launch()
    assert len(service.calls()) == 2

    # The desk answers normally again.
    with sipp.agent_phone(1, workdir=tmp_path, answer_ms=500):
        normal = sipp.carrier_call(DIDS[0], workdir=tmp_path, talk_ms=500, name="after")
        assert normal.ok, normal.describe()
    assert service.ended_call(3).outcome == "answered"


def test_fallback_message_follows_the_setting(start_service: StartService, tmp_path: Path) -> None:
    # The service writes TELEVIKAR_MAX_MESSAGE_S as a dialplan global when it connects.
    service: Service = start_service(seeder(), max_message_s="3")
    poll(
        lambda: "TELEVIKAR_MAX_MESSAGE_S=3" in service.lab.cli("dialplan show globals"),
        5,
        "the global from the setting",
    )
    service.stop()
    # The caller would talk 8 s; the dialplan stops recording after 3 s and hangs up.
    # (Talking from PROMPT_AND_BEEP_MS on: before the recording starts, and through it.)
    long = sipp.carrier_message_call(
        DIDS[0], workdir=tmp_path, wait_ms=PROMPT_AND_BEEP_MS, talk_ms=8000, name="long"
    )
    assert long.ok, long.describe()
    assert sipp.count_requests(long.messages(), "BYE") >= 1  # the PBX hung up first
    call_file = poll(lambda: list(_fallback_dir(service).glob("*.call")), 5, "the call file")
    fields = dict(f.split("=", 1) for f in call_file[0].read_text().split())
    assert fields["record_status"] == "TIMEOUT"  # Record()'s maximum, not the caller
    with wave.open(str(call_file[0].with_suffix(".wav"))) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert abs(seconds - 3.0) <= 0.3


def test_a_killed_service_takes_its_calls_back_when_it_restarts(
    start_service: StartService, tmp_path: Path
) -> None:
    # One agent, no wrap-up: A talks with agent1; B waits behind A; C gives up while the
    # service is dead. kill -9 at ~4 s, restarted ~3 s later.
    service: Service = start_service(
        seeder(rules=CustomerRules(wrap_up_s=0, max_wait_s=60)), ring_timeout_s="30"
    )
    with (
        sipp.agent_phone(1, workdir=tmp_path, answer_ms=1000) as phone,
        ThreadPoolExecutor(3) as pool,
    ):
        a = pool.submit(
            sipp.carrier_call, DIDS[0], workdir=tmp_path, talk_ms=12_000, name="a",
            caller_number="4790000001",
        )  # fmt: skip
        assert len(phone.wait_for_invites(1, timeout_s=5)) == 1  # agent1 rings for A
        time.sleep(1.5)  # A is connected
        b = pool.submit(
            sipp.carrier_call, DIDS[0], workdir=tmp_path, talk_ms=2000, name="b",
            caller_number="4790000002", answer_timeout_s=45,
        )  # fmt: skip
        time.sleep(0.5)
        c = pool.submit(
            sipp.carrier_call, DIDS[0], workdir=tmp_path, name="c",
            caller_number="4790000003", answer_timeout_s=4,
        )  # fmt: skip
        poll(lambda: len(service.calls()) == 3, 5, "three calls in the database")
        time.sleep(0.5)
        service.stop(signal.SIGKILL)
        time.sleep(3)
        service.launch()
        assert a.result().ok, a.result().describe()
        assert b.result().ok, b.result().describe()  # answered after A ended
        assert not c.result().ok  # gave up
    calls = {c.caller_number: c for c in (service.ended_call(n) for n in (1, 2, 3))}
    assert len(service.calls()) == 3  # each call exactly once
    first, second, gave_up = calls["4790000001"], calls["4790000002"], calls["4790000003"]
    assert (first.outcome, second.outcome, gave_up.outcome) == (
        "answered",
        "answered",
        "abandoned",
    )
    assert second.answered_at is not None and first.ended_at is not None
    assert second.answered_at > first.ended_at  # B waited for the only agent
    for call in (first, second, gave_up):
        cdr = service.lab.cdr_row(call.channel_id)
        assert cdr is not None, f"no CDR row for {call.channel_id}"
        assert call.ended_at is not None
        assert abs((cdr.end - call.ended_at).total_seconds()) <= CDR_TOLERANCE_S, call
    adopted = [e.data for e in service.events(first.id) if e.type == "adopted"]
    assert adopted == [{"state": "connected", "capture": None}]
    assert [e.data for e in service.events(second.id) if e.type == "adopted"] == [
        {"state": "queued", "capture": None}
    ]
    closed = [e.data for e in service.events(gave_up.id) if e.type == "ended"]
    assert closed == [{"outcome": "abandoned", "recovered_from": "cdr"}]


def cut_ari(service: Service, seconds: float) -> int:
    """Cut the service's ARI websocket (and each reconnect) for ``seconds`` with the
    ``ss -K`` socket kill, as a network failure would. Returns the sockets ``ss`` reports
    as killed (it prints each one it destroyed; without kernel support it silently
    destroys nothing), not the attempts."""
    assert service.process is not None
    pid = f"pid={service.process.pid},"
    killed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        listing = subprocess.run(
            ["ss", "-tnpH", "state", "established", "dst", "127.0.0.1:8088"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        for line in listing.splitlines():
            if pid in line:
                port = line.split()[2].rsplit(":", 1)[1]  # local address:port
                done = subprocess.run(
                    ["ss", "-KtnH", "state", "established", "sport", "=", port],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                killed += len(done.stdout.splitlines())
        time.sleep(0.05)
    return killed


@pytest.fixture
def ari_gate(lab: Lab) -> Iterator[AriGate]:
    target = URL(lab.env.get("TELEVIKAR_ARI_URL", "http://127.0.0.1:8088/"))
    gate = AriGate((target.host or "127.0.0.1", target.port or 8088))
    try:
        yield gate
    finally:
        gate.close()


def test_calls_that_end_while_ari_is_cut_off_are_closed_from_the_cdr(
    start_service: StartService, ari_gate: AriGate, tmp_path: Path
) -> None:
    service: Service = start_service(
        seeder(rules=CustomerRules(wrap_up_s=0)), ring_timeout_s="30", ari_reconnect_max_s="1",
        ari_url=ari_gate.url,
    )  # fmt: skip
    with (
        sipp.agent_phone(1, workdir=tmp_path, answer_ms=500) as phone,
        ThreadPoolExecutor(1) as pool,
    ):
        talk = pool.submit(sipp.carrier_call, DIDS[0], workdir=tmp_path, talk_ms=3000)
        assert len(phone.wait_for_invites(1, timeout_s=5)) == 1
        # Connected (the agent answered after 0.5 s); the caller hangs up 3 s later.
        poll(lambda: (c := service.calls()) and c[0].answered_at, 5, "the call connected")
        disconnects = service.log().count('"ari.disconnected"')
        assert ari_gate.cut(4.0) >= 1  # everything through the gate, for 4 s
        assert service.log().count('"ari.disconnected"') > disconnects  # really cut
        assert talk.result().ok, talk.result().describe()
        service.wait_connected()
        # Back, and the desk answers again (agent1 is free: the missed end was replayed).
        normal = sipp.carrier_call(DIDS[0], workdir=tmp_path, talk_ms=500, name="after")
        assert normal.ok, normal.describe()
    call = service.ended_call(1)
    assert call.outcome == "answered"
    cdr = service.lab.cdr_row(call.channel_id)
    assert cdr is not None and call.ended_at is not None
    assert abs((cdr.end - call.ended_at).total_seconds()) <= CDR_TOLERANCE_S
    assert [e.type for e in service.events(call.id)].count("ended") == 1
    assert service.ended_call(2).outcome == "answered"
    assert len(service.calls()) == 2
    assert "recovery.leg_gone" in service.log()


def test_calls_during_a_database_outage_are_written_once_when_it_is_back(
    start_service: StartService, pg: PgInstance, tmp_path: Path
) -> None:
    service: Service = start_service(
        seeder(agents=((0,), (0,)), rules=CustomerRules(wrap_up_s=0)), db_url=pg.url
    )
    calls = 10
    with (
        sipp.agent_phone(1, workdir=tmp_path, answer_ms=500),
        sipp.agent_phone(2, workdir=tmp_path, answer_ms=500),
        ThreadPoolExecutor(1) as pool,
    ):
        # One call a second for 10 s; the database is down from ~2 s to ~12 s.
        placed = pool.submit(
            sipp.carrier_call, DIDS[0], workdir=tmp_path, talk_ms=1500, calls=calls, rate=1.0
        )
        time.sleep(2)
        pg.stop()
        time.sleep(10)
        pg.start()
        result = placed.result()
        assert result.ok, result.describe()  # every caller was answered by an agent
    poll(lambda: "spool.drained" in service.log(), 15, "the spool to be written")
    rows = poll(
        lambda: (c := service.calls()) and all(x.ended_at for x in c) and c, 10, "ended calls"
    )
    assert len(rows) == calls
    assert len({r.channel_id for r in rows}) == calls  # each exactly once
    assert all(r.outcome == "answered" for r in rows)
    assert "spool.database_unavailable" in service.log()
    spooled = [r for r in rows if r.arrived_at.timestamp() > rows[0].arrived_at.timestamp() + 2]
    for row in spooled:
        cdr = service.lab.cdr_row(row.channel_id)
        assert cdr is not None and row.ended_at is not None
        assert abs((cdr.end - row.ended_at).total_seconds()) <= CDR_TOLERANCE_S
        assert [e.type for e in service.events(row.id)].count("ended") == 1

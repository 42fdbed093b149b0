"""Answering through faults (issue 6): the dialplan takes messages while our process is
down, and the service imports them when it is back."""

from __future__ import annotations

import wave
from pathlib import Path

from tests.asterisk import sipp
from tests.asterisk.conftest import Service, StartService, poll
from tests.asterisk.test_desk import DIDS, PROMPT_AND_BEEP_MS, seeder


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
        wait_ms=PROMPT_AND_BEEP_MS,
        talk_ms=3000,
        caller_number="4790000042",
        name="down-talks",
    )
    assert talking.ok, talking.describe()
    silent = sipp.carrier_message_call(
        DIDS[0], workdir=tmp_path, wait_ms=PROMPT_AND_BEEP_MS, talk_ms=0, name="down-silent"
    )
    assert silent.ok, silent.describe()
    assert len(poll(lambda: list(_fallback_dir(service).glob("*.call")), 5, "call files")) >= 2
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
    # Answered at once (Answer() returns after ~0.5 s here: it waits for the media to
    # start); then the prompt (9.7 s), the beep, 3 s of talk and the hang-up.
    assert 0 <= (capture[0].at - message.arrived_at).total_seconds() <= 1.0
    assert message.ended_at is not None
    assert 12 <= (message.ended_at - message.arrived_at).total_seconds() <= 16
    kept = service.message(message.id)
    assert kept is not None
    path = Path(kept.file)
    assert path.stat().st_mode & 0o777 == 0o600
    with wave.open(str(path)) as wav:
        assert abs(wav.getnframes() / wav.getframerate() - 3.0) <= 0.6
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

"""What operators see: the status endpoint and device states in the Asterisk CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.calendar import Agreement
from televikar_pbx.domain.directory import CustomerRules
from tests.asterisk import sipp
from tests.asterisk.conftest import Lab, Service, StartService, free_port, poll

DID = "4721000031"


async def seed(directory: DirectoryRepository) -> dict[str, int]:
    c = await directory.add_customer(
        "Status AS", "Status", [DID], agreement=Agreement(date(2026, 1, 1)),
        rules=CustomerRules(wrap_up_s=2),
    )  # fmt: skip
    a = await directory.add_agent("Kari", "agent1", [c.id], logged_in=True)
    return {"c": c.id, "a": a.id}


def get_status(port: int) -> dict[str, Any]:
    """What an operator sees with ``televikar-pbx status --json``."""
    done = subprocess.run(
        [sys.executable, "-m", "televikar_pbx.cli", "status", "--json"],
        env={**os.environ, "TELEVIKAR_CONTROL_PORT": str(port)},
        capture_output=True, text=True, timeout=15, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# Asterisk 22 has no "devicestate list" for Stasis: devices ("devstate list" shows only
# Custom: ones); the service installs one hint per agent, so "core show hints" shows them.
HINT_STATES = {
    "Idle": "NOT_INUSE", "InUse": "INUSE", "Ringing": "RINGING", "Busy": "BUSY",
    "OnHold": "ONHOLD", "Unavailable": "UNAVAILABLE",
}  # fmt: skip


def device_state(lab: Lab, device: str) -> str | None:
    """The state ``core show hints`` shows for a device, as ARI names it."""
    for line in lab.cli("core show hints").splitlines():
        if f": {device} " in line and "State:" in line:
            state = line.split("State:", 1)[1].split()[0]
            return HINT_STATES.get(state, state)
    return None


def test_status_and_device_states_follow_a_call(
    start_service: StartService, lab: Lab, tmp_path: Path
) -> None:
    port = free_port()
    service: Service = start_service(seed, control_port=str(port), ring_timeout_s="30")
    agent = "Stasis:agent-agent1"
    poll(lambda: device_state(lab, agent) == "NOT_INUSE", 5, "agent1 idle in devicestate list")
    with (
        sipp.agent_phone(1, workdir=tmp_path, answer_ms=3000),
        ThreadPoolExecutor(1) as pool,
    ):
        call = pool.submit(
            sipp.carrier_call, DID, workdir=tmp_path, caller_number="4790000077", talk_ms=2000
        )
        status = poll(
            lambda: (s := get_status(port))["customers"][0]["waiting"] and s, 5, "a waiting caller"
        )
        [waiting] = status["customers"][0]["waiting"]
        assert waiting["caller"] == "4790000077"
        assert 0 <= waiting["wait_s"] < 3
        assert status["agents"][0]["state"] == "offered"
        poll(lambda: device_state(lab, agent) == "RINGING", 3, "agent1 RINGING")
        assert "TELEVIKAR_WAITING_" in lab.cli("dialplan show globals")
        poll(lambda: device_state(lab, agent) == "INUSE", 5, "agent1 INUSE")
        assert get_status(port)["customers"][0]["waiting"] == []
        assert call.result().ok
    poll(lambda: device_state(lab, agent) == "BUSY", 3, "agent1 BUSY in wrap-up")
    poll(lambda: device_state(lab, agent) == "NOT_INUSE", 5, "agent1 idle after wrap-up")
    assert service.ended_call(1).outcome == "answered"

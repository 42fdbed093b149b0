"""Busy-lamp fields (docs/operations.md): an agent's phone subscribes to another
agent's hint and is notified of that agent's state as it changes."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.asterisk import sipp
from tests.asterisk.conftest import Service, StartService, poll
from tests.asterisk.test_desk import DIDS, seeder

SUBSCRIBE_SCENARIO = sipp.SCENARIO_DIR / "agent_subscribe.xml"


def _states(notify: sipp.SipMessage) -> list[str]:
    """The dialog states in a NOTIFY's dialog-info body (none: no dialog, idle)."""
    return re.findall(r"<state>(\w+)</state>", notify.text)


def test_an_agents_phone_sees_another_agents_state(
    start_service: StartService, tmp_path: Path
) -> None:
    # agent1 serves nobody and only watches; agent2 takes customer 0's calls.
    service: Service = start_service(seeder(agents=((), (0,))), ring_timeout_s="30")
    poll(
        lambda: "agent-agent2@televikar-states" in service.lab.cli("core show hints"),
        5,
        "the hint for agent2",
    )
    with ThreadPoolExecutor(1) as pool:
        watching = pool.submit(
            sipp._run_carrier,
            SUBSCRIBE_SCENARIO, "agent-agent2", workdir=tmp_path, name="blf",
            variables={"user": "agent1"}, caller_number=None, caller_name=None,
            diversion=None, calls=1, rate=None, max_concurrent=None, answer_timeout_s=30,
            timeout_s=60, target=(sipp.ASTERISK_HOST, sipp.ASTERISK_SIP_PORT),
            extra_args=(), local_ip=sipp.AGENT_IP,
        )  # fmt: skip
        poll(
            lambda: "agent-agent2" in service.lab.cli("pjsip show subscriptions inbound"),
            10,
            "agent1's subscription in Asterisk",
        )
        with sipp.agent_phone(2, workdir=tmp_path, answer_ms=1500):
            call = sipp.carrier_call(DIDS[0], workdir=tmp_path, talk_ms=2000)
            assert call.ok, call.describe()
        result = watching.result()
    assert result.ok, result.describe()
    assert service.ended_call(1).agent_id == service.ids["a2"]

    messages = result.messages()
    subscribes = [m for m in messages if m.cseq_method == "SUBSCRIBE" and m.status]
    assert [m.status for m in subscribes] == [200, 200]  # subscribed, then unsubscribed
    notifies = [m for m in messages if m.method == "NOTIFY" and m.direction == "received"]
    states = [_states(n) for n in notifies]
    print("busy-lamp states:", states)
    assert all(n.header("Event") == "dialog" for n in notifies)
    assert all("application/dialog-info+xml" in (n.header("Content-Type") or "") for n in notifies)
    # Idle at first (no dialog, or a terminated one), ringing (early) while offered, in a
    # call (confirmed) once agent2 answered; the unsubscribe ends the subscription.
    assert "confirmed" not in states[0] and "early" not in states[0]
    changes = states[1:-1]
    assert ["early"] in changes, states
    assert changes.index(["early"]) < changes.index(["confirmed"])
    assert "terminated" in (notifies[-1].header("Subscription-State") or "")

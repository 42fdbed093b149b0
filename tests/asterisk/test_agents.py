"""Agents on SIP phones (issue 4 acceptance): feature codes drive the desk, and a phone
that is not reachable gets no calls; AMI presence survives a dropped connection."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select

from televikar_pbx.ami.presence import AmiPresence
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.models import AgentAvailability
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.calendar import Agreement
from tests.asterisk import sipp
from tests.asterisk.conftest import Lab, Service, StartService, free_port, poll
from tests.helpers import run_async

DID = "4721000041"
PHONE = 9  # agent9: the lab's agent endpoint with digest auth, port 5079


async def seed(directory: DirectoryRepository) -> dict[str, int]:
    c = await directory.add_customer(
        "Agent AS", "Agent", [DID], agreement=Agreement(date(2026, 1, 1))
    )
    a = await directory.add_agent("Nina", "agent9", [c.id], logged_in=False)
    return {"c": c.id, "a": a.id}


def feature(lab: Lab, code: str, tmp_path: Path, n: int) -> None:
    password = lab.env["TELEVIKAR_LAB_AGENT9_PASSWORD"]
    result = sipp.feature_code_call(
        code, workdir=tmp_path, user="agent9", password=password, name=f"feature{n}"
    )
    assert result.ok, result.describe()


def capture_reason(service: Service, call_id: int) -> str | None:
    for event in service.events(call_id):
        if event.type == "message_capture":
            return str(event.data.get("reason"))
    return None


def test_feature_codes_log_in_pause_and_log_out_an_agent(
    start_service: StartService, lab: Lab, tmp_path: Path
) -> None:
    service: Service = start_service(seed)
    password = lab.env["TELEVIKAR_LAB_AGENT9_PASSWORD"]
    assert sipp.register_phone(PHONE, workdir=tmp_path, user="agent9", password=password).ok
    poll(lambda: '"reachable": true' in service.log(), 5, "agent9 reachable over AMI")

    # Logged out: the caller goes straight to message capture.
    sipp.carrier_call(DID, workdir=tmp_path, talk_ms=500, name="before")
    assert service.ended_call(1).outcome == "no_message"
    assert capture_reason(service, 1) == "no_agent"

    feature(lab, "*45", tmp_path, 1)  # log in
    with sipp.agent_phone(PHONE, workdir=tmp_path, answer_ms=300) as phone:
        result = sipp.carrier_call(DID, workdir=tmp_path, talk_ms=500, name="loggedin")
        assert result.ok, result.describe()
        assert len(phone.invites()) == 1
    call = service.ended_call(2)
    assert call.outcome == "answered" and call.agent_id == service.ids["a"]

    feature(lab, "*47", tmp_path, 2)  # pause
    with sipp.agent_phone(PHONE, workdir=tmp_path, answer_ms=300) as phone:
        sipp.carrier_call(DID, workdir=tmp_path, talk_ms=500, name="paused")
        assert phone.invites() == []
    assert capture_reason(service, 3) == "no_agent"

    feature(lab, "*47", tmp_path, 3)  # resume
    with sipp.agent_phone(PHONE, workdir=tmp_path, answer_ms=300) as phone:
        assert sipp.carrier_call(DID, workdir=tmp_path, talk_ms=500, name="resumed").ok
        assert len(phone.invites()) == 1

    feature(lab, "*46", tmp_path, 4)  # log out
    sipp.carrier_call(DID, workdir=tmp_path, talk_ms=500, name="loggedout")
    assert capture_reason(service, 5) == "no_agent"
    assert '"feature.done"' in service.log() or "feature.done" in service.log()

    # The availability log followed each change (calls/agent_log.py), one stretch after
    # the other; a clean stop closes the last.
    service.stop()
    log = availability_log(service)
    assert [state for state, _, _ in log] == [
        "logged_out", "available", "paused", "available", "logged_out",
    ]  # fmt: skip
    assert all(ended is not None for _, _, ended in log)
    assert [started for _, started, _ in log[1:]] == [ended for _, _, ended in log[:-1]]


def availability_log(service: Service) -> list[tuple[str, datetime, datetime | None]]:
    async def read() -> list[tuple[str, datetime, datetime | None]]:
        engine = make_engine(service.db_url)
        try:
            async with make_sessionmaker(engine)() as session:
                rows = await session.execute(
                    select(AgentAvailability.state, AgentAvailability.started_at,
                           AgentAvailability.ended_at).order_by(AgentAvailability.id)
                )  # fmt: skip
                return [(state, started, ended) for state, started, ended in rows]
        finally:
            await engine.dispose()

    result: list[tuple[str, datetime, datetime | None]] = run_async(read)
    return result


def test_an_unreachable_phone_gets_no_calls(
    start_service: StartService, lab: Lab, tmp_path: Path
) -> None:
    async def logged_in(directory: DirectoryRepository) -> dict[str, int]:
        ids = await seed(directory)
        await directory.set_agent_state(ids["a"], logged_in=True)
        return ids

    password = lab.env["TELEVIKAR_LAB_AGENT9_PASSWORD"]
    sipp.register_phone(PHONE, workdir=tmp_path, user="agent9", password=password, expires_s=0)
    service: Service = start_service(logged_in)
    # Not registered: logged in, but nobody can reach the phone.
    sipp.carrier_call(DID, workdir=tmp_path, talk_ms=500, name="unregistered")
    assert capture_reason(service, 1) == "no_agent"

    assert sipp.register_phone(PHONE, workdir=tmp_path, user="agent9", password=password).ok
    poll(lambda: '"reachable": true' in service.log(), 5, "agent9 reachable over AMI")
    with sipp.agent_phone(PHONE, workdir=tmp_path, answer_ms=300) as phone:
        assert sipp.carrier_call(DID, workdir=tmp_path, talk_ms=500, name="registered").ok
        assert len(phone.invites()) == 1

    unregister = sipp.register_phone(
        PHONE, workdir=tmp_path, user="agent9", password=password, expires_s=0, name="unreg"
    )
    assert unregister.ok
    poll(lambda: service.log().count('"reachable": false') >= 1, 5, "agent9 unreachable")
    sipp.carrier_call(DID, workdir=tmp_path, talk_ms=500, name="gone")
    assert capture_reason(service, 3) == "no_agent"


async def test_ami_presence_is_right_again_after_the_connection_drops(
    lab: Lab, tmp_path: Path
) -> None:
    password = lab.env["TELEVIKAR_LAB_AGENT9_PASSWORD"]
    await asyncio.to_thread(
        sipp.register_phone, PHONE, workdir=tmp_path, user="agent9", password=password,
        expires_s=0, name="clean",
    )  # fmt: skip
    changes: list[tuple[str, bool]] = []
    presence = AmiPresence(
        "127.0.0.1",
        int(lab.env.get("TELEVIKAR_AMI_PORT", "5038")),
        lab.env["TELEVIKAR_AMI_USER"],
        lab.env["TELEVIKAR_AMI_PASSWORD"],
        lambda endpoint, ok: changes.append((endpoint, ok)),
        max_delay_s=2,
    )
    # Which changes each full re-read (refresh) reported: the one after the reconnect must
    # be what finds the phone gone, not a live ContactStatus event.
    reread: list[tuple[int, int]] = []  # (changes before, changes after)
    refresh = presence.refresh

    async def observed_refresh() -> None:
        before = len(changes)
        await refresh()
        reread.append((before, len(changes)))

    presence.refresh = observed_refresh  # type: ignore[method-assign]
    presence.start()
    try:
        await asyncio.wait_for(presence.logged_in.wait(), 10)
        assert presence.reachable("agent9") is False
        assert presence.reachable("agent1") is True  # a static contact
        await asyncio.to_thread(
            sipp.register_phone, PHONE, workdir=tmp_path, user="agent9", password=password
        )
        await wait_until(lambda: presence.reachable("agent9") is True, 5)

        presence.drop_connection()
        await wait_until(lambda: not presence.logged_in.is_set(), 5)
        rereads_before = len(reread)
        # While AMI is down the phone goes away: no event can tell us. (panoramisk
        # reconnects after >= 1 s; the unregistration takes a few ms.)
        await asyncio.to_thread(
            sipp.register_phone, PHONE, workdir=tmp_path, user="agent9", password=password,
            expires_s=0, name="whiledown",
        )  # fmt: skip
        assert not presence.logged_in.is_set(), "AMI was back before the phone went away"
        assert presence.reachable("agent9") is True  # nothing told us yet
        await asyncio.wait_for(presence.logged_in.wait(), 10)
        assert presence.reachable("agent9") is False
        # The change was reported by the re-read after the reconnect.
        assert len(reread) == rereads_before + 1
        before, after = reread[-1]
        assert ("agent9", False) in changes[before:after], (changes, reread)
    finally:
        presence.close()


async def wait_until(predicate: object, seconds: float) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_agents_phones_come_from_the_database_and_reload_without_restart(
    start_service: StartService, lab: Lab, tmp_path: Path
) -> None:
    secret = "s3cretKari2026x"

    async def with_phone(directory: DirectoryRepository) -> dict[str, int]:
        ids = await seed(directory)
        c = ids["c"]
        kari = await directory.add_agent("Kari", "kari", [c], logged_in=False)
        await directory.set_agent_secret(kari.id, secret)
        return {**ids, "kari": kari.id}

    port = free_port()
    service: Service = start_service(with_phone, control_port=str(port))
    poll(lambda: "kari" in lab.cli("pjsip show endpoints"), 10, "endpoint kari in Asterisk")
    assert "kari-auth" in lab.cli("pjsip show auths")
    assert sipp.register_phone(PHONE, workdir=tmp_path, user="kari", password=secret).ok
    result = sipp.feature_code_call("*45", workdir=tmp_path, user="kari", password=secret)
    assert result.ok, result.describe()
    with sipp.agent_phone(PHONE, workdir=tmp_path, answer_ms=300) as phone:
        assert sipp.carrier_call(DID, workdir=tmp_path, talk_ms=500).ok
        [invite] = phone.invites()
        assert invite.start_line.startswith("INVITE sip:kari@")
    assert service.ended_call(1).agent_id == service.ids["kari"]

    # The operator adds an agent while the service runs; a reload applies it.
    async def add_lise(directory: DirectoryRepository) -> None:
        lise = await directory.add_agent("Lise", "lise", [service.ids["c"]], logged_in=True)
        await directory.set_agent_secret(lise.id, "an0therSecret99")

    service.directory(add_lise)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/reload", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["agents"] == 3
    assert "lise" in lab.cli("pjsip show endpoints")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as response:
        names = {a["name"]: a["state"] for a in json.load(response)["agents"]}
    # Lise is new and logged in; Kari keeps her live state (wrap-up after the call).
    assert names["Lise"] == "idle" and names["Kari"] == "wrap_up"

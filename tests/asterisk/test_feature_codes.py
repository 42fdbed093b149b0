"""Feature codes on real parts (issue 4): an agent phone with digest auth dials *45/*46/*47,
Asterisk's dialplan hands it to our FastAGI server, which plays the application's
confirmation; nobody else gets there.

The FastAGI server runs in the test's event loop on the port the dialplan names
(4573); sipp runs in a worker thread meanwhile.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from televikar_pbx.agi.server import DEFAULT_PORT, FeatureServer
from tests.asterisk import sipp
from tests.asterisk.conftest import Lab

PROMPTS = {"*45": "logged-in", "*46": "logged-out", "*47": "paused"}


class Recorder:
    """The application's side: records each decision, answers the code's confirmation."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, endpoint: str, code: str, /) -> str:
        self.calls.append((endpoint, code))
        return PROMPTS.get(code, "not-allowed")


@pytest.fixture
async def recorder(lab: Lab) -> AsyncIterator[Recorder]:
    """A FastAGI server on the dialplan's port, answering through a ``Recorder``."""
    recorder = Recorder()
    server = FeatureServer(recorder, port=DEFAULT_PORT)  # as in extensions.conf
    try:
        await server.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        pytest.fail(
            f"127.0.0.1:{server.port} is taken (a running `televikar-pbx serve`?): "
            "the dialplan's FastAGI port must be free for this test",
            pytrace=False,
        )
    try:
        yield recorder
    finally:
        await server.close()


def agent9_password(lab: Lab) -> str:
    password = lab.env.get("TELEVIKAR_LAB_AGENT9_PASSWORD")
    if not password:
        pytest.fail(
            f"no TELEVIKAR_LAB_AGENT9_PASSWORD in {lab.env_file}: run `make asterisk`",
            pytrace=False,
        )
    return password


def answered_to_bye_s(result: sipp.CarrierResult) -> float:
    """Seconds from the 200 OK to our INVITE to the PBX's BYE."""
    messages = result.messages()
    ok = next(
        m
        for m in messages
        if m.direction == "received" and m.status == 200 and m.cseq_method == "INVITE"
    )
    bye = next(m for m in messages if m.direction == "received" and m.method == "BYE")
    return (bye.time - ok.time).total_seconds()


def asterisk_log_since(lab: Lab, offset: int) -> str:
    path = lab.root / "var/log/asterisk/messages.log"
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def asterisk_log_size(lab: Lab) -> int:
    path = lab.root / "var/log/asterisk/messages.log"
    return path.stat().st_size if path.exists() else 0


@pytest.mark.parametrize("code", ["*45", "*46", "*47"])
async def test_agent_phone_dials_a_feature_code_with_digest_auth(
    recorder: Recorder, lab: Lab, tmp_path: Path, code: str
) -> None:
    result = await asyncio.to_thread(
        sipp.feature_code_call,
        code,
        workdir=tmp_path,
        user="agent9",
        password=agent9_password(lab),
    )
    assert result.ok, result.describe()
    # Challenged first, then answered on the authenticated INVITE.
    assert result.invite_statuses() == [401, 200], result.describe()
    assert recorder.calls == [("agent9", code)]
    # The PBX hung up after the confirmation (1.2-1.4 s of speech), not before it.
    assert 1.0 <= answered_to_bye_s(result) < 8.0, result.describe()


@pytest.mark.parametrize(
    ("user", "password", "statuses"),
    [
        pytest.param("agent9", None, [401], id="agent9-without-credentials"),
        pytest.param("agent9", "not-the-password", [401, 401], id="agent9-wrong-password"),
        pytest.param("intruder", "guess", [401, 401], id="unknown-user"),
    ],
)
async def test_unauthenticated_invite_is_rejected_by_asterisk(
    recorder: Recorder, tmp_path: Path, user: str, password: str | None, statuses: list[int]
) -> None:
    result = await asyncio.to_thread(
        sipp.feature_code_call, "*45", workdir=tmp_path, user=user, password=password
    )
    assert not result.ok, result.describe()
    assert result.invite_statuses() == statuses, result.describe()
    assert recorder.calls == []


async def test_the_carrier_cannot_reach_the_feature_codes(
    recorder: Recorder, tmp_path: Path
) -> None:
    # 127.0.0.2 identifies the carrier endpoint (context from-carrier). Its only
    # pattern is _X. (digits, to Stasis), so "*45" is no extension there: 404.
    result = await asyncio.to_thread(
        sipp.feature_code_call,
        "*45",
        workdir=tmp_path,
        user="4790000001",
        password=None,
        local_ip=sipp.CARRIER_IP,
    )
    assert not result.ok, result.describe()
    assert result.invite_statuses() == [404], result.describe()
    assert recorder.calls == []


async def test_an_endpoint_without_auth_hears_the_refusal(
    recorder: Recorder, lab: Lab, tmp_path: Path
) -> None:
    # agent1 (a lab phone with a static contact) is identified by its From user only,
    # which anybody can claim: the dialplan refuses feature codes from it with the
    # announcement and a log line, and never asks the application.
    log_offset = asterisk_log_size(lab)
    result = await asyncio.to_thread(
        sipp.feature_code_call, "*45", workdir=tmp_path, user="agent1", password=None
    )
    assert result.invite_statuses() == [200], result.describe()
    assert result.ok, result.describe()  # answered, and the PBX hung up
    assert answered_to_bye_s(result) >= 3.0  # not-allowed is 3.5 s of speech
    assert recorder.calls == []
    log = asterisk_log_since(lab, log_offset)
    assert "feature *45 refused: endpoint agent1 does not authenticate" in log


async def test_an_agent_phone_calls_nothing_else(
    recorder: Recorder, lab: Lab, tmp_path: Path
) -> None:
    # No toll fraud: an authenticated agent dialling a number, or an unused code, is
    # refused (Hangup(21): 403) and the FastAGI server is not involved.
    for dialled in ("4721000001", "*48", "0047912345678"):
        result = await asyncio.to_thread(
            sipp.feature_code_call,
            dialled,
            workdir=tmp_path,
            user="agent9",
            password=agent9_password(lab),
            name=f"agent_dial_{dialled}",
        )
        assert result.invite_statuses() == [401, 403], result.describe()
    assert recorder.calls == []

"""The FastAGI server over real loopback sockets: what Asterisk sends, and what it must
survive (clients that close, stall half-way, or send too much)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import pytest
from structlog.testing import capture_logs

from televikar_pbx.agi.server import (
    MAX_HEADER_LINES,
    MAX_LINE_BYTES,
    AgiProtocolError,
    FeatureServer,
    parse_reply,
)

pytestmark = pytest.mark.filterwarnings("error")

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def header_block(
    script: str = "feature", args: Sequence[str] = ("*45", "agent9"), uniqueid: str = "17.1"
) -> bytes:
    """What Asterisk 22 sends for AGI(agi://127.0.0.1:4573/SCRIPT,ARGS...) (as captured
    in the lab), ended by the empty line."""
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1:4573/{script}",
        "agi_channel: PJSIP/agent9-00000140",
        "agi_language: en",
        "agi_type: PJSIP",
        f"agi_uniqueid: {uniqueid}",
        "agi_version: 22.10.1",
        "agi_callerid: agent9",
        "agi_calleridname: unknown",
        "agi_context: from-agents",
        "agi_extension: *45",
        "agi_priority: 4",
        "agi_accountcode: ",
        *(f"agi_arg_{n}: {arg}" for n, arg in enumerate(args, 1)),
    ]
    return ("\n".join(lines) + "\n\n").encode()


class Recorder:
    """The application's side: records each decision and answers ``prompt``."""

    def __init__(self, prompt: str = "logged-in") -> None:
        self.prompt = prompt
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, endpoint: str, code: str, /) -> str:
        self.calls.append((endpoint, code))
        return self.prompt


async def connect(server: FeatureServer) -> Streams:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    # The server may have closed first, and our unread or last bytes met a reset.
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def read_eof(reader: asyncio.StreamReader, within_s: float = 2.0) -> bytes:
    """Everything until the server closes the connection (a reset counts as closed)."""
    async with asyncio.timeout(within_s):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""


async def play_asterisk(
    server: FeatureServer, block: bytes, reply: bytes = b"200 result=0 endpos=10771\n"
) -> tuple[bytes, bytes]:
    """One AGI conversation as Asterisk has it: headers, the command the server sends,
    our reply, then the server's close. Returns (command line, anything after it)."""
    reader, writer = await connect(server)
    try:
        writer.write(block)
        await writer.drain()
        async with asyncio.timeout(2.0):
            try:
                command = await reader.readline()
            except ConnectionResetError:  # turned away with our headers unread
                return b"", b""
        if command:
            writer.write(reply)
            await writer.drain()
        rest = await read_eof(reader)
    finally:
        await close(writer)
    return command, rest


async def test_a_feature_code_asks_the_application_and_plays_its_prompt() -> None:
    recorder = Recorder("paused")
    async with FeatureServer(recorder, port=0) as agi:
        with capture_logs() as logs:
            command, rest = await play_asterisk(agi, header_block(args=("*47", "agent9")))
    assert recorder.calls == [("agent9", "*47")]
    assert command == b'STREAM FILE televikar/paused ""\n'
    assert rest == b""  # closed after the reply: the dialplan hangs up
    feature = next(e for e in logs if e["event"] == "agi.feature")
    assert feature["endpoint"] == "agent9"
    assert feature["code"] == "*47"
    assert feature["prompt"] == "paused"


async def test_trying_lines_are_skipped_and_crlf_is_accepted() -> None:
    recorder = Recorder()
    async with FeatureServer(recorder, port=0) as agi:
        block = header_block().replace(b"\n", b"\r\n")
        with capture_logs() as logs:
            command, _ = await play_asterisk(
                agi, block, reply=b"100 result=0 Trying...\r\n200 result=0 endpos=8000\r\n"
            )
    assert command == b'STREAM FILE televikar/logged-in ""\n'
    assert recorder.calls == [("agent9", "*45")]
    assert any(e["event"] == "agi.feature.played" for e in logs)


async def test_the_phone_hanging_up_during_the_prompt_is_logged() -> None:
    async with FeatureServer(Recorder(), port=0) as agi:
        with capture_logs() as logs:
            await play_asterisk(agi, header_block(), reply=b"HANGUP\n")
    assert [e["reply"] for e in logs if e["event"] == "agi.feature.not_played"] == ["HANGUP"]


async def test_a_client_that_connects_and_closes_does_not_stop_the_server() -> None:
    recorder = Recorder()
    async with FeatureServer(recorder, port=0) as agi:
        with capture_logs() as logs:
            for _ in range(3):
                _, writer = await connect(agi)
                await close(writer)
            command, _ = await play_asterisk(agi, header_block())
    assert command.startswith(b"STREAM FILE televikar/logged-in")
    assert recorder.calls == [("agent9", "*45")]
    dropped = [e for e in logs if e["event"] == "agi.bad_request"]
    assert len(dropped) == 3
    assert dropped[0]["reason"] == "connection closed before any header"


async def test_a_stalled_half_request_neither_blocks_others_nor_stays_forever() -> None:
    recorder = Recorder()
    async with FeatureServer(recorder, port=0, header_timeout_s=1.5) as agi:
        with capture_logs() as logs:
            stalled_reader, stalled_writer = await connect(agi)
            try:
                stalled_writer.write(header_block()[:100])  # half a header block, no end
                await stalled_writer.drain()
                await asyncio.sleep(0.1)

                started = time.monotonic()
                command, _ = await play_asterisk(agi, header_block(args=("*46", "agent9")))
                assert time.monotonic() - started < 0.5
                assert command == b'STREAM FILE televikar/logged-in ""\n'
                assert recorder.calls == [("agent9", "*46")]
                # The stalled client is still connected meanwhile ...
                assert not stalled_reader.at_eof()

                # ... and dropped at its deadline, without a command.
                assert await read_eof(stalled_reader, within_s=3.0) == b""
                assert time.monotonic() - started > 1.0
            finally:
                await close(stalled_writer)
    assert [e["timeout_s"] for e in logs if e["event"] == "agi.header_timeout"] == [1.5]
    assert recorder.calls == [("agent9", "*46")]


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        pytest.param(
            b"agi_network: yes\nagi_x: " + b"a" * MAX_LINE_BYTES + b"\n\n",
            "header line longer",
            id="line-too-long",
        ),
        pytest.param(
            b"".join(f"agi_h{n}: x\n".encode() for n in range(MAX_HEADER_LINES + 5)) + b"\n",
            "more than",
            id="too-many-lines",
        ),
        pytest.param(
            b"".join(f"agi_h{n}: {'x' * 1000}\n".encode() for n in range(20)) + b"\n",
            "header block larger",
            id="block-too-large",
        ),
        pytest.param(b"GET / HTTP/1.1\nHost: x\n\n", "not an agi_ header", id="not-agi"),
        pytest.param(b"\n", "empty header block", id="empty"),
    ],
)
async def test_malformed_or_oversized_requests_are_dropped(block: bytes, reason: str) -> None:
    recorder = Recorder()
    async with FeatureServer(recorder, port=0) as agi:
        with capture_logs() as logs:
            reader, writer = await connect(agi)
            try:
                writer.write(block)
                await writer.drain()
                received = await read_eof(reader)
            except ConnectionError:
                received = b""  # closed while we were still sending
            finally:
                await close(writer)
            # Still serving.
            command, _ = await play_asterisk(agi, header_block())
    assert received == b""
    assert command.startswith(b"STREAM FILE")
    bad = [e for e in logs if e["event"] == "agi.bad_request"]
    assert len(bad) == 1
    assert reason in bad[0]["reason"]
    assert recorder.calls == [("agent9", "*45")]  # only the good request


async def test_an_unknown_route_is_closed_without_a_command() -> None:
    recorder = Recorder()
    async with FeatureServer(recorder, port=0) as agi:
        with capture_logs() as logs:
            command, _ = await play_asterisk(agi, header_block(script="voicemail"))
    assert command == b""
    assert recorder.calls == []
    assert [e["route"] for e in logs if e["event"] == "agi.unknown_route"] == ["voicemail"]


@pytest.mark.parametrize(
    "args",
    [("*45",), ("*45", ""), ("*45", "agent9", "extra"), ("45; rm", "agent9"), ("*45", "a b")],
)
async def test_bad_feature_arguments_are_refused(args: tuple[str, ...]) -> None:
    recorder = Recorder()
    async with FeatureServer(recorder, port=0) as agi:
        with capture_logs() as logs:
            command, _ = await play_asterisk(agi, header_block(args=args))
    assert command == b""
    assert recorder.calls == []
    assert any(e["event"] == "agi.feature.bad_args" for e in logs)


async def test_a_prompt_outside_the_known_set_is_not_played() -> None:
    recorder = Recorder('logged-in" ""\nEXEC System')
    async with FeatureServer(recorder, port=0) as agi:
        with capture_logs() as logs:
            command, _ = await play_asterisk(agi, header_block())
    assert command == b""
    assert recorder.calls == [("agent9", "*45")]
    assert any(e["event"] == "agi.feature.unknown_prompt" for e in logs)


async def test_a_failing_or_slow_application_ends_only_that_request() -> None:
    async def broken(endpoint: str, code: str, /) -> str:
        raise RuntimeError("database down")

    async def slow(endpoint: str, code: str, /) -> str:
        await asyncio.sleep(10)
        return "logged-in"

    with capture_logs() as logs:
        async with FeatureServer(broken, port=0) as agi:
            command, _ = await play_asterisk(agi, header_block())
            assert command == b""
        async with FeatureServer(slow, port=0, decision_timeout_s=0.2) as agi:
            command, _ = await play_asterisk(agi, header_block())
            assert command == b""
    events = [e["event"] for e in logs]
    assert "agi.feature.decision_failed" in events
    assert "agi.feature.decision_timeout" in events


async def test_a_missing_reply_times_out() -> None:
    async with FeatureServer(Recorder(), port=0, reply_timeout_s=0.3) as agi:
        with capture_logs() as logs:
            reader, writer = await connect(agi)
            try:
                writer.write(header_block())
                await writer.drain()
                assert (await reader.readline()).startswith(b"STREAM FILE")
                assert await read_eof(reader) == b""  # no reply from us: closed
            finally:
                await close(writer)
    assert any(e["event"] == "agi.reply_timeout" for e in logs)


async def test_close_ends_open_connections() -> None:
    agi = FeatureServer(Recorder(), port=0)
    await agi.start()
    reader, writer = await connect(agi)
    try:
        writer.write(b"agi_network: yes\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await agi.close()
        assert await read_eof(reader) == b""
        assert time.monotonic() - started < 2.0
    finally:
        await close(writer)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", agi.port)


async def test_too_many_connections_are_turned_away() -> None:
    recorder = Recorder()
    async with FeatureServer(recorder, port=0, max_connections=2) as agi:
        held = [await connect(agi) for _ in range(2)]
        try:
            await asyncio.sleep(0.05)
            with capture_logs() as logs:
                command, _ = await play_asterisk(agi, header_block())
            assert command == b""
            assert any(e["event"] == "agi.too_many_connections" for e in logs)
        finally:
            for _, writer in held:
                await close(writer)
        await asyncio.sleep(0.05)
        command, _ = await play_asterisk(agi, header_block())
    assert command.startswith(b"STREAM FILE")


def test_replies_are_parsed_with_panoramisk() -> None:
    ok = parse_reply("200 result=0 endpos=10771")
    assert (ok.status, ok.result, ok.error, ok.ok) == (200, "0", None, True)
    failed = parse_reply("200 result=-1 endpos=0")
    assert failed.error == "AGIAppError"
    assert not failed.ok
    assert parse_reply("HANGUP").error == "AGIResultHangup"
    assert parse_reply("510 Invalid or unknown command").error == "AGIInvalidCommand"
    with pytest.raises(AgiProtocolError):
        parse_reply("garbage")

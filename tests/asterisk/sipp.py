"""sipp helpers for the Asterisk lab tests.

Agent phones: ``agent_phone(n, workdir=...)`` runs ``scenarios/agent_answer.xml`` as a
UAS on 127.0.0.1:507n, the static contact of PJSIP endpoint ``agentN`` in the lab
(asterisk/conf/pjsip.conf). It answers every call it gets, in the background, until
the context manager exits.

The carrier: ``carrier_call("4721000001", workdir=...)`` runs
``scenarios/carrier_call.xml`` from 127.0.0.2 (the address that identifies the
``carrier`` endpoint) against Asterisk on 127.0.0.1:5060 and waits for it.

A caller who talks: ``carrier_message_call("4721000001", workdir=..., wait_ms=11000,
talk_ms=5000)`` runs ``scenarios/carrier_message.xml``: like the carrier call, but it
sends ``talk_ms`` of real speech as RTP after ``wait_ms`` and then hangs up, or with
``dtmf_pound=True`` presses # (RFC 4733) and waits for the PBX to hang up. The RTP
comes from pcap files written per run (``write_message_media``) from the Norwegian
speech in ``scenarios/caller_speech.wav``.

An agent phone dialling a feature code: ``feature_code_call("*45", workdir=...,
user="agent9", password=...)`` runs ``scenarios/agent_feature_code.xml`` from
127.0.0.1: INVITE, digest auth on the 401 (or none with ``password=None``), 200 OK,
then it waits for the PBX's BYE after the confirmation prompt.

All of them write sipp's message log (``-trace_msg``); ``parse_message_log`` turns it into
``SipMessage`` objects, e.g. to count the INVITEs an agent phone received and read
the caller's display name from their From header.

sipp never outlives its owner: every process runs in its own process group, is
stopped by the context manager (or on timeout), and whatever is still running at
interpreter exit is killed by pid.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from lab import procs

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
AGENT_SCENARIO = SCENARIO_DIR / "agent_answer.xml"
REGISTER_SCENARIO = SCENARIO_DIR / "agent_register.xml"
CARRIER_SCENARIO = SCENARIO_DIR / "carrier_call.xml"
CARRIER_MESSAGE_SCENARIO = SCENARIO_DIR / "carrier_message.xml"
FEATURE_CODE_SCENARIO = SCENARIO_DIR / "agent_feature_code.xml"
SUBSCRIBE_FRONT_SCENARIO = SCENARIO_DIR / "agent_subscribe_front.xml"
OPTIONS_SCENARIO = SCENARIO_DIR / "agent_options.xml"
# What the talking caller says (espeak-ng -v nb, A-law 8 kHz mono WAV, ~7.5 s; looped).
CALLER_SPEECH = SCENARIO_DIR / "caller_speech.wav"
# The pcaps carrier_message.xml plays: sipp looks for them next to the scenario, then
# in its working directory.
TALK_PCAP_NAME = "carrier_message_talk.pcap"
POUND_PCAP_NAME = "carrier_message_pound.pcap"

ASTERISK_HOST = "127.0.0.1"
ASTERISK_SIP_PORT = 5060
CARRIER_IP = "127.0.0.2"
AGENT_IP = "127.0.0.1"
AGENT_BASE_PORT = 5070  # agentN listens on AGENT_BASE_PORT + N
AGENT_COUNT = 5

# sipp's exit statuses (sipp(1)).
EXIT_ALL_SUCCESSFUL = 0
EXIT_SOME_FAILED = 1
EXIT_NO_CALLS = 99

Direction = Literal["sent", "received"]


class SippError(RuntimeError):
    """sipp is missing, could not start, or was misused."""


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise SippError(
            "sipp not found: Debian package sip-tester (asterisk/lab.sh provision installs it)"
        )
    return path


def agent_port(agent: int) -> int:
    """SIP port of agent phone N (1..5 static contacts in the lab's pjsip.conf; 9 is the
    authenticating agent9, whose contact is wherever it registers from)."""
    if not (1 <= agent <= AGENT_COUNT or agent == 9):
        raise ValueError(f"the lab has agents 1..{AGENT_COUNT} and 9, not {agent}")
    return AGENT_BASE_PORT + agent


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------


def _start(
    args: Sequence[str], stderr_path: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    # Its own process group, stopped by pid (and at interpreter exit); sipp's screen
    # (stdout) is dropped: results come from the trace files.
    stderr_path.write_bytes(b"")
    return procs.start(args, stderr_path, cwd=cwd, keep_stdout=False)


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 3.0) -> int:
    """SIGTERM the process group of ``proc``, SIGKILL after ``grace_s``; its exit status."""
    return procs.stop(proc, grace_s)


def _udp_port_in_use(ip: str, port: int) -> bool:
    return not procs.udp_port_free(ip, port)


_free_udp_port = procs.free_udp_port


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------------------
# Message log
# ---------------------------------------------------------------------------

_COMPACT_HEADERS = {
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "v": "via",
    "l": "content-length",
    "c": "content-type",
}

_LOG_SEPARATOR = re.compile(
    r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n"
    r"(?:UDP|TCP|TLS|SCTP) message (sent|received)[^\n]*\n\n",
    re.MULTILINE,
)

_NAME_ADDR = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<')


@dataclass(frozen=True)
class SipMessage:
    """One SIP message from a sipp message log, as sipp sent or received it."""

    time: datetime  # local time, as sipp logs it
    direction: Direction
    text: str  # the message, lines joined with "\n"

    @property
    def start_line(self) -> str:
        return self.text.split("\n", 1)[0]

    @property
    def is_request(self) -> bool:
        return not self.start_line.startswith("SIP/2.0 ")

    @property
    def method(self) -> str | None:
        """Request method, or None for a response (see ``cseq_method``)."""
        return self.start_line.split(" ", 1)[0] if self.is_request else None

    @property
    def status(self) -> int | None:
        """Response status code, or None for a request."""
        if self.is_request:
            return None
        return int(self.start_line.split(" ", 2)[1])

    def headers(self, name: str) -> list[str]:
        """Values of every header ``name`` (case-insensitive, compact forms too)."""
        wanted = name.lower()
        values = []
        for line in self.text.split("\n")[1:]:
            if not line:
                break  # end of headers
            key, sep, value = line.partition(":")
            if not sep:
                continue
            key = key.strip().lower()
            if _COMPACT_HEADERS.get(key, key) == wanted:
                values.append(value.strip())
        return values

    def header(self, name: str) -> str | None:
        values = self.headers(name)
        return values[0] if values else None

    @property
    def call_id(self) -> str | None:
        return self.header("Call-ID")

    @property
    def cseq_method(self) -> str | None:
        cseq = self.header("CSeq")
        return cseq.split()[-1] if cseq else None

    @property
    def from_display_name(self) -> str | None:
        value = self.header("From")
        return display_name(value) if value is not None else None

    @property
    def from_user(self) -> str | None:
        value = self.header("From")
        return uri_user(value) if value is not None else None

    @property
    def body(self) -> str:
        _, _, body = self.text.partition("\n\n")
        return body


def display_name(name_addr: str) -> str | None:
    """Display name of a From/To value: '"Kunde A" <sip:...>;tag=x' -> 'Kunde A'.

    None when there is none (plain addr-spec or nothing before '<'); a quoted empty
    name gives "".
    """
    match = _NAME_ADDR.match(name_addr)
    if match is None:
        return None
    quoted, token = match.groups()
    if quoted is not None:
        return re.sub(r"\\(.)", r"\1", quoted)
    return token.strip() or None


def uri_user(name_addr: str) -> str | None:
    """User part of the SIP URI in a From/To/Contact value ('4790000001')."""
    match = re.search(r"sips?:([^@;>\s]+)@", name_addr)
    return match.group(1) if match else None


def parse_message_log(path: Path) -> list[SipMessage]:
    """All messages of a sipp ``-trace_msg`` log, in order. A missing log is empty."""
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    raw = raw.replace("\r\n", "\n")
    matches = list(_LOG_SEPARATOR.finditer(raw))
    messages = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(raw)
        text = raw[match.end() : end].rstrip("\n")
        stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f")
        direction: Direction = "sent" if match.group(2) == "sent" else "received"
        messages.append(SipMessage(time=stamp, direction=direction, text=text))
    return messages


def initial_invites(
    messages: Sequence[SipMessage], direction: Direction = "received"
) -> list[SipMessage]:
    """New-call INVITEs (no To tag), one per Call-ID: retransmissions and
    re-INVITEs are left out."""
    seen: set[str | None] = set()
    invites = []
    for msg in messages:
        if msg.direction != direction or msg.method != "INVITE":
            continue
        to = msg.header("To") or ""
        if ";tag=" in to or msg.call_id in seen:
            continue
        seen.add(msg.call_id)
        invites.append(msg)
    return invites


def count_requests(
    messages: Sequence[SipMessage], method: str, direction: Direction = "received"
) -> int:
    """Requests of ``method``, counted once per (Call-ID, CSeq): retransmissions
    count once."""
    keys = {
        (m.call_id, m.header("CSeq"))
        for m in messages
        if m.direction == direction and m.method == method
    }
    return len(keys)


def final_status_by_call(messages: Sequence[SipMessage], method: str = "INVITE") -> dict[str, int]:
    """The first final (>= 200) response received for ``method``, per Call-ID."""
    statuses: dict[str, int] = {}
    for m in messages:
        if m.direction == "received" and m.cseq_method == method and (m.status or 0) >= 200:
            statuses.setdefault(m.call_id or "", m.status or 0)
    return statuses


def final_statuses(messages: Sequence[SipMessage], method: str = "INVITE") -> list[int]:
    """Final (>= 200) response codes received for ``method``, once per Call-ID+CSeq."""
    seen: set[tuple[str | None, str | None]] = set()
    statuses = []
    for msg in messages:
        status = msg.status
        if msg.direction != "received" or status is None or status < 200:
            continue
        if msg.cseq_method != method:
            continue
        key = (msg.call_id, msg.header("CSeq"))
        if key in seen:
            continue
        seen.add(key)
        statuses.append(status)
    return statuses


# ---------------------------------------------------------------------------
# Statistics (-trace_stat)
# ---------------------------------------------------------------------------


def read_stat_totals(path: Path) -> dict[str, str]:
    """Last row of a sipp ``-trace_stat`` CSV (';'-separated) as {column: value}."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    lines = [line for line in text.splitlines() if line]
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))


def _stat_int(totals: dict[str, str], column: str) -> int:
    try:
        return int(totals.get(column, "0") or 0)
    except ValueError:
        return 0


# ---------------------------------------------------------------------------
# RTP media for the talking caller (pcap files for play_pcap_audio)
# ---------------------------------------------------------------------------

PTIME_MS = 20
SAMPLES_PER_MS = 8  # G.711 and telephone-event: 8 kHz clock
PCMA_PAYLOAD_TYPE = 8
DTMF_PAYLOAD_TYPE = 101  # telephone-event, as in the scenarios' SDP
DTMF_EVENTS = "0123456789*#ABCD"  # RFC 4733 event codes 0..15
_PCAP_MEDIA_PORT = 10000  # sipp replaces both ports; only their difference counts
_RTP_SSRC = 0x7E1E0001


def read_alaw_wav(path: Path) -> bytes:
    """The samples of an A-law, 8 kHz, mono WAV file (format 6), e.g. from
    ``sox IN -t wav -r 8000 -c 1 -e a-law OUT``."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file")
    fmt: tuple[int, ...] | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            fmt = struct.unpack_from("<HHIIHH", body)
        elif chunk_id == b"data":
            if fmt is None or fmt[0] != 6 or fmt[1] != 1 or fmt[2] != 8000:
                raise ValueError(f"{path}: want A-law 8000 Hz mono, fmt chunk is {fmt}")
            if not body:
                raise ValueError(f"{path}: no samples")
            return body
        offset += 8 + size + (size & 1)
    raise ValueError(f"{path}: no data chunk")


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet of a pcap, sent ``at_ms`` after the first."""

    at_ms: float
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    payload: bytes
    ssrc: int = _RTP_SSRC

    def encode(self) -> bytes:
        return (
            struct.pack(
                ">BBHII",
                0x80,  # version 2, no padding, extension or CSRC
                (0x80 if self.marker else 0) | self.payload_type,
                self.seq & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                self.ssrc,
            )
            + self.payload
        )


def _ipv4_checksum(header: bytes) -> int:
    words: tuple[int, ...] = struct.unpack(f">{len(header) // 2}H", header)
    total = sum(words)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_rtp_pcap(path: Path, packets: Sequence[RtpPacket]) -> None:
    """A classic pcap (Ethernet, IPv4/UDP) of ``packets`` for sipp's play_pcap_audio.

    sipp sends each packet's RTP unchanged, from the call's media address and port to
    the peer's (from its SDP), timed by the capture timestamps.
    """
    if not packets:
        raise ValueError("a pcap for sipp needs at least one packet")
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for number, packet in enumerate(packets):
        rtp = packet.encode()
        udp = struct.pack(">HHHH", _PCAP_MEDIA_PORT, _PCAP_MEDIA_PORT, 8 + len(rtp), 0) + rtp
        ip = bytearray(
            struct.pack(
                ">BBHHHBBH4s4s",
                0x45, 0, 20 + len(udp), number & 0xFFFF, 0, 64, 17, 0,
                socket.inet_aton(CARRIER_IP), socket.inet_aton(ASTERISK_HOST),
            )
        )  # fmt: skip
        struct.pack_into(">H", ip, 10, _ipv4_checksum(bytes(ip)))
        frame = bytes(12) + b"\x08\x00" + bytes(ip) + udp  # Ethernet: no MACs, IPv4
        at_us = round(packet.at_ms * 1000)
        out += struct.pack("<IIII", at_us // 1_000_000, at_us % 1_000_000, len(frame), len(frame))
        out += frame
    path.write_bytes(bytes(out))


def talk_packets(
    talk_ms: int, audio: bytes, *, seq: int = 1000, timestamp: int = 0
) -> list[RtpPacket]:
    """``talk_ms`` (rounded up to 20 ms) of PCMA: ``audio`` (A-law samples), looped."""
    if not audio:
        raise ValueError("no audio")
    per_packet = PTIME_MS * SAMPLES_PER_MS
    count = max(1, -(-talk_ms // PTIME_MS))
    packets = []
    position = 0
    for n in range(count):
        chunk = bytearray()
        while len(chunk) < per_packet:
            piece = audio[position : position + per_packet - len(chunk)]
            chunk += piece
            position = (position + len(piece)) % len(audio)
        packets.append(
            RtpPacket(
                at_ms=n * PTIME_MS,
                payload_type=PCMA_PAYLOAD_TYPE,
                marker=n == 0,  # start of a talkspurt
                seq=seq + n,
                timestamp=timestamp + n * per_packet,
                payload=bytes(chunk),
            )
        )
    return packets


def dtmf_packets(
    digit: str, *, seq: int = 1000, timestamp: int = 0, tone_ms: int = 160
) -> list[RtpPacket]:
    """One RFC 4733 key press: an event packet every 20 ms for ``tone_ms`` (all with
    the event's start ``timestamp``, growing duration, marker on the first), then the
    end packet three times."""
    event = DTMF_EVENTS.index(digit.upper())
    volume = 10  # -10 dBm0
    steps = max(1, tone_ms // PTIME_MS)
    packets = []
    for n in range(steps + 3):
        end = n >= steps
        duration = min(n + 1, steps) * PTIME_MS * SAMPLES_PER_MS
        packets.append(
            RtpPacket(
                # The end packet three times, 5 ms apart, when the tone is over.
                at_ms=n * PTIME_MS if not end else steps * PTIME_MS + (n - steps) * 5,
                payload_type=DTMF_PAYLOAD_TYPE,
                marker=n == 0,
                seq=seq + n,
                timestamp=timestamp,
                payload=struct.pack(">BBH", event, (0x80 if end else 0) | volume, duration),
            )
        )
    return packets


def write_message_media(
    directory: Path, talk_ms: int, audio: bytes | None = None
) -> tuple[Path, Path]:
    """Write the two pcaps carrier_message.xml plays into ``directory``: ``talk_ms``
    of speech (default: ``CALLER_SPEECH``) and a '#' that continues the same RTP
    stream. Returns (talk pcap, pound pcap)."""
    if audio is None:
        audio = read_alaw_wav(CALLER_SPEECH)
    directory.mkdir(parents=True, exist_ok=True)
    talk = talk_packets(talk_ms, audio)
    last = talk[-1]
    pound = dtmf_packets(
        "#", seq=last.seq + 1, timestamp=last.timestamp + PTIME_MS * SAMPLES_PER_MS
    )
    talk_path = directory / TALK_PCAP_NAME
    pound_path = directory / POUND_PCAP_NAME
    write_rtp_pcap(talk_path, talk)
    write_rtp_pcap(pound_path, pound)
    return talk_path, pound_path


# ---------------------------------------------------------------------------
# Agent phone (UAS)
# ---------------------------------------------------------------------------


@dataclass
class AgentPhone:
    """A running agent phone; see ``agent_phone``."""

    agent: int
    port: int
    message_log: Path
    error_log: Path
    stderr_log: Path
    stat_file: Path | None
    process: subprocess.Popen[bytes]

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def messages(self) -> list[SipMessage]:
        return parse_message_log(self.message_log)

    def invites(self) -> list[SipMessage]:
        """Calls offered to this phone so far (one INVITE per call)."""
        return initial_invites(self.messages())

    def wait_for_invites(self, count: int, timeout_s: float = 10.0) -> list[SipMessage]:
        """Wait until at least ``count`` calls were offered; the INVITEs (may be fewer
        on timeout, the caller asserts)."""
        deadline = time.monotonic() + timeout_s
        while True:
            invites = self.invites()
            if len(invites) >= count or time.monotonic() >= deadline:
                return invites
            time.sleep(0.05)

    def stop(self) -> int:
        """Stop the phone (idempotent); sipp's exit status."""
        return _stop(self.process)


def start_agent_phone(
    agent: int,
    *,
    workdir: Path,
    answer_ms: int = 2000,
    trace_stat: bool = False,
    extra_args: Sequence[str] = (),
    start_timeout_s: float = 5.0,
    address: tuple[str, int] | None = None,
) -> AgentPhone:
    """Start agent phone N in the background; prefer the ``agent_phone`` context
    manager, which always stops it. ``address``: where it listens, if not where the
    lab's static contact for agent N points (the cluster lab's phones register)."""
    ip, port = address or (AGENT_IP, agent_port(agent))
    if _udp_port_in_use(ip, port):
        raise SippError(f"{ip}:{port}/udp (agent{agent}) is already in use")
    workdir.mkdir(parents=True, exist_ok=True)
    name = f"agent{agent}"
    message_log = workdir / f"{name}_messages.log"
    error_log = workdir / f"{name}_errors.log"
    stderr_log = workdir / f"{name}_stderr.log"
    stat_file = workdir / f"{name}_stat.csv" if trace_stat else None
    args = [
        sipp_binary(),
        "-sf", str(AGENT_SCENARIO),
        "-i", ip,
        "-p", str(port),
        "-nostdin",
        "-set", "answer_ms", str(answer_ms),
        "-trace_msg", "-message_file", str(message_log),
        "-trace_err", "-error_file", str(error_log),
    ]  # fmt: skip
    if stat_file is not None:
        args += ["-trace_stat", "-stf", str(stat_file), "-fd", "1"]
    args += list(extra_args)
    proc = _start(args, stderr_log)
    phone = AgentPhone(agent, port, message_log, error_log, stderr_log, stat_file, proc)
    # Ready once sipp holds its SIP port.
    deadline = time.monotonic() + start_timeout_s
    while not _udp_port_in_use(ip, port):
        if proc.poll() is not None or time.monotonic() >= deadline:
            status = phone.stop()
            raise SippError(
                f"agent{agent} phone did not start (exit {status}): {_tail(stderr_log)}"
            )
        time.sleep(0.02)
    return phone


@contextlib.contextmanager
def agent_phone(
    agent: int,
    *,
    workdir: Path,
    answer_ms: int = 2000,
    trace_stat: bool = False,
    extra_args: Sequence[str] = (),
    address: tuple[str, int] | None = None,
) -> Iterator[AgentPhone]:
    """Agent phone N (1..5) answering every call after ``answer_ms`` until exit."""
    phone = start_agent_phone(
        agent,
        workdir=workdir,
        answer_ms=answer_ms,
        trace_stat=trace_stat,
        extra_args=extra_args,
        address=address,
    )
    try:
        yield phone
    finally:
        phone.stop()


# ---------------------------------------------------------------------------
# Carrier call (UAC)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CarrierResult:
    """Outcome of a ``carrier_call`` run."""

    command: list[str]
    returncode: int  # sipp's exit status (negative: killed by that signal)
    timed_out: bool  # killed by us after timeout_s
    calls: int  # calls asked for
    successful: int
    failed: int
    duration_s: float
    message_log: Path
    error_log: Path
    stat_file: Path
    stderr_log: Path

    @property
    def ok(self) -> bool:
        """Every call completed successfully (answered and hung up)."""
        return (
            not self.timed_out
            and self.returncode == EXIT_ALL_SUCCESSFUL
            and self.successful == self.calls
            and self.failed == 0
        )

    def messages(self) -> list[SipMessage]:
        return parse_message_log(self.message_log)

    def invite_statuses(self) -> list[int]:
        """Final responses to our INVITEs (200, or 486/480/603/...)."""
        return final_statuses(self.messages(), "INVITE")

    def describe(self) -> str:
        """One line for assertion messages."""
        state = "timed out" if self.timed_out else f"exit {self.returncode}"
        return (
            f"sipp carrier: {state}, {self.successful} successful / {self.failed} failed "
            f"of {self.calls}, INVITE final responses {self.invite_statuses()}, "
            f"log {self.message_log}"
        )


def _quote_display_name(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def carrier_call(
    dialled: str,
    *,
    workdir: Path,
    caller_number: str = "4790000001",
    caller_name: str = "",
    talk_ms: int = 3000,
    diversion: str | None = None,
    calls: int = 1,
    rate: float | None = None,
    max_concurrent: int | None = None,
    answer_timeout_s: float = 30.0,
    timeout_s: float | None = None,
    target: tuple[str, int] = (ASTERISK_HOST, ASTERISK_SIP_PORT),
    name: str = "carrier",
    extra_args: Sequence[str] = (),
    local_ip: str = CARRIER_IP,
) -> CarrierResult:
    """Place ``calls`` calls from the carrier to ``dialled`` and wait for them.

    ``diversion`` is the value of a Diversion header, e.g.
    ``'<sip:4721000099@127.0.0.2>;reason=unconditional'``. ``rate`` is calls per
    second (sipp's default is 10).

    A call without a final answer after ``answer_timeout_s`` is CANCELled by sipp and
    counts as failed. ``timeout_s`` (default: enough for all calls) is the backstop:
    then sipp is killed and the result says ``timed_out``; calls still ringing in
    Asterisk at that moment are left there (sipp sends no CANCEL when killed).
    """
    if timeout_s is None:
        spread_s = calls / (rate or 10.0)
        timeout_s = spread_s + answer_timeout_s + talk_ms / 1000 + 15.0
    return _run_carrier(
        CARRIER_SCENARIO,
        dialled,
        workdir=workdir,
        name=name,
        variables={"talk_ms": str(talk_ms)},
        caller_number=caller_number,
        caller_name=caller_name,
        diversion=diversion,
        calls=calls,
        rate=rate,
        max_concurrent=max_concurrent,
        answer_timeout_s=answer_timeout_s,
        timeout_s=timeout_s,
        target=target,
        extra_args=extra_args,
        local_ip=local_ip,
    )


def carrier_message_call(
    dialled: str,
    *,
    workdir: Path,
    wait_ms: int = 0,
    talk_ms: int = 5000,
    dtmf_pound: bool = False,
    caller_number: str = "4790000001",
    caller_name: str = "",
    diversion: str | None = None,
    audio: bytes | None = None,
    calls: int = 1,
    rate: float | None = None,
    max_concurrent: int | None = None,
    answer_timeout_s: float = 30.0,
    timeout_s: float | None = None,
    target: tuple[str, int] = (ASTERISK_HOST, ASTERISK_SIP_PORT),
    name: str = "carrier_message",
    extra_args: Sequence[str] = (),
) -> CarrierResult:
    """A carrier call whose caller talks: ``wait_ms`` after the answer (no RTP: the
    prompt and the beep), then ``talk_ms`` of speech as PCMA RTP, then BYE; with
    ``dtmf_pound`` a '#' (RFC 4733) instead of the BYE, and the PBX must hang up.

    Asterisk records only the audio it receives, so a message recorded from the beep
    on is ``talk_ms`` long when ``wait_ms`` covers prompt and beep. ``audio`` is
    A-law 8 kHz (default: ``CALLER_SPEECH``), looped to ``talk_ms``.

    ``answer_timeout_s`` bounds the wait for the answer and, with ``dtmf_pound``,
    also the wait for the PBX's BYE after the '#' (sipp's ``-recv_timeout``): a PBX
    that does not hang up makes the call fail. Otherwise as ``carrier_call``. sipp
    sends pcap audio through a raw socket: this needs root.
    """
    if min(wait_ms, talk_ms) < 0:
        raise ValueError("wait_ms and talk_ms must be >= 0")
    if timeout_s is None:
        spread_s = calls / (rate or 10.0)
        timeout_s = spread_s + answer_timeout_s + (wait_ms + talk_ms) / 1000 + 15.0
        if dtmf_pound:
            timeout_s += answer_timeout_s
    # sipp loads the pcaps with the scenario, looking next to it first (then in its
    # working directory, with a complaint in the error log): a copy of the scenario
    # next to this run's pcaps.
    media_dir = workdir / f"{name}_media"
    write_message_media(media_dir, talk_ms, audio)
    scenario = media_dir / CARRIER_MESSAGE_SCENARIO.name
    shutil.copyfile(CARRIER_MESSAGE_SCENARIO, scenario)
    return _run_carrier(
        scenario,
        dialled,
        workdir=workdir,
        name=name,
        variables={
            "wait_ms": str(wait_ms),
            "talk_ms": str(talk_ms),
            "dtmf_pound": "1" if dtmf_pound else "0",
        },
        caller_number=caller_number,
        caller_name=caller_name,
        diversion=diversion,
        calls=calls,
        rate=rate,
        max_concurrent=max_concurrent,
        answer_timeout_s=answer_timeout_s,
        timeout_s=timeout_s,
        target=target,
        extra_args=extra_args,
        cwd=media_dir,
    )


# ---------------------------------------------------------------------------
# Agent phone dialling a feature code (UAC with digest auth)
# ---------------------------------------------------------------------------

# What lab.sh's gen_secret produces (base64url), and nothing that could end sipp's
# [authentication ...] keyword early.
_DIGEST_SECRET = re.compile(r"[A-Za-z0-9_.~+/=-]{1,128}")


def feature_code_call(
    code: str,
    *,
    workdir: Path,
    user: str,
    password: str | None,
    local_ip: str = AGENT_IP,
    answer_timeout_s: float = 15.0,
    timeout_s: float | None = None,
    target: tuple[str, int] = (ASTERISK_HOST, ASTERISK_SIP_PORT),
    name: str = "agent_feature",
    extra_args: Sequence[str] = (),
) -> CarrierResult:
    """An agent phone (From ``user``, from ``local_ip``) dials feature ``code``
    (``"*45"``) with ``scenarios/agent_feature_code.xml`` and waits for the PBX to
    hang up after the confirmation.

    With a ``password`` it answers a 401/407 with digest credentials (username
    ``user``); with ``None`` it does not, and the challenge fails the call. ``ok``:
    answered and hung up by the PBX. ``answer_timeout_s`` bounds every wait, the one
    for the PBX's BYE too (sipp's ``-recv_timeout``).

    The password never reaches sipp's command line (``ps`` shows it to everybody):
    it goes into a copy of the scenario, written 0600 under ``workdir``.
    """
    if timeout_s is None:
        timeout_s = 2 * answer_timeout_s + 10.0
    scenario = FEATURE_CODE_SCENARIO
    if password is not None:
        scenario = _private_scenario(FEATURE_CODE_SCENARIO, workdir, name, user, password)
    return _run_carrier(
        scenario,
        code,
        workdir=workdir,
        name=name,
        variables={"user": user, "use_auth": "1" if password is not None else "0"},
        caller_number=None,
        caller_name=None,
        diversion=None,
        calls=1,
        rate=None,
        max_concurrent=None,
        answer_timeout_s=answer_timeout_s,
        timeout_s=timeout_s,
        target=target,
        extra_args=extra_args,
        local_ip=local_ip,
    )


def _private_scenario(source: Path, workdir: Path, name: str, user: str, password: str) -> Path:
    """A 0600 copy of ``source`` whose [authentication] keyword carries the credentials."""
    if not _DIGEST_SECRET.fullmatch(password) or not _DIGEST_SECRET.fullmatch(user):
        raise SippError("user/password with characters sipp's [authentication] cannot take")
    private = workdir / f"{name}_scenario"
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    scenario = private / source.name
    text = source.read_text(encoding="iso-8859-1").replace(
        "[authentication]", f"[authentication username={user} password={password}]"
    )
    scenario.unlink(missing_ok=True)
    fd = os.open(scenario, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="iso-8859-1") as f:
        f.write(text)
    return scenario


def register_phone(
    agent: int,
    *,
    workdir: Path,
    user: str,
    password: str,
    expires_s: int = 300,
    name: str | None = None,
) -> CarrierResult:
    """Register (``expires_s`` 0: unregister) agent phone N's port (``agent_port``) as
    ``user`` with digest auth, so calls to that endpoint reach ``agent_phone(N)``."""
    return register_at(
        user,
        password,
        workdir=workdir,
        address=(AGENT_IP, agent_port(agent)),
        target=(ASTERISK_HOST, ASTERISK_SIP_PORT),
        expires_s=expires_s,
        name=name,
    )


def register_at(
    user: str,
    password: str,
    *,
    workdir: Path,
    address: tuple[str, int],
    target: tuple[str, int],
    expires_s: int = 300,
    name: str | None = None,
    auth_user: str | None = None,
) -> CarrierResult:
    """Register ``user`` from ``address`` (then start the phone there) at the registrar
    ``target`` (the cluster lab's Kamailio), answering its 401 with digest credentials
    (username ``auth_user``, default ``user``); ``expires_s`` 0 unregisters. ``ok``:
    challenged, then 200."""
    name = name or f"register_{user}_{expires_s}"
    scenario = _private_scenario(REGISTER_SCENARIO, workdir, name, auth_user or user, password)
    return _register(
        scenario,
        user,
        expires_s,
        workdir=workdir,
        name=name,
        address=address,
        target=target,
    )


def subscribe_at(
    hint: str,
    *,
    user: str,
    password: str,
    workdir: Path,
    address: tuple[str, int],
    target: tuple[str, int],
    timeout_s: float = 60.0,
    name: str = "blf_front",
) -> CarrierResult:
    """``user``'s busy-lamp key watching ``hint`` (``agent-agent2``) through the SIP
    front ``target`` (``scenarios/agent_subscribe_front.xml``): challenged (407),
    subscribed, notified until the watched agent is in a call, refreshed in the dialog,
    unsubscribed. Blocks until then (run it in a thread); ``ok``: all of that."""
    scenario = _private_scenario(SUBSCRIBE_FRONT_SCENARIO, workdir, name, user, password)
    return _run_phone(
        scenario, hint, {"user": user}, workdir=workdir, name=name, address=address,
        target=target, answer_timeout_s=timeout_s / 2, timeout_s=timeout_s,
    )  # fmt: skip


def keepalive_at(
    user: str, *, workdir: Path, address: tuple[str, int], target: tuple[str, int], name: str
) -> int | None:
    """An out-of-dialog OPTIONS From ``user`` sent from ``address`` to ``target``
    (``scenarios/agent_options.xml``); the final status it got (None: none)."""
    result = _run_phone(
        OPTIONS_SCENARIO, "options", {"user": user}, workdir=workdir, name=name,
        address=address, target=target, answer_timeout_s=5.0, timeout_s=15.0,
    )  # fmt: skip
    statuses = final_statuses(result.messages(), "OPTIONS")
    return statuses[-1] if statuses else None


def _register(
    scenario: Path,
    user: str,
    expires_s: int,
    *,
    workdir: Path,
    name: str,
    address: tuple[str, int],
    target: tuple[str, int],
) -> CarrierResult:
    return _run_phone(
        scenario, "register", {"user": user, "expires": str(expires_s)}, workdir=workdir,
        name=name, address=address, target=target, answer_timeout_s=10.0, timeout_s=20.0,
    )  # fmt: skip


def _run_phone(
    scenario: Path,
    dialled: str,
    variables: dict[str, str],
    *,
    workdir: Path,
    name: str,
    address: tuple[str, int],
    target: tuple[str, int],
    answer_timeout_s: float,
    timeout_s: float,
) -> CarrierResult:
    """One request of a phone at ``address`` (its own port: a registered contact)."""
    return _run_carrier(
        scenario, dialled, workdir=workdir, name=name, variables=variables,
        caller_number=None, caller_name=None, diversion=None, calls=1, rate=None,
        max_concurrent=None, answer_timeout_s=answer_timeout_s, timeout_s=timeout_s,
        target=target, extra_args=[], local_ip=address[0], local_port=address[1],
    )  # fmt: skip


def _run_carrier(
    scenario: Path,
    dialled: str,
    *,
    workdir: Path,
    name: str,
    variables: dict[str, str],
    caller_number: str | None,
    caller_name: str | None,
    diversion: str | None,
    calls: int,
    rate: float | None,
    max_concurrent: int | None,
    answer_timeout_s: float,
    timeout_s: float,
    target: tuple[str, int],
    extra_args: Sequence[str],
    cwd: Path | None = None,
    local_ip: str = CARRIER_IP,
    local_port: int | None = None,
) -> CarrierResult:
    """Run a carrier (UAC) scenario to completion: the part every carrier call shares
    (an agent phone's call too, from ``local_ip`` and without the caller variables)."""
    workdir.mkdir(parents=True, exist_ok=True)
    message_log = workdir / f"{name}_messages.log"
    error_log = workdir / f"{name}_errors.log"
    stat_file = workdir / f"{name}_stat.csv"
    stderr_log = workdir / f"{name}_stderr.log"
    for stale in (message_log, error_log, stat_file):
        stale.unlink(missing_ok=True)
    args = [
        sipp_binary(),
        f"{target[0]}:{target[1]}",
        "-sf", str(scenario),
        "-s", dialled,
        "-i", local_ip,
        # An explicit free port: sipp's default 5060 would collide between runs.
        "-p", str(local_port or _free_udp_port(local_ip)),
        "-m", str(calls),
        # Bounds every wait for a response/request; an unanswered INVITE is CANCELled.
        "-recv_timeout", str(int(answer_timeout_s * 1000)),
        "-nostdin",
    ]  # fmt: skip
    if caller_number is not None:
        args += ["-set", "callernum", caller_number]
    if caller_name is not None:
        args += ["-set", "callername", _quote_display_name(caller_name)]
    for variable, value in variables.items():
        args += ["-set", variable, value]
    args += [
        "-trace_msg", "-message_file", str(message_log),
        "-trace_err", "-error_file", str(error_log),
        "-trace_stat", "-stf", str(stat_file), "-fd", "1",
    ]  # fmt: skip
    if diversion:
        args += ["-set", "diversion", f"Diversion: {diversion}"]
    if rate is not None:
        args += ["-r", str(rate), "-rp", "1000"]
    if max_concurrent is not None:
        args += ["-l", str(max_concurrent)]
    args += list(extra_args)

    started = time.monotonic()
    proc = _start(args, stderr_log, cwd=cwd)
    timed_out = False
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        returncode = _stop(proc)
    totals = read_stat_totals(stat_file)
    return CarrierResult(
        command=args,
        returncode=returncode,
        timed_out=timed_out,
        calls=calls,
        successful=_stat_int(totals, "SuccessfulCall(C)"),
        failed=_stat_int(totals, "FailedCall(C)"),
        duration_s=time.monotonic() - started,
        message_log=message_log,
        error_log=error_log,
        stat_file=stat_file,
        stderr_log=stderr_log,
    )


def _main(argv: Sequence[str]) -> int:
    """``python3 tests/asterisk/sipp.py message-media TALK_MS [DIR]``: write the pcaps
    of carrier_message.xml and a copy of it into DIR (default: the current directory),
    for running sipp by hand."""
    if len(argv) not in (2, 3) or argv[0] != "message-media" or not argv[1].isdigit():
        print("usage: sipp.py message-media TALK_MS [DIR]", file=sys.stderr)
        return 2
    directory = Path(argv[2] if len(argv) == 3 else ".")
    paths = [
        *write_message_media(directory, int(argv[1])),
        directory / CARRIER_MESSAGE_SCENARIO.name,
    ]
    shutil.copyfile(CARRIER_MESSAGE_SCENARIO, paths[-1])
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

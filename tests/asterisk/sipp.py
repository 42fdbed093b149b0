"""sipp helpers for the Asterisk lab tests.

Agent phones: ``agent_phone(n, workdir=...)`` runs ``scenarios/agent_answer.xml`` as a
UAS on 127.0.0.1:507n, the static contact of PJSIP endpoint ``agentN`` in the lab
(asterisk/conf/pjsip.conf). It answers every call it gets, in the background, until
the context manager exits.

The carrier: ``carrier_call("4721000001", workdir=...)`` runs
``scenarios/carrier_call.xml`` from 127.0.0.2 (the address that identifies the
``carrier`` endpoint) against Asterisk on 127.0.0.1:5060 and waits for it.

Both write sipp's message log (``-trace_msg``); ``parse_message_log`` turns it into
``SipMessage`` objects, e.g. to count the INVITEs an agent phone received and read
the caller's display name from their From header.

sipp never outlives its owner: every process runs in its own process group, is
stopped by the context manager (or on timeout), and whatever is still running at
interpreter exit is killed by pid.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
AGENT_SCENARIO = SCENARIO_DIR / "agent_answer.xml"
CARRIER_SCENARIO = SCENARIO_DIR / "carrier_call.xml"

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
    """SIP port of agent phone N (1..5), as in the lab's pjsip.conf."""
    if not 1 <= agent <= AGENT_COUNT:
        raise ValueError(f"the lab has agents 1..{AGENT_COUNT}, not {agent}")
    return AGENT_BASE_PORT + agent


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

_live: set[subprocess.Popen[bytes]] = set()


def _start(args: Sequence[str], stderr_path: Path) -> subprocess.Popen[bytes]:
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # sipp's screen; results come from the trace files
            stderr=err,
            start_new_session=True,  # own process group: stopped as a whole, by pid
        )
    _live.add(proc)
    return proc


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 3.0) -> int:
    """SIGTERM the process group of ``proc``, SIGKILL after ``grace_s``; its exit status."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _live.discard(proc)
    return proc.returncode


@atexit.register
def _stop_all() -> None:
    for proc in list(_live):
        _stop(proc, grace_s=1.0)


def _udp_port_in_use(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _free_udp_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ip, 0))
        port: int = sock.getsockname()[1]
        return port


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
) -> AgentPhone:
    """Start agent phone N in the background; prefer the ``agent_phone`` context
    manager, which always stops it."""
    port = agent_port(agent)
    if _udp_port_in_use(AGENT_IP, port):
        raise SippError(f"{AGENT_IP}:{port}/udp (agent{agent}) is already in use")
    workdir.mkdir(parents=True, exist_ok=True)
    name = f"agent{agent}"
    message_log = workdir / f"{name}_messages.log"
    error_log = workdir / f"{name}_errors.log"
    stderr_log = workdir / f"{name}_stderr.log"
    stat_file = workdir / f"{name}_stat.csv" if trace_stat else None
    args = [
        sipp_binary(),
        "-sf", str(AGENT_SCENARIO),
        "-i", AGENT_IP,
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
    while not _udp_port_in_use(AGENT_IP, port):
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
) -> Iterator[AgentPhone]:
    """Agent phone N (1..5) answering every call after ``answer_ms`` until exit."""
    phone = start_agent_phone(
        agent, workdir=workdir, answer_ms=answer_ms, trace_stat=trace_stat, extra_args=extra_args
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
        "-sf", str(CARRIER_SCENARIO),
        "-s", dialled,
        "-i", CARRIER_IP,
        # An explicit free port: sipp's default 5060 would collide between runs.
        "-p", str(_free_udp_port(CARRIER_IP)),
        "-m", str(calls),
        # Bounds every wait for a response/request; an unanswered INVITE is CANCELled.
        "-recv_timeout", str(int(answer_timeout_s * 1000)),
        "-nostdin",
        "-set", "callernum", caller_number,
        "-set", "callername", _quote_display_name(caller_name),
        "-set", "talk_ms", str(talk_ms),
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
    proc = _start(args, stderr_log)
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

"""sipp for the load benchmark: one UAS answering for all agents, and carrier runs.

The carrier calls from 127.0.0.4 (the bench pjsip.conf identifies the carrier by that
address); the agents' UAS listens on 127.0.0.5:5200 (every agent's static contact).
Both are disjoint from the lab tests' sipp addresses (127.0.0.1:5071-5079, 127.0.0.2).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.loadbench import procs
from benchmarks.loadbench.asterisk import AGENT_IP, AGENT_PORT, CARRIER_IP
from benchmarks.loadbench.stats import Message, parse_messages, stat_totals

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
AGENT_SCENARIO = SCENARIOS / "agent.xml"
CARRIER_SCENARIO = SCENARIOS / "carrier.xml"
WAITING_SCENARIO = SCENARIOS / "waiting_caller.xml"
# sipp's cap on open calls (-l): far above anything a run holds, so the offered load
# never silently drops (its default is 3 x rate x 1 s).
OPEN_CALLS = 5000


class SippError(RuntimeError):
    """sipp is missing or did not start."""


def binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise SippError("sipp not found: Debian package sip-tester (`make bench` installs it)")
    return path


def read_from(path: Path, offset: int) -> str:
    """A log's text from byte ``offset`` on (empty if the file is missing)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


@dataclass
class Agents:
    """The agents' UAS (one sipp for agentb1..N)."""

    proc: subprocess.Popen[bytes]
    message_log: Path
    error_log: Path
    builtin: bool

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_offset(self) -> int:
        return size(self.message_log)

    def messages_since(self, offset: int) -> list[Message]:
        return list(parse_messages(read_from(self.message_log, offset)))

    def stop(self) -> None:
        procs.stop(self.proc)


def start_agents(
    workdir: Path, name: str, answer_ms: int, target: str, *, builtin: bool = False
) -> Agents:
    """Start the UAS. ``builtin``: sipp's own ``-sn uas`` (answers at once; the harness
    only uses it to show why it is unfit), else ``scenarios/agent.xml``."""
    if not procs.udp_port_free(AGENT_IP, AGENT_PORT):
        raise SippError(f"{AGENT_IP}:{AGENT_PORT}/udp is in use (another benchmark?)")
    message_log = workdir / f"uas_{name}_messages.log"
    error_log = workdir / f"uas_{name}_errors.log"
    if builtin:
        scenario = ["-sn", "uas"]
    else:
        scenario = ["-sf", str(AGENT_SCENARIO), "-set", "answer_ms", str(answer_ms)]
    args = [
        binary(), *scenario,
        "-i", AGENT_IP, "-p", str(AGENT_PORT), "-nostdin",
        "-l", str(OPEN_CALLS),
        "-trace_msg", "-message_file", str(message_log),
        "-trace_err", "-error_file", str(error_log),
        target,
    ]  # fmt: skip
    proc = procs.start(args, workdir / f"uas_{name}_stderr.log", keep_stdout=False)
    deadline = time.monotonic() + 5
    while procs.udp_port_free(AGENT_IP, AGENT_PORT):
        if proc.poll() is not None or time.monotonic() > deadline:
            procs.stop(proc)
            raise SippError(f"the agents' UAS did not start (see {workdir}/uas_{name}_stderr.log)")
        time.sleep(0.02)
    return Agents(proc, message_log, error_log, builtin)


def write_dids(path: Path, dids: list[str]) -> Path:
    """An injection file that hands the numbers out in turn, one per call."""
    path.write_text("SEQUENTIAL\n" + "".join(f"{d};\n" for d in dids))
    return path


@dataclass
class Carrier:
    """A running (then finished) carrier sipp."""

    name: str
    proc: subprocess.Popen[bytes]
    message_log: Path
    stat_file: Path
    calls: int
    started: float

    def finished(self) -> bool:
        return self.proc.poll() is not None

    def wait(self, timeout_s: float) -> int:
        """Wait for sipp to finish all its calls; kill it after ``timeout_s``."""
        try:
            code = self.proc.wait(timeout_s)
            procs.forget(self.proc)
        except subprocess.TimeoutExpired:
            code = procs.stop(self.proc)
        return code

    def totals(self) -> dict[str, int]:
        try:
            return stat_totals(self.stat_file.read_text(errors="replace"))
        except FileNotFoundError:
            return {}

    def messages(self) -> list[Message]:
        return list(parse_messages(read_from(self.message_log, 0)))


def start_carrier(
    workdir: Path,
    name: str,
    *,
    target: str,
    dids_file: Path,
    prefix: str,
    rate: float,
    calls: int,
    variables: dict[str, str],
    waiting: bool = False,
    answer_timeout_ms: int = 10_000,
) -> Carrier:
    """Start placing ``calls`` calls at ``rate`` per second (``waiting``: callers who
    ring until ``end_s`` and hang up, ``scenarios/waiting_caller.xml``)."""
    message_log = workdir / f"carrier_{name}_messages.log"
    stat_file = workdir / f"carrier_{name}_stat.csv"
    for path in (message_log, stat_file):
        path.unlink(missing_ok=True)
    rate_period_ms = 1000
    per_period = rate
    if rate != int(rate):  # sipp's -r is per -rp ms: 2.5/s = 5 per 2000 ms
        rate_period_ms, per_period = 2000, rate * 2
    args = [
        binary(), "-sf", str(WAITING_SCENARIO if waiting else CARRIER_SCENARIO),
        "-inf", str(dids_file),
        "-i", CARRIER_IP, "-p", str(procs.free_udp_port(CARRIER_IP)), "-nostdin",
        "-set", "prefix", prefix,
        "-r", f"{per_period:g}", "-rp", str(rate_period_ms), "-m", str(calls),
        "-l", str(OPEN_CALLS),
        "-trace_msg", "-message_file", str(message_log),
        "-trace_stat", "-stf", str(stat_file), "-fd", "1",
        "-trace_err", "-error_file", str(workdir / f"carrier_{name}_errors.log"),
    ]  # fmt: skip
    if not waiting:
        args += ["-recv_timeout", str(answer_timeout_ms)]
    for key, value in variables.items():
        args += ["-set", key, value]
    args.append(target)
    proc = procs.start(args, workdir / f"carrier_{name}_stderr.log", keep_stdout=False)
    return Carrier(name, proc, message_log, stat_file, calls, time.time())

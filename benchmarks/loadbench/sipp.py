"""sipp for the load benchmark: the agents' UAS processes, and carrier runs.

The carrier calls from 127.0.0.4 (the bench pjsip.conf identifies the carrier by that
address); K UAS processes answer for the agents on 127.0.0.5:5200, 5201, ... (agent n's
static contact names UAS (n - 1) mod K). One sipp is one thread: several share the
agents so that none of them is what limits the rate (each step reports the busiest
one's CPU). All are disjoint from the lab tests' sipp addresses (127.0.0.1:5071-5079,
127.0.0.2, 127.0.0.3).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.loadbench import procs
from benchmarks.loadbench.asterisk import CARRIER_IP, uas_address
from benchmarks.loadbench.stats import Message, merge_messages, parse_messages, stat_totals

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
class Uas:
    """One sipp UAS answering for its share of the agents."""

    proc: subprocess.Popen[bytes]
    address: tuple[str, int]
    message_log: Path
    error_log: Path
    stderr_log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Agents:
    """The agents' UAS processes (agent n answered by ``asterisk.agent_uas(n, K)``)."""

    uas: list[Uas]
    builtin: bool

    @property
    def pids(self) -> list[int]:
        return [u.pid for u in self.uas]

    @property
    def error_logs(self) -> list[Path]:
        return [u.error_log for u in self.uas]

    def log_offset(self) -> tuple[int, ...]:
        """Where each UAS's message log ends now (for :meth:`messages_since`)."""
        return tuple(size(u.message_log) for u in self.uas)

    def messages_since(self, offsets: tuple[int, ...]) -> list[Message]:
        """What every UAS logged since ``offsets``, merged into one stream by time."""
        return merge_messages(
            parse_messages(read_from(u.message_log, offset))
            for u, offset in zip(self.uas, offsets, strict=True)
        )

    def cpu_seconds(self) -> list[float]:
        """CPU used so far by each UAS."""
        return [procs.cpu_seconds(pid) for pid in self.pids]

    def stop(self) -> None:
        for u in self.uas:
            procs.stop(u.proc)


def start_agents(
    workdir: Path,
    name: str,
    answer_ms: int,
    target: str,
    *,
    builtin: bool = False,
    count: int = 1,
) -> Agents:
    """Start ``count`` UAS processes (UAS i on ``asterisk.uas_address(i)``). ``builtin``:
    sipp's own ``-sn uas`` (answers at once; the harness only uses it to show why it is
    unfit), else ``scenarios/agent.xml``."""
    addresses = [uas_address(i) for i in range(count)]
    busy = [f"{ip}:{port}" for ip, port in addresses if not procs.udp_port_free(ip, port)]
    if busy:
        raise SippError(f"{', '.join(busy)}/udp in use (another benchmark?)")
    if builtin:
        scenario = ["-sn", "uas"]
    else:
        scenario = ["-sf", str(AGENT_SCENARIO), "-set", "answer_ms", str(answer_ms)]
    started: list[Uas] = []
    for i, (ip, port) in enumerate(addresses):
        tag = name if count == 1 else f"{name}_{i + 1}"
        message_log = workdir / f"uas_{tag}_messages.log"
        error_log = workdir / f"uas_{tag}_errors.log"
        args = [
            binary(), *scenario,
            "-i", ip, "-p", str(port), "-nostdin",
            "-l", str(OPEN_CALLS),
            "-trace_msg", "-message_file", str(message_log),
            "-trace_err", "-error_file", str(error_log),
            target,
        ]  # fmt: skip
        stderr_log = workdir / f"uas_{tag}_stderr.log"
        proc = procs.start(args, stderr_log, keep_stdout=False)
        started.append(Uas(proc, (ip, port), message_log, error_log, stderr_log))
    deadline = time.monotonic() + 5
    for u in started:
        while procs.udp_port_free(*u.address):
            if u.proc.poll() is not None or time.monotonic() > deadline:
                for v in started:
                    procs.stop(v.proc)
                ip, port = u.address
                raise SippError(f"the agents' UAS on {ip}:{port} did not start ({u.stderr_log})")
            time.sleep(0.02)
    return Agents(started, builtin)


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

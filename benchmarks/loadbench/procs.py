"""Processes the harness starts (sipp, Asterisk, our service), and what /proc says
about them and the machine.

Every process runs in its own session, is stopped by pid (its process group), and
whatever is still running when the interpreter exits is stopped too (atexit). The pids
and command lines of running processes are also kept in a file (:func:`use_registry`),
so that a harness killed outright (SIGKILL) leaves nothing behind for long: the next run
stops exactly those processes, if they still run the same command line.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.loadbench.stats import (
    machine_cpu_ticks,
    proc_cpu_ticks,
    proc_status_kb,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

_live: dict[int, subprocess.Popen[bytes]] = {}
_registry: Path | None = None


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None


def refresh_registry() -> None:
    """Record command lines again (a process that exec'd another program since)."""
    _save_registry()


def _save_registry() -> None:
    if _registry is None:
        return
    entries = {str(pid): _cmdline(pid) for pid in _live}
    tmp = _registry.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: v for k, v in entries.items() if v}))
    tmp.replace(_registry)


def use_registry(path: Path) -> list[int]:
    """Keep the running processes in ``path``; first stop those a previous harness left
    there (same pid and command line as recorded). Returns the pids stopped."""
    global _registry
    stopped = []
    with contextlib.suppress(OSError, ValueError):
        for pid_text, cmdline in json.loads(path.read_text()).items():
            pid = int(pid_text)
            if cmdline and _cmdline(pid) == cmdline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)
                    stopped.append(pid)
    _registry = path
    _save_registry()
    return stopped


def start(
    args: Sequence[str],
    output: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    keep_stdout: bool = True,
) -> subprocess.Popen[bytes]:
    """Start ``args`` in the background, stderr (and stdout, unless ``keep_stdout`` is
    false: sipp's screen) to ``output``."""
    with output.open("ab") as out:
        proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=out if keep_stdout else subprocess.DEVNULL,
            stderr=out,
            start_new_session=True,  # own process group, stopped as a whole by its pid
        )
    _live[proc.pid] = proc
    _save_registry()
    return proc


def stop(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> int:
    """SIGTERM ``proc``'s process group, SIGKILL after ``grace_s``; its exit status."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _live.pop(proc.pid, None)
    _save_registry()
    return proc.returncode


def forget(proc: subprocess.Popen[bytes]) -> None:
    """``proc`` ended by itself and was waited for."""
    _live.pop(proc.pid, None)
    _save_registry()


@atexit.register
def _stop_all() -> None:
    for proc in list(_live.values()):
        stop(proc, grace_s=2.0)


# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------


def udp_port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def tcp_port_free(ip: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_udp_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ip, 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------
# /proc
# ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (all its threads), in seconds."""
    return proc_cpu_ticks(Path(f"/proc/{pid}/stat").read_text()) / CLOCK_TICKS


def rss_kb(pid: int, key: str = "VmRSS") -> int:
    """Resident memory (VmRSS; VmHWM = its peak) of a running process, in kB."""
    return proc_status_kb(Path(f"/proc/{pid}/status").read_text(), key)


def children_cpu_seconds() -> float:
    """CPU of this process's children that have been waited for (finished sipp runs)."""
    usage = os.times()
    return usage.children_user + usage.children_system


def self_cpu_seconds() -> float:
    usage = os.times()
    return usage.user + usage.system


@dataclass(frozen=True)
class MachineSample:
    busy_s: float
    total_s: float  # summed over all CPUs
    at: float = 0.0  # time.monotonic() when taken

    @property
    def idle_s(self) -> float:
        return self.total_s - self.busy_s


def machine_sample() -> MachineSample:
    busy, total = machine_cpu_ticks(Path("/proc/stat").read_text())
    return MachineSample(busy / CLOCK_TICKS, total / CLOCK_TICKS, time.monotonic())


def describe_machine() -> dict[str, str | int]:
    """CPU model, core count, memory and kernel, for the results."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        mem_kb = proc_status_kb(Path("/proc/meminfo").read_text(), "MemTotal")
    release = ""
    with contextlib.suppress(OSError):
        release = Path("/proc/sys/kernel/osrelease").read_text().strip()
    os_name = ""
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    return {
        "cpu": model,
        "cores": os.cpu_count() or 0,
        "memory_mb": mem_kb // 1024,
        "kernel": release,
        "os": os_name,
        "hostname": socket.gethostname(),
    }

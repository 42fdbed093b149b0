"""What /proc says about the processes the harness starts (sipp, Asterisk, our service)
and about the machine. Starting and stopping them is lab/procs.py's, shared with the
cluster lab, and re-exported here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.loadbench.stats import (
    machine_cpu_ticks,
    proc_cpu_ticks,
    proc_status_kb,
)
from lab.procs import (
    forget,
    free_tcp_port,
    free_udp_port,
    refresh_registry,
    start,
    stop,
    tcp_port_free,
    udp_port_free,
    use_registry,
)

__all__ = [
    "forget",
    "free_tcp_port",
    "free_udp_port",
    "refresh_registry",
    "start",
    "stop",
    "tcp_port_free",
    "udp_port_free",
    "use_registry",
]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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

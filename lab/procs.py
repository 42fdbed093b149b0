"""Processes a lab harness starts (Asterisk, Kamailio, sipp, our service): started in
their own session, stopped by pid (their process group), and stopped at interpreter
exit if still running (atexit).

The pids and command lines of running processes can also be kept in a file
(:func:`use_registry`), so that a harness killed outright (SIGKILL) leaves nothing
behind for long: the next run stops exactly those processes, if they still run the
same command line. Used by the load benchmark (benchmarks/loadbench) and the cluster
lab (lab/cluster.py).
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
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

_live: dict[int, subprocess.Popen[bytes]] = {}
_registry: Path | None = None
# Tests start and stop sipp processes from several threads at once (ThreadPoolExecutor):
# the table and its file change under this lock only.
_lock = threading.RLock()


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None


def refresh_registry() -> None:
    """Record command lines again (a process that exec'd another program since)."""
    _save_registry()


def _save_registry() -> None:
    with _lock:
        if _registry is None:
            return
        entries = {str(pid): _cmdline(pid) for pid in list(_live)}
        tmp = _registry.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: v for k, v in entries.items() if v}))
        tmp.replace(_registry)


def release_registry(path: Path) -> None:
    """Stop keeping processes in ``path`` (its harness stopped them all): what this
    process starts later (another test's sipp) is not written there."""
    global _registry
    with _lock:
        if _registry == path:
            _save_registry()
            _registry = None


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
    with _lock:
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
    with _lock:
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
    with _lock:
        _live.pop(proc.pid, None)
        _save_registry()
    return proc.returncode


def forget(proc: subprocess.Popen[bytes]) -> None:
    """``proc`` ended by itself and was waited for."""
    with _lock:
        _live.pop(proc.pid, None)
        _save_registry()


@atexit.register
def _stop_all() -> None:
    with _lock:
        running = list(_live.values())
    for proc in running:
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

"""``serve`` runs the delivery worker as a niced child process tied to it: it dies with
its parent (even by kill -9, so no second worker ever claims the same rows) and is
started again when it exits on its own (delivery/process.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from televikar_pbx.db import migrate
from tests.helpers import in_thread

PARENT = """
import asyncio
from televikar_pbx.delivery.process import DeliveryProcess

async def main() -> None:
    worker = DeliveryProcess()
    worker.start()
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def children(pid: int) -> list[int]:
    """The delivery children of ``pid`` once they run ``televikar-pbx deliver`` (between
    fork and exec a child is not yet niced)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (int(x) for x in (task / "children").read_text().split()):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except (FileNotFoundError, ProcessLookupError):
                # Gone between the parent's list and its own: a child that just exited
                # (opening can succeed, and the read then fail with ESRCH).
                continue
            if b"deliver" in argv:
                found.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def until(check: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def parent(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    db = tmp_path / "televikar.sqlite3"
    in_thread(migrate.upgrade, f"sqlite+aiosqlite:///{db}")
    env = {
        **os.environ,
        "TELEVIKAR_DB_PATH": str(db),
        "TELEVIKAR_ENV_FILE": "/nonexistent",
        "TELEVIKAR_DELIVERY_POLL_S": "0.2",
    }
    env.pop("TELEVIKAR_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_the_worker_is_niced_restarted_when_it_exits_and_dies_with_its_parent(
    parent: subprocess.Popen[bytes],
) -> None:
    [child] = until(lambda: children(parent.pid), 20, "the delivery child")  # type: ignore[misc]
    # Ten steps nicer than serve, up to Linux's ceiling of 19 (the suite may run niced).
    expected = min(os.getpriority(os.PRIO_PROCESS, 0) + 10, 19)
    assert os.getpriority(os.PRIO_PROCESS, child) == expected
    # Once up, it runs only on CPU nothing else wants (SCHED_IDLE); serve does not.
    until(lambda: os.sched_getscheduler(child) == os.SCHED_IDLE, 30, "SCHED_IDLE")
    assert os.sched_getscheduler(parent.pid) == os.SCHED_OTHER
    os.kill(child, signal.SIGKILL)  # it dies on its own: the parent starts another
    [again] = until(  # type: ignore[misc]
        lambda: [c for c in children(parent.pid) if c != child], 20, "a new delivery child"
    )
    os.kill(parent.pid, signal.SIGKILL)  # kill -9 of serve: the child goes with it
    parent.wait()
    until(lambda: not alive(again), 10, "the child to end with its parent")

"""The delivery worker as a child process of ``serve``.

Composing e-mails (a voice message is a base64'd WAV) and talking SMTP and HTTP cost
about 10 ms of CPU per message; in the routing process they would hold its event loop
and the interpreter lock, and a burst of messages measurably slowed routing (issue 13,
docs/performance.md). So ``serve`` runs ``televikar-pbx deliver --idle`` beside itself:
niced, and once started in Linux's SCHED_IDLE class, so the routing process always wins
the CPU, and tied to its parent (it gets SIGTERM when
``serve`` dies, even by ``kill -9``: Linux's PR_SET_PDEATHSIG), so there is never a second
worker claiming the same outbox rows. If the child exits, it is started again with a
growing pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys

import structlog

log = structlog.get_logger("televikar_pbx.delivery")

NICENESS = 10
PR_SET_PDEATHSIG = 1
RESTART_MAX_S = 30.0
STOP_GRACE_S = 10.0


def _tie_to_parent() -> None:  # runs in the child between fork and exec
    os.nice(NICENESS)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class DeliveryProcess:
    """Runs and supervises ``televikar-pbx deliver`` until :meth:`close`."""

    def __init__(self) -> None:
        self._stopping = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="delivery-process")

    async def _supervise(self) -> None:
        pause = 1.0
        while not self._stopping.is_set():
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "televikar_pbx.cli", "deliver", "--idle",
                stdin=asyncio.subprocess.DEVNULL, preexec_fn=_tie_to_parent,
            )  # fmt: skip
            log.info("delivery.process_started", pid=self._proc.pid)
            code = await self._proc.wait()
            if self._stopping.is_set():
                return
            log.error("delivery.process_exited", code=code, restart_in_s=pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
            pause = min(pause * 2, RESTART_MAX_S)

    async def close(self) -> None:
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

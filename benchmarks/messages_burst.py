"""A burst of messages through the real delivery worker to a local SMTP server (issue 13):
how long 1,000 messages take from the first one saved to the last one accepted.
Figures: docs/performance.md.

    .venv/bin/python benchmarks/messages_burst.py                 # 1,000 messages
    .venv/bin/python benchmarks/messages_burst.py --messages 200 --customers 2

What it does: a fresh SQLite database (migrated by the project's migrations) with K
customers, each with one e-mail recipient; an aiosmtpd server on 127.0.0.1 in this process
that counts what it accepts; the delivery worker of ``televikar-pbx serve``
(``delivery.service.start_delivery``, the same code, settings from ``TELEVIKAR_*``) in a
process of its own, as in the service. Then this process takes N agent messages
(``messages.services.take_message``, each in its own transaction, as ``messages take``
does), round robin over the customers, as fast as it can, and waits until the server
has accepted N e-mails and every outbox row is ``sent``. It checks that each e-mail went
to its own customer's address and that no Message-ID came twice (exit code 1 if not).

``load.py --with-message-burst`` runs the same burst against the service under load, to
see whether routing latency suffers (benchmarks/loadbench/burst.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from televikar_pbx.db import migrate, models  # noqa: E402
from televikar_pbx.db.engine import make_engine, make_sessionmaker  # noqa: E402
from televikar_pbx.db.messages_repo import MessageRepository  # noqa: E402
from televikar_pbx.db.repositories import DirectoryRepository  # noqa: E402
from televikar_pbx.domain.message_delivery import Channel  # noqa: E402
from televikar_pbx.domain.message_forms import FormKind  # noqa: E402
from televikar_pbx.messages.services import add_recipient, take_message  # noqa: E402

SENDER = "Televikar <meldinger@televikar.example>"
DEADLINE_S = 300.0  # give up waiting (the goal is 60 s)


def address(customer: int) -> str:
    return f"post@kunde{customer}.example"


@dataclass
class Sink:
    """An aiosmtpd handler that counts what it accepts (thread-safe), per Message-ID."""

    accepted: int = 0
    last_at: float = 0.0
    ids: Counter[str] = field(default_factory=Counter)
    to: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Forget what was accepted so far (the next burst counts from zero)."""
        with self._lock:
            self.accepted, self.last_at = 0, 0.0
            self.ids.clear()
            self.to.clear()
            self.wrong.clear()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        head = envelope.content.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
        headers = dict(line.split(": ", 1) for line in head.split("\r\n") if ": " in line[:40])
        with self._lock:
            self.accepted += 1
            self.last_at = time.monotonic()
            self.ids[headers.get("Message-ID", "?")] += 1
            for rcpt in envelope.rcpt_tos:
                self.to[rcpt] += 1
        return "250 OK"


def start_smtp(sink: Sink, port: int | None = None) -> tuple[Controller, int]:
    if port is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
    controller = Controller(sink, hostname="127.0.0.1", port=port, server_hostname="bench")
    controller.start()
    return controller, port


def smtp_env(port: int) -> dict[str, str]:
    return {
        "TELEVIKAR_SMTP_HOST": "127.0.0.1",
        "TELEVIKAR_SMTP_PORT": str(port),
        "TELEVIKAR_SMTP_SECURITY": "none",
        "TELEVIKAR_SMTP_FROM": SENDER,
    }


async def add_recipients(db_url: str, customer_ids: list[int]) -> None:
    engine = make_engine(db_url)
    try:
        repo = MessageRepository(make_sessionmaker(engine))
        for n, cid in enumerate(customer_ids, start=1):
            await add_recipient(repo, cid, Channel.EMAIL, address(n))
    finally:
        await engine.dispose()


async def take_burst(db_url: str, customer_ids: list[int], count: int, at_once: bool) -> None:
    """Take ``count`` messages, round robin over the customers, each in its own
    transaction, or (``at_once``) all in one, so the worker sees them all at once."""
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)

    async def take(s: AsyncSession, n: int) -> None:
        raw = {"name": f"Innringer {n}", "phone": "22 33 44 55", "subject": f"Burst {n}"}
        await take_message(
            MessageRepository(s),
            customer_id=customer_ids[n % len(customer_ids)],
            kind=FormKind.MESSAGE,
            raw=raw | {"call_back": "nei"},
            taken_at=dt.datetime.now(dt.UTC),
        )

    try:
        if at_once:
            async with sessions.begin() as s:
                for n in range(count):
                    await take(s, n)
        else:
            for n in range(count):
                async with sessions.begin() as s:
                    await take(s, n)
    finally:
        await engine.dispose()


async def outbox_states(db_url: str) -> dict[str, int]:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as s:
            o = models.OutboxItem
            rows = await s.execute(select(o.state, func.count()).group_by(o.state))
            return {str(state): int(n) for state, n in rows}
    finally:
        await engine.dispose()


@dataclass
class BurstResult:
    messages: int
    saved_s: float  # first save to last save
    delivered_s: float | None  # first save to the last e-mail accepted (None: not all)
    outbox: dict[str, int]
    problems: list[str]
    at_once: bool = False

    @property
    def per_s(self) -> float | None:
        return self.messages / self.delivered_s if self.delivered_s else None

    @property
    def after_last_save(self) -> str:
        if self.delivered_s is None or self.at_once:
            return "-"
        return f"{self.delivered_s - self.saved_s:.1f} s after the last"

    def line(self) -> str:
        done = f"{self.delivered_s:.1f} s" if self.delivered_s is not None else "NOT ALL"
        rate = f"{self.per_s:.1f} messages/s" if self.per_s else "-"
        how = "in one transaction" if self.at_once else "one by one"
        since = "their commit" if self.at_once else "the first was saved"
        return (
            f"burst: {self.messages} messages saved {how} in {self.saved_s:.1f} s, all "
            f"delivered {done} after {since} ({rate}, {self.after_last_save}); "
            f"outbox {self.outbox}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "saved_at_once": self.at_once,
            "saved_s": round(self.saved_s, 2),
            "delivered_s": None if self.delivered_s is None else round(self.delivered_s, 2),
            "messages_per_s": None if self.per_s is None else round(self.per_s, 1),
            "outbox": self.outbox,
            "problems": self.problems,
        }


def _new(states: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """The outbox's counts less those of ``before`` (rows only ever move on to ``sent``)."""
    sent = states.get("sent", 0) - before.get("sent", 0)
    return {k: v for k, v in states.items() if k != "sent"} | ({"sent": sent} if sent else {})


def run_burst(
    db_url: str,
    customer_ids: list[int],
    count: int,
    sink: Sink,
    at_once: bool = False,
    saved_event: threading.Event | None = None,
) -> BurstResult:
    """Take the burst into ``db_url`` (a running worker delivers it to ``sink``) and wait
    until everything is accepted and recorded, or ``DEADLINE_S``. Delivery is timed from
    the first save, or (``at_once``) from the commit of all; ``saved_event`` is set then.
    ``sink`` is reset first, and the outbox is counted from what it held before: a
    database that had bursts before (``load.py``'s rounds) is judged on this one."""
    sink.reset()
    before = asyncio.run(outbox_states(db_url))
    begun = time.monotonic()
    asyncio.run(take_burst(db_url, customer_ids, count, at_once))
    saved = time.monotonic() - begun
    if saved_event is not None:
        saved_event.set()
    started = begun + saved if at_once else begun
    deadline = started + DEADLINE_S
    while sink.accepted < count and time.monotonic() < deadline:
        time.sleep(0.05)
    delivered = sink.last_at - started if sink.accepted >= count else None
    states = _new(asyncio.run(outbox_states(db_url)), before)
    while states.get("sent", 0) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        states = _new(asyncio.run(outbox_states(db_url)), before)
    problems = []
    if sink.accepted != count:
        problems.append(f"{sink.accepted} e-mails accepted, {count} messages taken")
    twice = [mid for mid, n in sink.ids.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} Message-IDs arrived more than once")
    expected = Counter(address(n % len(customer_ids) + 1) for n in range(count))
    if sink.to != expected:
        problems.append(f"per address {dict(sink.to)}, expected {dict(expected)}")
    if states.get("sent", 0) != count:
        problems.append(f"outbox {states}, expected {count} sent")
    return BurstResult(count, saved, delivered, states, problems, at_once)


def worker_main() -> None:
    """``--worker``: the delivery worker alone, as ``serve`` runs it, until SIGTERM."""
    from televikar_pbx.clock import clock_from_env
    from televikar_pbx.delivery.service import start_delivery
    from televikar_pbx.logs import configure_logging
    from televikar_pbx.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)

    async def run() -> None:
        engine = make_engine(settings.sqlalchemy_url)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        delivery = await start_delivery(settings, make_sessionmaker(engine), clock_from_env())
        await stop.wait()
        await delivery.close()
        await engine.dispose()

    asyncio.run(run())


async def _seed(db_url: str, customers: int) -> list[int]:
    engine = make_engine(db_url)
    try:
        directory = DirectoryRepository(make_sessionmaker(engine))
        ids = [
            (await directory.add_customer(f"Kunde {n} AS", f"Kunde {n}", [f"47210{n:05d}"])).id
            for n in range(1, customers + 1)
        ]
    finally:
        await engine.dispose()
    await add_recipients(db_url, ids)
    return ids


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--customers", type=int, default=5)
    p.add_argument("--poll-s", type=float, default=2.0, help="TELEVIKAR_DELIVERY_POLL_S")
    p.add_argument("--at-once", action="store_true",
                   help="save the burst in one transaction (timed from its commit)")  # fmt: skip
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        worker_main()
        return 0
    with tempfile.TemporaryDirectory(prefix="televikar-burst-") as tmp:
        db_url = f"sqlite+aiosqlite:///{Path(tmp) / 'televikar.sqlite3'}"
        migrate.upgrade(db_url)
        ids = asyncio.run(_seed(db_url, a.customers))
        sink = Sink()
        controller, port = start_smtp(sink)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TELEVIKAR_")},
            "TELEVIKAR_ENV_FILE": str(Path(tmp) / "no-env-file"),
            "TELEVIKAR_DATABASE_URL": db_url,
            "TELEVIKAR_DELIVERY_POLL_S": str(a.poll_s),
            "TELEVIKAR_LOG_LEVEL": "warning",
            # The worker's clock starts at ours: messages are due from the moment this
            # process saves them, and a test may run this process with its clock moved
            # (tests/setup/shifted-clock.sh), which no child process inherits.
            "TELEVIKAR_NOW": dt.datetime.now(dt.UTC).isoformat(),
            **smtp_env(port),
        }
        log = Path(tmp) / "worker.log"
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, __file__, "--worker"], env=env, stdout=out, stderr=out
            )
        try:
            result = run_burst(db_url, ids, a.messages, sink, a.at_once)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
            controller.stop()
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = used.ru_utime + used.ru_stime
        print(result.line())
        print(f"worker process: {cpu:.1f} s CPU, {cpu * 1000 / a.messages:.1f} ms per message")
        for problem in result.problems:
            print("WRONG", problem)
        if result.problems:
            print(log.read_text(errors="replace")[-3000:])
        return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())

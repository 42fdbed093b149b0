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


async def take_burst(db_url: str, customer_ids: list[int], count: int) -> list[int]:
    """Take ``count`` messages, round robin over the customers, each in its own
    transaction; their ids."""
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    taken: list[int] = []
    try:
        for n in range(count):
            raw = {"name": f"Innringer {n}", "phone": "22 33 44 55", "subject": f"Burst {n}"}
            async with sessions.begin() as s:
                message = await take_message(
                    MessageRepository(s),
                    customer_id=customer_ids[n % len(customer_ids)],
                    kind=FormKind.MESSAGE,
                    raw=raw | {"call_back": "nei"},
                    taken_at=dt.datetime.now(dt.UTC),
                )
            taken.append(message)
    finally:
        await engine.dispose()
    return taken


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

    @property
    def per_s(self) -> float | None:
        return self.messages / self.delivered_s if self.delivered_s else None

    @property
    def after_last_save(self) -> str:
        if self.delivered_s is None:
            return "-"
        return f"{self.delivered_s - self.saved_s:.1f} s after the last"

    def line(self) -> str:
        done = f"{self.delivered_s:.1f} s" if self.delivered_s is not None else "NOT ALL"
        rate = f"{self.per_s:.1f} messages/s" if self.per_s else "-"
        return (
            f"burst: {self.messages} messages saved in {self.saved_s:.1f} s, all delivered "
            f"{done} after the first was saved ({rate}, {self.after_last_save}); "
            f"outbox {self.outbox}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "saved_s": round(self.saved_s, 2),
            "delivered_s": None if self.delivered_s is None else round(self.delivered_s, 2),
            "messages_per_s": None if self.per_s is None else round(self.per_s, 1),
            "outbox": self.outbox,
            "problems": self.problems,
        }


def run_burst(db_url: str, customer_ids: list[int], count: int, sink: Sink) -> BurstResult:
    """Take the burst into ``db_url`` (a running worker delivers it to ``sink``) and wait
    until everything is accepted and recorded, or ``DEADLINE_S``."""
    started = time.monotonic()
    asyncio.run(take_burst(db_url, customer_ids, count))
    saved = time.monotonic() - started
    deadline = started + DEADLINE_S
    while sink.accepted < count and time.monotonic() < deadline:
        time.sleep(0.05)
    delivered = sink.last_at - started if sink.accepted >= count else None
    states = asyncio.run(outbox_states(db_url))
    while states.get("sent", 0) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        states = asyncio.run(outbox_states(db_url))
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
    return BurstResult(count, saved, delivered, states, problems)


def worker_main() -> None:
    """``--worker``: the delivery worker alone, as ``serve`` runs it, until SIGTERM."""
    from televikar_pbx.clock import SystemClock
    from televikar_pbx.delivery.service import start_delivery
    from televikar_pbx.logs import configure_logging
    from televikar_pbx.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)

    async def run() -> None:
        engine = make_engine(settings.sqlalchemy_url)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        delivery = await start_delivery(settings, make_sessionmaker(engine), SystemClock())
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
            **smtp_env(port),
        }
        log = Path(tmp) / "worker.log"
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, __file__, "--worker"], env=env, stdout=out, stderr=out
            )
        try:
            result = run_burst(db_url, ids, a.messages, sink)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
            controller.stop()
        print(result.line())
        for problem in result.problems:
            print("WRONG", problem)
        if result.problems:
            print(log.read_text(errors="replace")[-3000:])
        return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())

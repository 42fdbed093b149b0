"""How long ``televikar-pbx sla nightly`` takes for one day of N calls, on SQLite and
PostgreSQL. Figures and how to read them: benchmarks/README.md, docs/performance.md.

    .venv/bin/python benchmarks/sla_job.py                      # 1,000,000 calls, SQLite
    .venv/bin/python benchmarks/sla_job.py --backend both       # and PostgreSQL

Each backend gets a fresh database migrated by the project's migrations: a SQLite file
in a temporary directory, or a PostgreSQL database created through ``--pg-url``
(default ``$TELEVIKAR_TEST_PG_URL``) and dropped afterwards. K customers (Europe/Oslo)
and their agents are added through the real repositories; N synthetic calls of one local
day, with their journal and messages, go in by bulk insert (``executemany`` on SQLite,
``COPY`` on PostgreSQL), timed apart from the job. Then the real job,
``televikar-pbx sla nightly --date DAY`` (``cli.main``), runs in a fresh process, so the
peak RSS is the job's own, and is timed. Last, every customer's stored daily figures are
compared with the mix that was generated: a fast but wrong job fails the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import multiprocessing
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL, make_url

from televikar_pbx.db import migrate
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import DirectoryRepository, SlaRepository

PG_URL_ENV = "TELEVIKAR_TEST_PG_URL"
DAY = dt.date(2026, 11, 24)  # an ordinary Tuesday: 24 hours
TIMEZONE = "Europe/Oslo"
AGENTS = 10
CHUNK = 50_000
_US = dt.timedelta(microseconds=1)
_S = 1_000_000

CALL_COLUMNS = (
    "id", "channel_id", "linkedid", "customer_id", "dialled_number", "caller_number",
    "caller_name", "arrived_at", "answered_at", "ended_at", "agent_id", "outcome",
    "hangup_cause", "hangup_cause_text", "last_event_seq",
)  # fmt: skip
CALL_STAMPS = (7, 8, 9)
EVENT_COLUMNS = ("call_id", "seq", "type", "at", "agent_id", "data")
EVENT_STAMPS = (3,)
MESSAGE_COLUMNS = ("call_id", "customer_id", "caller_number", "file", "duration_s", "created_at")
MESSAGE_STAMPS = (5,)
# The mix of a day: share of the calls, by outcome.
MIX = (
    ("answered", 0.85),
    ("abandoned", 0.08),
    ("message", 0.04),
    ("no_message", 0.01),
    ("rejected", 0.01),
    ("unknown_number", 0.01),
)
UNKNOWN_DID = "4729999999"


@dataclass
class Expected:
    """One customer's daily figures, worked out while the calls are made (integers)."""

    offered: int = 0
    answered: int = 0
    answered_within_12s: int = 0
    answered_within_20s: int = 0
    short_abandons: int = 0
    lost: int = 0
    messages: int = 0
    wait_us: int = 0
    longest_wait_us: int = 0
    talk_us: int = 0

    def offer(self, wait_us: int) -> None:
        self.offered += 1
        self.wait_us += wait_us
        self.longest_wait_us = max(self.longest_wait_us, wait_us)

    def mismatches(self, stored: dict[str, Any]) -> list[str]:
        """What in ``stored`` (``PeriodFigures.to_dict()``) differs from these figures."""
        want: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if not f.name.endswith("_us")
        }
        if self.offered:
            want["avg_wait_s"] = self.wait_us / (self.offered * _S)
            want["longest_wait_s"] = self.longest_wait_us / _S
        if self.answered:
            want["avg_talk_s"] = self.talk_us / (self.answered * _S)
        return [
            f"{key}: stored {stored.get(key)!r}, made {value!r}"
            for key, value in want.items()
            if stored.get(key) != value
        ]


@dataclass
class Rows:
    """One chunk of rows in the column orders above; instants are naive UTC."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    messages: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class SyntheticDay:
    """N calls of one local day for the given customers, in order of arrival.

    ``expected`` and ``outcomes`` are complete once ``chunks()`` has been consumed.
    """

    calls: int
    customers: dict[int, str]  # id -> DID
    agents: list[int]
    day: dt.date = DAY
    seed: int = 1
    expected: dict[int, Expected] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)

    def chunks(self, size: int = CHUNK) -> Iterator[Rows]:
        rng = random.Random(self.seed)
        zone = ZoneInfo(TIMEZONE)
        start, end, office_start, office_end = (
            dt.datetime.combine(self.day + dt.timedelta(days=d), dt.time(h), tzinfo=zone)
            .astimezone(dt.UTC)
            .replace(tzinfo=None)
            for d, h in ((0, 0), (1, 0), (0, 8), (0, 16))
        )
        day_us = (end - start) // _US
        office = ((office_start - start) // _US, (office_end - start) // _US)
        # Four calls in five during office hours, the rest at any time of the day.
        arrivals = sorted(
            rng.randrange(*office) if rng.random() < 0.8 else rng.randrange(day_us)
            for _ in range(self.calls)
        )
        self.expected = {c: Expected() for c in self.customers}
        self.outcomes = Counter()
        kinds, weights = zip(*MIX, strict=True)
        customer_ids = list(self.customers)
        rows = Rows()
        for call_id, offset in enumerate(arrivals, start=1):
            kind = rng.choices(kinds, weights)[0]
            customer = None if kind == "unknown_number" else rng.choice(customer_ids)
            self._call(rows, rng, call_id, start + offset * _US, kind, customer)
            if len(rows.calls) == size:
                yield rows
                rows = Rows()
        if rows.calls:
            yield rows

    def _call(
        self,
        rows: Rows,
        rng: random.Random,
        call_id: int,
        arrived: dt.datetime,
        kind: str,
        customer: int | None,
    ) -> None:
        self.outcomes[kind] += 1
        did = UNKNOWN_DID if customer is None else self.customers[customer]
        caller = f"479{rng.randrange(10**7):07d}"
        events: list[tuple[str, int, int | None, str]] = [
            ("arrived", 0, None, f'{{"dialled": "{did}", "caller": "{caller}"}}')
        ]
        agent = answered_us = None
        if kind == "answered":
            # Mostly short waits, up to 40 s: SL12 near 80 %, SL20 near 90 %.
            wait_us = int(min(40.0, rng.expovariate(1 / 8)) * _S)
            answered_us = wait_us
            ended_us = wait_us + rng.randrange(10 * _S, 600 * _S)
            agent = rng.choice(self.agents)
            events += [
                ("offered", 0, agent, "{}"),
                ("agent_answered", wait_us, agent, "{}"),
                ("answered", wait_us, agent, "{}"),
            ]
        elif kind == "abandoned":
            ended_us = wait_us = rng.randrange(60 * _S)  # short abandons and lost calls
            if rng.random() < 0.5:
                agent = rng.choice(self.agents)
                events.append(("offered", 0, agent, "{}"))
        elif kind in ("message", "no_message"):
            # Nobody free (at once) or the customer's maximum wait of 45 s.
            maximum = rng.random() < 0.6
            wait_us = 45 * _S if maximum else rng.randrange(5 * _S)
            reason = "max_wait" if maximum else "no_agent"
            events.append(("message_capture", wait_us, None, f'{{"reason": "{reason}"}}'))
            record_us = rng.randrange(5 * _S, 60 * _S) if kind == "message" else 0
            ended_us = wait_us + 2 * _S + record_us  # prompt and beep, then the recording
            if kind == "message":
                rows.messages.append(
                    (call_id, customer, caller, f"/var/lib/televikar-pbx/messages/{customer}/"
                     f"{call_id}.wav", record_us / _S, arrived + ended_us * _US)
                )  # fmt: skip
        else:  # rejected (the closed announcement) or unknown_number
            ended_us = rng.randrange(1 * _S, 8 * _S)
            if kind == "rejected":
                events.append(("announcement", 0, None, '{"announcement": "closed"}'))
        events.append(("ended", ended_us, None, f'{{"outcome": "{kind}"}}'))
        rows.events.extend(
            (call_id, seq, type_, arrived + at_us * _US, agent_id, data)
            for seq, (type_, at_us, agent_id, data) in enumerate(events, start=1)
        )
        rows.calls.append(
            (call_id, f"1764000000.{call_id}", f"1764000000.{call_id}", customer, did, caller,
             None, arrived, None if answered_us is None else arrived + answered_us * _US,
             arrived + ended_us * _US, agent, kind, 16, "Normal Clearing", len(events))
        )  # fmt: skip
        if customer is not None and kind != "rejected":
            tally = self.expected[customer]
            tally.offer(wait_us)
            if kind == "answered":
                tally.answered += 1
                tally.answered_within_12s += wait_us <= 12 * _S
                tally.answered_within_20s += wait_us <= 20 * _S
                tally.talk_us += ended_us - wait_us
            elif kind == "abandoned":
                if wait_us <= 12 * _S:
                    tally.short_abandons += 1
                else:
                    tally.lost += 1
            else:
                tally.messages += 1


# --- databases -------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="televikar-bench-") as directory:
        yield f"sqlite+aiosqlite:///{Path(directory) / 'televikar.sqlite3'}"


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new database next to ``admin_url``'s, dropped afterwards whatever happens."""
    admin = make_url(admin_url)
    name = f"televikar_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(
            _pg_execute(
                admin,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE datname = '{name}' AND usename = current_user",
                f'DROP DATABASE IF EXISTS "{name}"',
            )
        )


async def _pg_connect(url: URL) -> asyncpg.Connection:
    return await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port or 5432,
        database=url.database,
        timeout=10,
    )


async def _pg_execute(url: URL, *statements: str) -> None:
    conn = await _pg_connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def add_directory(url: str, customers: int) -> tuple[dict[int, str], list[int]]:
    """K customers in Europe/Oslo and agents answering for all of them, the real way."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            repo = DirectoryRepository(session)
            dids: dict[int, str] = {}
            for n in range(1, customers + 1):
                did = f"47210{n:05d}"
                customer = await repo.add_customer(
                    f"Kunde {n:02d} AS", f"Kunde {n:02d}", [did], timezone=TIMEZONE
                )
                dids[customer.id] = did
            agents = [
                (await repo.add_agent(f"Agent {n}", f"agent{n}", list(dids))).id
                for n in range(1, AGENTS + 1)
            ]
            return dids, agents
    finally:
        await engine.dispose()


def _stamped(rows: list[tuple[Any, ...]], at: Sequence[int], stamp: Any) -> list[tuple[Any, ...]]:
    def one(row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for i in at:
            if values[i] is not None:
                values[i] = stamp(values[i])
        return tuple(values)

    return [one(row) for row in rows]


def _sqlite_stamp(value: dt.datetime) -> str:
    # What SQLAlchemy's SQLite DATETIME stores (UTCDateTime hands it naive UTC).
    return value.isoformat(" ", "microseconds")


def _insert(columns: Sequence[str], table: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def insert_sqlite(url: str, day: SyntheticDay) -> None:
    con = sqlite3.connect(make_url(url).database or "")
    try:
        con.execute("PRAGMA synchronous = OFF")  # the load only; the job uses its own
        for rows in day.chunks():
            with con:
                con.executemany(
                    _insert(CALL_COLUMNS, "calls"),
                    _stamped(rows.calls, CALL_STAMPS, _sqlite_stamp),
                )
                con.executemany(
                    _insert(EVENT_COLUMNS, "call_events"),
                    _stamped(rows.events, EVENT_STAMPS, _sqlite_stamp),
                )
                con.executemany(
                    _insert(MESSAGE_COLUMNS, "messages"),
                    _stamped(rows.messages, MESSAGE_STAMPS, _sqlite_stamp),
                )
    finally:
        con.close()


async def insert_postgres(url: str, day: SyntheticDay) -> None:
    def aware(value: dt.datetime) -> dt.datetime:
        return value.replace(tzinfo=dt.UTC)

    conn = await _pg_connect(make_url(url))
    try:
        for rows in day.chunks():
            async with conn.transaction():
                for table, columns, stamps, records in (
                    ("calls", CALL_COLUMNS, CALL_STAMPS, rows.calls),
                    ("call_events", EVENT_COLUMNS, EVENT_STAMPS, rows.events),
                    ("messages", MESSAGE_COLUMNS, MESSAGE_STAMPS, rows.messages),
                ):
                    await conn.copy_records_to_table(
                        table, records=_stamped(records, stamps, aware), columns=columns
                    )
        # Explicit call ids bypassed the sequence; a live database is analysed by autovacuum.
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('calls', 'id'), max(id)) FROM calls"
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


# --- the job ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One run of the job: wall and CPU seconds, and the process's peak RSS in bytes."""

    seconds: float
    cpu_seconds: float
    peak_rss: int


def run_nightly(url: str, day: dt.date) -> Run:
    """``televikar-pbx sla nightly --date DAY`` on ``url``, as cron runs it (``cli.main``).
    The peak RSS is this process's: the job's own when it runs in a fresh process."""
    from televikar_pbx.cli import main

    saved = {k: os.environ.get(k) for k in ("TELEVIKAR_DATABASE_URL", "TELEVIKAR_ENV_FILE")}
    os.environ["TELEVIKAR_DATABASE_URL"] = url
    os.environ["TELEVIKAR_ENV_FILE"] = os.devnull  # not a file: no installation's settings
    try:
        with contextlib.redirect_stdout(None):
            start, cpu = time.perf_counter(), time.process_time()
            code = main(["sla", "nightly", "--date", day.isoformat()])
            run = Run(
                time.perf_counter() - start,
                time.process_time() - cpu,
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if code != 0:
        raise RuntimeError(f"sla nightly exited {code}")
    return run


def _run_nightly_fresh(url: str, day: dt.date) -> Run:
    # What the child raises must pickle back to the parent (an argparse error would not).
    try:
        return run_nightly(url, day)
    except BaseException:
        raise RuntimeError(traceback.format_exc()) from None


async def stored_mismatches(url: str, day: SyntheticDay) -> list[str]:
    """Each customer's stored day against the generated mix; its hours must add up."""
    engine = make_engine(url)
    problems: list[str] = []
    try:
        repo = SlaRepository(make_sessionmaker(engine))
        for customer, expected in day.expected.items():
            days = await repo.aggregates(customer, "day", day.day, day.day)
            hours = await repo.aggregates(customer, "hour", day.day, day.day)
            if len(days) != 1 or not hours:
                problems.append(f"customer {customer}: {len(days)} days, {len(hours)} hours")
                continue
            problems += [f"customer {customer}: {m}" for m in expected.mismatches(days[0].figures)]
            if sum(h.figures["offered"] for h in hours) != expected.offered:
                problems.append(f"customer {customer}: the hours do not add up to the day")
    finally:
        await engine.dispose()
    return problems


@dataclass(frozen=True)
class Result:
    backend: str
    calls: int
    insert_s: float
    job: Run
    outcomes: dict[str, int]
    problems: list[str]


def bench(
    url: str, calls: int, customers: int, *, day: dt.date = DAY, fresh: bool = True
) -> Result:
    """Migrate the empty database at ``url``, load the day, time the job, check it.
    ``fresh``: run the job in a new process (else in this one)."""
    backend = make_url(url).get_backend_name()
    migrate.upgrade(url)
    dids, agents = asyncio.run(add_directory(url, customers))
    synthetic = SyntheticDay(calls, dids, agents, day)
    start = time.perf_counter()
    if backend == "sqlite":
        insert_sqlite(url, synthetic)
    else:
        asyncio.run(insert_postgres(url, synthetic))
    insert_s = time.perf_counter() - start
    if fresh:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            job = pool.submit(_run_nightly_fresh, url, day).result()
    else:
        job = run_nightly(url, day)
    problems = asyncio.run(stored_mismatches(url, synthetic))
    return Result(backend, calls, insert_s, job, dict(synthetic.outcomes), problems)


def table(results: Sequence[Result]) -> str:
    head = ("backend", "calls", "insert s", "aggregate s", "CPU s", "calls/s", "peak RSS")
    rows = [
        (
            r.backend,
            f"{r.calls:,}",
            f"{r.insert_s:.1f}",
            f"{r.job.seconds:.2f}",
            f"{r.job.cpu_seconds:.2f}",
            f"{r.calls / r.job.seconds:,.0f}",
            f"{r.job.peak_rss / 2**20:,.0f} MiB",
        )
        for r in results
    ]
    widths = [max(map(len, column)) for column in zip(head, *rows, strict=True)]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in (head, *rows)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time `televikar-pbx sla nightly` on one day of N synthetic calls."
    )
    parser.add_argument("--calls", type=int, default=1_000_000, metavar="N", help="default 1e6")
    parser.add_argument("--customers", type=int, default=5, metavar="K", help="default 5")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument(
        "--date", type=dt.date.fromisoformat, default=DAY, help=f"the local day, default {DAY}"
    )
    parser.add_argument(
        "--pg-url", default=os.environ.get(PG_URL_ENV), help=f"default: ${PG_URL_ENV}"
    )
    args = parser.parse_args(argv)
    if args.calls < 1 or args.customers < 1:
        parser.error("--calls and --customers must be at least 1")
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    if "postgres" in backends and not args.pg_url:
        parser.error(f"PostgreSQL needs --pg-url or ${PG_URL_ENV}")

    print(
        f"sla nightly --date {args.date}: {args.calls:,} calls, {args.customers} customers; "
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    results = []
    for backend in backends:
        database = sqlite_database() if backend == "sqlite" else postgres_database(args.pg_url)
        with database as url:
            result = bench(url, args.calls, args.customers, day=args.date)
        results.append(result)
        mix = ", ".join(f"{k} {v:,}" for k, v in sorted(result.outcomes.items()))
        print(f"{result.backend}: {mix}", flush=True)
        for problem in result.problems:
            print(f"{result.backend}: WRONG {problem}", file=sys.stderr)
    print(table(results))
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

"""How long the staffing plan takes for a week of hours (issue 17: under 5 s).

    .venv/bin/python benchmarks/staffing_plan.py                 # 40 customers, 8 weeks
    .venv/bin/python benchmarks/staffing_plan.py --customers 80 --weeks 12
    .venv/bin/python benchmarks/staffing_plan.py --database    # and the command on SQLite

A synthetic service in memory (the model is pure, the database read is the SLA report's
and is measured by benchmarks/sla_job.py): K customers in Europe/Oslo, each with a
weekday profile (busy 08-17, quiet evenings, some open around the clock, some not at
weekends), Poisson arrivals, exponential talk and patience, a wait drawn per call; and
40 agents, a quarter of them serving only half of the customers. The history is
``--weeks`` weeks before Monday 16 November 2026; the plan is that week (168 hours).
Timed apart: building the customers' profiles from the calls (``profile_of``) and the
plan itself (``staffing_plan``). Checks that every hour with calls met every customer's
targets or is marked unreachable, so a fast but wrong plan fails.

``--database`` also runs the real command, ``televikar-pbx staffing plan --format json``
(``cli.main``, in this process), on a SQLite file migrated by the project's migrations,
with the same customers and agents added through the repositories and the same calls
bulk-inserted (timed apart); the command's time includes reading them back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from televikar_pbx.cli import main as cli_main
from televikar_pbx.db import migrate
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.calendar import Agreement, Calendar, OpeningHours
from televikar_pbx.domain.directory import Agent, Customer
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts
from televikar_pbx.domain.staffing.plan import staffing_plan
from televikar_pbx.domain.staffing.profile import profile_of

TIMEZONE = "Europe/Oslo"
PLAN_DAY = dt.date(2026, 11, 16)  # a Monday
S = dt.timedelta(seconds=1)


def customers(count: int, rng: random.Random) -> list[tuple[Customer, float]]:
    """(customer, peak calls per hour): a third open around the clock, the rest 08-17
    on weekdays (every fourth also Saturday 10-14)."""
    found = []
    for i in range(1, count + 1):
        if i % 3 == 0:
            hours: tuple[OpeningHours, ...] = ()
        else:
            hours = tuple(OpeningHours(d, dt.time(8), dt.time(17)) for d in range(5))
            if i % 4 == 0:
                hours += (OpeningHours(5, dt.time(10), dt.time(14)),)
        calendar = Calendar(TIMEZONE, Agreement(dt.date(2024, 1, 1)), hours=hours)
        found.append(
            (Customer(i, f"customer{i}", f"Customer {i}", calendar=calendar), rng.uniform(2, 25))
        )
    return found


def rate_at(local: dt.datetime, peak: float) -> float:
    if local.weekday() >= 5:
        return 0.3 * peak
    if 8 <= local.hour < 17:
        return peak * (1.0 if local.hour in (9, 10, 13, 14) else 0.7)
    return 0.1 * peak


def history(
    pairs: list[tuple[Customer, float]], weeks: int, rng: random.Random
) -> dict[int, list[CallFacts]]:
    zone = ZoneInfo(TIMEZONE)
    start = dt.datetime.combine(PLAN_DAY - dt.timedelta(weeks=weeks), dt.time(0), zone)
    end = dt.datetime.combine(PLAN_DAY, dt.time(0), zone)
    calls: dict[int, list[CallFacts]] = {}
    for customer, peak in pairs:
        patience = rng.uniform(30, 180)
        talk = rng.uniform(90, 240)
        mine = []
        at = start.astimezone(dt.UTC)
        while at < end:
            local = at.astimezone(zone)
            hour_end = at + dt.timedelta(minutes=60 - local.minute, seconds=-local.second)
            rate = rate_at(local, peak) if customer.calendar.is_open(local) else 0.0
            if rate <= 0:
                at = hour_end
                continue
            at += rng.expovariate(rate / 3600) * S
            if at >= hour_end:
                at = hour_end
                continue
            wait, gives_up = rng.expovariate(1 / 8), rng.expovariate(1 / patience)
            if gives_up < wait:
                mine.append(CallFacts(at, None, at + gives_up * S, Outcome.ABANDONED))
            else:
                answered = at + wait * S
                mine.append(
                    CallFacts(
                        at, answered, answered + rng.expovariate(1 / talk) * S, Outcome.ANSWERED, 1
                    )
                )
        calls[customer.id] = mine
    return calls


async def add_directory(
    url: str, pairs: list[tuple[Customer, float]], agents: tuple[Agent, ...]
) -> None:
    """The customers and agents, the real way (their ids come out as 1..K, 1..N)."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            repo = DirectoryRepository(session)
            for customer, _ in pairs:
                added = await repo.add_customer(
                    customer.name, customer.display_name, [f"47210{customer.id:05d}"],
                    timezone=TIMEZONE, agreement=customer.calendar.agreement,
                    hours=customer.calendar.hours,
                )  # fmt: skip
                assert added.id == customer.id
            for agent in agents:
                await repo.add_agent(agent.name, agent.endpoint, sorted(agent.customer_ids))
    finally:
        await engine.dispose()


def insert_calls(path: Path, calls: dict[int, list[CallFacts]]) -> None:
    """The calls, as the call service leaves them (naive UTC text, as SQLAlchemy stores)."""

    def stamp(value: dt.datetime | None) -> str | None:
        if value is None:
            return None
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    every = [(customer_id, c) for customer_id, mine in calls.items() for c in mine]
    rows = [
        (f"1763000000.{n}", f"1763000000.{n}", customer_id, f"47210{customer_id:05d}",
         stamp(c.arrived_at), stamp(c.answered_at), stamp(c.ended_at), c.agent_id, c.outcome.value)
        for n, (customer_id, c) in enumerate(every)
    ]  # fmt: skip
    con = sqlite3.connect(path)
    try:
        with con:
            con.executemany(
                "INSERT INTO calls (channel_id, linkedid, customer_id, dialled_number, "
                "arrived_at, answered_at, ended_at, agent_id, outcome, last_event_seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                rows,
            )
    finally:
        con.close()


def run_command(
    pairs: list[tuple[Customer, float]],
    agents: tuple[Agent, ...],
    calls: dict[int, list[CallFacts]],
    weeks: int,
    expected_agent_hours: int,
) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "televikar.sqlite3"
        url = f"sqlite+aiosqlite:///{path}"
        loaded = time.perf_counter()
        migrate.upgrade(url)
        asyncio.run(add_directory(url, pairs, agents))
        insert_calls(path, calls)
        print(f"database: migrated and loaded in {time.perf_counter() - loaded:.1f} s")
        os.environ["TELEVIKAR_DATABASE_URL"] = url
        os.environ["TELEVIKAR_ENV_FILE"] = str(Path(folder) / "no.env")
        os.environ["TELEVIKAR_NOW"] = dt.datetime.combine(PLAN_DAY, dt.time(0), dt.UTC).isoformat()
        last = PLAN_DAY + dt.timedelta(days=6)
        argv = ["staffing", "plan", "--from", str(PLAN_DAY), "--to", str(last),
                "--history", str(weeks), "--format", "json"]  # fmt: skip
        out = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(out):
            code = cli_main(argv)
        took = time.perf_counter() - started
    hours = json.loads(out.getvalue())["hours"] if code == 0 else []
    agent_hours = sum(h["agents"] for h in hours)
    print(f"command: televikar-pbx {' '.join(argv)}: exit {code}, {len(hours)} hours, "
          f"{took:.2f} s  (target < 5 s)")  # fmt: skip
    if agent_hours != expected_agent_hours:
        print(
            f"FAILED: the command planned {agent_hours} agent hours, "
            f"in memory {expected_agent_hours}"
        )
        return 1
    return 0 if code == 0 and len(hours) == 168 and took < 5 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--database", action="store_true", help="also the command on SQLite")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    pairs = customers(args.customers, rng)
    ids = [c.id for c, _ in pairs]
    half = frozenset(ids[: len(ids) // 2])
    agents = tuple(
        Agent(a, f"agent{a}", f"agent{a}", half if a % 4 == 0 else frozenset(ids))
        for a in range(1, args.agents + 1)
    )
    made = time.perf_counter()
    calls = history(pairs, args.weeks, rng)
    total_calls = sum(len(c) for c in calls.values())
    print(f"history: {total_calls:,} calls of {args.customers} customers over {args.weeks} weeks "
          f"(generated in {time.perf_counter() - made:.1f} s)")  # fmt: skip

    zone = ZoneInfo(TIMEZONE)
    start = dt.datetime.combine(PLAN_DAY - dt.timedelta(weeks=args.weeks), dt.time(0), zone)
    end = dt.datetime.combine(PLAN_DAY, dt.time(0), zone)
    t0 = time.perf_counter()
    profiles = [profile_of(c, calls[c.id], start=start, end=end) for c, _ in pairs]
    t1 = time.perf_counter()
    plan = staffing_plan(
        profiles,
        first_day=PLAN_DAY,
        last_day=PLAN_DAY + dt.timedelta(days=6),
        timezone=TIMEZONE,
        agents=agents,
    )
    t2 = time.perf_counter()

    busy = [h for h in plan if h.figures is not None]
    wrong = [h.period.label for h in busy if h.reachable and not all(c.meets for c in h.customers)]
    agent_hours, peak = sum(h.agents for h in plan), max(h.agents for h in plan)
    print(
        f"plan: {len(plan)} hours, {len(busy)} with calls, {agent_hours} agent hours, peak {peak}"
    )
    print(
        f"profiles: {t1 - t0:.2f} s   plan: {t2 - t1:.2f} s   "
        f"total: {t2 - t0:.2f} s  (target < 5 s)"
    )
    if wrong:
        print(f"FAILED: hours whose customers do not all meet their targets: {wrong[:5]}")
        return 1
    if args.database and run_command(pairs, agents, calls, args.weeks, agent_hours):
        return 2
    return 0 if t2 - t0 < 5 else 2


if __name__ == "__main__":
    sys.exit(main())

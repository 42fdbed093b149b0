"""How long ``staffing replay`` takes for a day of N calls across K customers (issue 17:
50,000 calls across 40 customers in under 10 s). Figures: docs/performance.md.

    .venv/bin/python benchmarks/staffing_replay.py                  # 50,000 calls, 40 customers
    .venv/bin/python benchmarks/staffing_replay.py --calls 5000 --agents 20 --profile

What it times is the command's work after the database read: the recorded calls become
replayed callers (``callers_of``), run through the desk (``replay``: ``acd.Desk`` with a
simulated clock) and both sides' figures are computed (``figures``: ``sla_reports`` per
customer and for the service), as ``staffing replay`` does. The day is synthetic, with a
fixed seed: arrivals from 07:00 to 19:00 local, twice as dense 09:00-15:00; talk
exponential (mean 90 s, at least 5 s); 85 % answered after 0-20 s, 10 % abandoned after
1-60 s, 5 % messages after the customer's maximum wait (45 s). A agents serve every
customer all day; customers' wrap-up 10 s. The replay must offer every call and answer
most of them, or the run fails (exit status 1): a fast but wrong replay is no result.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import resource
import sys
import time
from datetime import UTC, date, datetime, timedelta

from televikar_pbx.domain.calendar import Agreement, Calendar
from televikar_pbx.domain.directory import Customer, CustomerRules
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts
from televikar_pbx.domain.staffing.replay import (
    ReplayOptions,
    agents_for_all,
    figures,
    replay,
)
from televikar_pbx.domain.staffing.replay_callers import (
    RecordedCall,
    callers_of,
    recorded_facts,
)

DAY = date(2026, 11, 24)  # an ordinary Tuesday
TIMEZONE = "Europe/Oslo"
START = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # local midnight
OPEN = START + timedelta(hours=7)
GOAL_S = 10.0


def synthetic_day(calls: int, customers: int, seed: int = 1) -> list[RecordedCall]:
    rng = random.Random(seed)
    # 07-09 and 15-19 at weight 1, 09-15 at weight 2: 4 + 12 + ... = 20 weighted hours.
    hours = [1, 1, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1]
    slots = [h for h, weight in enumerate(hours) for _ in range(weight)]
    arrivals = sorted(
        OPEN + timedelta(hours=rng.choice(slots), microseconds=rng.randrange(3_600_000_000))
        for _ in range(calls)
    )
    day = []
    for n, arrived in enumerate(arrivals):
        kind = rng.random()
        customer = 1 + rng.randrange(customers)
        if kind < 0.85:
            answered = arrived + timedelta(seconds=rng.uniform(0, 20))
            talk = timedelta(seconds=5 + rng.expovariate(1 / 85))
            facts = CallFacts(arrived, answered, answered + talk, Outcome.ANSWERED, 1)
        elif kind < 0.95:
            ended = arrived + timedelta(seconds=rng.uniform(1, 60))
            facts = CallFacts(arrived, None, ended, Outcome.ABANDONED)
        else:
            overflowed = arrived + timedelta(seconds=45)
            ended = overflowed + timedelta(seconds=rng.uniform(5, 60))
            facts = CallFacts(arrived, None, ended, Outcome.MESSAGE, None, overflowed)
        day.append(RecordedCall(str(n), customer, facts))
    return day


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--agents", type=int, default=150)
    parser.add_argument("--profile", action="store_true", help="cProfile: the top 25 by time")
    args = parser.parse_args(argv)

    calendar = Calendar(agreement=Agreement(date(2026, 1, 1)))
    rules = CustomerRules(wrap_up_s=10, max_wait_s=45)
    customers = [
        Customer(n, f"Kunde {n}", f"Kunde {n}", rules=rules, calendar=calendar)
        for n in range(1, args.customers + 1)
    ]
    day = synthetic_day(args.calls, args.customers)
    staff = agents_for_all(args.agents, customers)
    options = ReplayOptions(ring_s=2.0)

    profile = cProfile.Profile() if args.profile else None
    started_cpu, started = time.process_time(), time.perf_counter()
    if profile:
        profile.enable()
    callers = callers_of(day)
    result = replay(callers, customers, staff, START, options)
    replayed = figures(result.facts, customers, {}, DAY, DAY, TIMEZONE)
    recorded = figures(recorded_facts(day), customers, {}, DAY, DAY, TIMEZONE)
    if profile:
        profile.disable()
    wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu

    mine, theirs = replayed.service["day"].total, recorded.service["day"].total
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"staffing replay: {args.calls:,} calls, {args.customers} customers, {args.agents} "
        f"agents: {wall:.2f} s wall ({cpu:.2f} s CPU), {args.calls / wall:,.0f} calls/s, "
        f"peak RSS {rss_mib:.0f} MiB (goal: {GOAL_S:g} s for 50,000 calls)"
    )
    for name, total in (("recorded", theirs), ("replayed", mine)):
        print(
            f"  {name}: offered {total.offered:,}, answered {total.answered:,}, "
            f"SL12 {total.sl12_pct:.1f} %, SL20 {total.sl20_pct:.1f} %, "
            f"lost {total.lost_pct:.1f} %, messages {total.messages:,}, "
            f"average wait {total.avg_wait_s:.1f} s"
        )
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    if mine.offered != args.calls or mine.answered < args.calls // 2:
        print("the replay did not offer every call or answered too few", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

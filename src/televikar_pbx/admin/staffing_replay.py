"""``televikar-pbx staffing replay``: a recorded day run again through the desk with other
agents, its SLA figures beside the recorded ones (docs/staffing.md, "Replay").

The day's calls come from the call log (``CallRepository.ended_calls_of_day``), the
customers and their targets from the directory, the agents from ``--agents`` or
``--roster``; the simulation and the figures are ``domain.staffing.replay``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from televikar_pbx.admin import render, session
from televikar_pbx.admin.calls import option_date
from televikar_pbx.db.directory_repo import DEFAULT_TIMEZONE
from televikar_pbx.db.repositories import CallRepository, DirectoryRepository
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.reporting import ReportSettings
from televikar_pbx.domain.sla import By, CallFacts, PeriodFigures, SlaReport
from televikar_pbx.domain.staffing.replay import (
    Figures,
    ReplayOptions,
    agents_for_all,
    figures,
    replay,
)
from televikar_pbx.domain.staffing.replay_callers import (
    PATIENCE_MODELS,
    RecordedCall,
    callers_of,
    recorded_call,
    recorded_facts,
    ring_delay_s,
)
from televikar_pbx.domain.staffing.replay_roster import parse_roster, roster_staff
from televikar_pbx.errors import ConfigError
from televikar_pbx.reports.call_log import local_days
from televikar_pbx.reports.table import table
from televikar_pbx.settings import Settings

FORMATS = ("table", "json")
MAX_DAYS = 31


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``replay`` to the ``staffing`` command group's actions."""
    parser = sub.add_parser(
        "replay",
        help="a recorded day run again with other agents: SLA figures side by side",
        description="Run the real arrivals of --date (to --to, included) through the "
        "desk's own rules with a simulated clock and --agents N agents serving every "
        "customer all day, or the agents of --roster FILE; print the SLA figures of the "
        "replay beside the recorded ones (sla report's code), per hour and in total. "
        "Assumptions and how to read it: docs/staffing.md, Replay.",
    )
    parser.add_argument("--date", required=True, metavar="DATE", help="the day, YYYY-MM-DD")
    parser.add_argument("--to", dest="to_date", metavar="DATE", help="last day (included)")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--agents", type=int, metavar="N", help="N agents, every customer, all day")
    who.add_argument(
        "--roster", metavar="FILE", help="CSV from,agents[,customers] (docs/staffing.md)"
    )
    parser.add_argument(
        "--ring-s",
        type=float,
        metavar="S",
        help="how long an offer rings before the agent answers (default: the median of "
        "the recorded days' offers to answers)",
    )
    parser.add_argument(
        "--patience",
        choices=PATIENCE_MODELS,
        default="infinite",
        help="censored patience of callers who did not hang up: infinite (default: they "
        "wait for an agent or the maximum wait) or km (drawn from the day's Kaplan-Meier "
        "estimate beyond the wait they showed)",
    )
    parser.add_argument("--seed", type=int, default=0, help="for --patience km (default 0)")
    parser.add_argument("--customer", metavar="C", help="show this customer's hours (name or id)")
    parser.add_argument(
        "--timezone",
        default=DEFAULT_TIMEZONE,
        help=f"of the roster and of every customer's hours together (default {DEFAULT_TIMEZONE})",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="table (default); json")
    parser.set_defaults(func=cmd_replay)


@dataclass(frozen=True, slots=True)
class _Day:
    customers: tuple[Customer, ...]
    settings: dict[int, ReportSettings]
    calls: list[RecordedCall]
    shown: Customer | None  # --customer


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    first = option_date("--date", args.date)
    last = first if args.to_date is None else option_date("--to", args.to_date)
    if not first <= last <= first + dt.timedelta(days=MAX_DAYS - 1):
        raise ConfigError(f"--to must be from --date to {MAX_DAYS - 1} days after it")
    if args.agents is not None and args.agents < 0:
        raise ConfigError(f"--agents must be 0 or more, got {args.agents}")
    try:
        roster = None if args.roster is None else parse_roster(_read(args.roster))
        ZoneInfo(args.timezone)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise ConfigError(str(exc) or f"unknown time zone {args.timezone!r}") from None

    async def work(repo: DirectoryRepository) -> _Day:
        directory = await repo.load()
        shown = None if args.customer is None else await repo.find_customer(args.customer)
        start, end = _span(directory.customers, args.timezone, first, last)
        rows = await CallRepository(repo.source).ended_calls_of_day(start, end)
        known = {c.id for c in directory.customers}
        calls = [recorded_call(cid, times, offered) for cid, times, offered in rows if cid in known]
        return _Day(directory.customers, await repo.all_report_settings(), calls, shown)

    day = session.run(settings, work)
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    try:
        options = ReplayOptions(
            ring_s=ring_delay_s(day.calls) if args.ring_s is None else args.ring_s,
            patience=args.patience,
            seed=args.seed,
        )
        if roster is None:
            staff = agents_for_all(args.agents, day.customers)
        else:
            names = {c.name: c.id for c in day.customers}
            staff = roster_staff(roster, names, days, args.timezone)
        start = _span(day.customers, args.timezone, first, last)[0]
        callers = callers_of(day.calls, options.patience, options.seed)
        result = replay(callers, day.customers, staff, start, options)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    def figures_of(facts: Mapping[int, Sequence[CallFacts]]) -> Figures:
        return figures(facts, day.customers, day.settings, first, last, args.timezone)

    recorded, replayed = figures_of(recorded_facts(day.calls)), figures_of(result.facts)
    about = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "timezone": args.timezone,
        "agents": args.agents,
        "roster": args.roster,
        "ring_s": options.ring_s,
        "patience": options.patience,
        "seed": options.seed,
        "calls": len(day.calls),
    }
    if args.format == "json":
        print(render.dumps(_json(about, day, recorded, replayed)))
    else:
        print(_text(about, day, recorded, replayed))
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--roster {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _span(
    customers: Sequence[Customer], timezone: str, first: dt.date, last: dt.date
) -> tuple[dt.datetime, dt.datetime]:
    """From the earliest start to the latest end of the local dates ``first``..``last``
    in every customer's time zone and ``timezone``."""
    spans = [local_days(tz, first, last) for tz in {timezone, *(c.timezone for c in customers)}]
    return min(s for s, _ in spans), max(e for _, e in spans)


# --- output --------------------------------------------------------------------------


def _json(about: dict[str, Any], day: _Day, recorded: Figures, replayed: Figures) -> Any:
    def both(ours: dict[By, SlaReport], theirs: dict[By, SlaReport]) -> dict[str, Any]:
        return {
            "recorded": {by: report.to_dict() for by, report in ours.items()},
            "replayed": {by: report.to_dict() for by, report in theirs.items()},
        }

    shown = [day.shown] if day.shown is not None else list(day.customers)
    return {
        **about,
        "service": both(recorded.service, replayed.service),
        "customers": [
            {
                "customer_id": c.id,
                "name": c.name,
                **both(recorded.customers[c.id], replayed.customers[c.id]),
            }
            for c in shown
        ],
    }


HEADERS = (
    "Period",
    "Offered",
    "SL12 % rec",
    "replay",
    "SL20 % rec",
    "replay",
    "Lost % rec",
    "replay",
    "Wait s rec",
    "replay",
)


def _text(about: dict[str, Any], day: _Day, recorded: Figures, replayed: Figures) -> str:
    if day.shown is None:
        whose, ours, theirs = "every customer", recorded.service, replayed.service
    else:
        whose = day.shown.name
        ours, theirs = recorded.customers[day.shown.id], replayed.customers[day.shown.id]
    count = about["agents"]
    agents = (
        f"{count} agent{'' if count == 1 else 's'} serving every customer all day"
        if about["roster"] is None
        else f"roster {about['roster']}"
    )
    days = about["from"] if about["from"] == about["to"] else f"{about['from']}..{about['to']}"
    lines = [
        f"Replay of {days}, {whose} ({about['timezone']}): {about['calls']} calls; {agents}; "
        f"ring {about['ring_s']:.2f} s; patience {about['patience']}",
        "",
    ]
    rows = [
        _row(a.period.label, a, b)
        for a, b in zip(ours["hour"].periods, theirs["hour"].periods, strict=True)
        if a.offered or b.offered
    ]
    rows += [
        _row(a.period.label, a, b)
        for a, b in zip(ours["day"].periods, theirs["day"].periods, strict=True)
    ]
    if len(ours["day"].periods) > 1:
        rows.append(_row("Total", ours["day"].total, theirs["day"].total))
    lines.append(table(HEADERS, rows, right=range(1, len(HEADERS))))
    if day.shown is None and len(day.customers) > 1:
        per_customer = [
            _row(
                c.name,
                recorded.customers[c.id]["day"].total,
                replayed.customers[c.id]["day"].total,
            )
            for c in day.customers
        ]
        lines += ["", table(("Customer", *HEADERS[1:]), per_customer, right=range(1, len(HEADERS)))]
    return "\n".join(lines)


def _row(label: str, recorded: PeriodFigures, replayed: PeriodFigures) -> list[str]:
    offered = str(recorded.offered)
    if replayed.offered != recorded.offered:  # calls not offered in reality, or the reverse
        offered += f"/{replayed.offered}"
    cells = [label, offered]
    for name in ("sl12_pct", "sl20_pct", "lost_pct", "avg_wait_s"):
        cells += [_one(getattr(recorded, name)), _one(getattr(replayed, name))]
    return cells


def _one(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"

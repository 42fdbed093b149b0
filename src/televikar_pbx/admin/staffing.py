"""``televikar-pbx staffing plan|backtest``: the options and the output.

``plan`` prints the agents needed per local hour of ``--from``..``--to`` to meet every
customer's targets, with the expected SL12/SL20/lost per hour (``reports.staffing``;
the model: ``domain.staffing``, docs/staffing.md). ``backtest`` compares, for past days,
the model's figures for the agents who were there with the measured ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from televikar_pbx.admin import render, session, staffing_replay
from televikar_pbx.admin.calls import option_date, write_bytes
from televikar_pbx.admin.sla import write_private
from televikar_pbx.clock import Clock
from televikar_pbx.db.directory_repo import DEFAULT_TIMEZONE
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.errors import ConfigError
from televikar_pbx.reports import csvout
from televikar_pbx.settings import Settings

if TYPE_CHECKING:
    from televikar_pbx.domain.staffing.backtest import Backtest
    from televikar_pbx.reports.staffing import StaffingPlan

# The model (numpy, scipy) is imported by the commands that run it, not by every command
# line start (tests/unit/test_cli_startup.py).
DEFAULT_HISTORY_WEEKS = 8


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "staffing", help="agents needed per hour (Erlang A), its backtest, a day replayed"
    )
    actions = parser.add_subparsers(dest="staffing_command", required=True, metavar="ACTION")

    planner = actions.add_parser(
        "plan",
        help="agents needed per hour to meet every customer's targets",
        description="For each local hour from --from to --to (both included): the agents "
        "needed so that every customer meets its SL12, SL20 and lost targets, with the "
        "expected figures and the customer that needs the most (Erlang A from the calls "
        "of the --history weeks before --from; docs/staffing.md).",
    )
    _range_options(planner)
    planner.add_argument(
        "--format",
        choices=("table", "csv", "json", "pdf"),
        default="table",
        help="table (default); csv (';', decimal comma); json; pdf with a chart of agents per hour",
    )
    planner.add_argument("--output", metavar="FILE", help="pdf only: write it to FILE")
    planner.set_defaults(func=cmd_plan)

    backtest = actions.add_parser(
        "backtest",
        help="the model's figures for past hours against the measured ones",
        description="For each local hour of the past days --from..--to: SL12, SL20 and "
        "lost as Erlang A predicts them for the calls offered and the agents present, next "
        "to the measured figures, with the error per hour and its mean absolute value.",
    )
    _range_options(backtest)
    backtest.add_argument("--format", choices=("table", "csv", "json"), default="table")
    backtest.set_defaults(func=cmd_backtest)
    staffing_replay.register(actions)  # admin/staffing_replay.py


def _range_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="from_date", required=True, metavar="DATE", help="first day")
    parser.add_argument(
        "--to", dest="to_date", required=True, metavar="DATE", help="last day (included)"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=DEFAULT_HISTORY_WEEKS,
        metavar="WEEKS",
        help=f"weeks of calls before --from to learn from (default {DEFAULT_HISTORY_WEEKS})",
    )
    parser.add_argument(
        "--timezone",
        default=DEFAULT_TIMEZONE,
        help=f"the plan's local hours (default {DEFAULT_TIMEZONE})",
    )


def _range(args: argparse.Namespace) -> tuple[dt.date, dt.date]:
    first, last = option_date("--from", args.from_date), option_date("--to", args.to_date)
    if first > last:
        raise ConfigError(f"--from {first} is after --to {last}")
    if args.history < 1:
        raise ConfigError(f"--history must be at least 1 week, got {args.history}")
    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--timezone: unknown time zone {args.timezone!r}") from None
    return first, last


def cmd_plan(settings: Settings, args: argparse.Namespace) -> int:
    from televikar_pbx.reports.staffing import PLAN_HEADERS, plan, plan_csv_rows, plan_text

    first, last = _range(args)
    if args.output is not None and args.format != "pdf":
        raise ConfigError("--output is for --format pdf only")
    if args.format == "pdf" and args.output is None and sys.stdout.isatty():
        raise ConfigError("--format pdf: give --output FILE, or redirect to a file")

    async def work(repo: DirectoryRepository) -> StaffingPlan:
        return await plan(repo.source, first, last, weeks=args.history, timezone=args.timezone)

    result = session.run(settings, work)
    if args.format == "pdf":
        # Imported here for start-up time only (fpdf2 and matplotlib take a second).
        from televikar_pbx.reports.staffing_pdf import render_staffing_pdf

        clock: Clock = args.clock
        data = render_staffing_pdf(result, generated_at=clock.now())
        if args.output is None:
            write_bytes(data)
        else:
            write_private(args.output, data)
    elif args.format == "json":
        print(render.dumps(result.to_dict()))
    elif args.format == "csv":
        write_bytes(csvout.encode(PLAN_HEADERS, plan_csv_rows(result)))
    else:
        print(plan_text(result))
    return 0


def cmd_backtest(settings: Settings, args: argparse.Namespace) -> int:
    from televikar_pbx.reports.staffing import (
        BACKTEST_HEADERS,
        backtest_dict,
        backtest_rows,
        backtest_text,
        run_backtest,
    )

    first, last = _range(args)

    async def work(repo: DirectoryRepository) -> Backtest:
        return await run_backtest(
            repo.source, first, last, weeks=args.history, timezone=args.timezone
        )

    result = session.run(settings, work)
    if args.format == "json":
        print(render.dumps(backtest_dict(result)))
    elif args.format == "csv":
        rows = [[c.replace(".", ",") for c in row] for row in backtest_rows(result)]
        write_bytes(csvout.encode(BACKTEST_HEADERS, rows))
    else:
        print(backtest_text(result))
    return 0

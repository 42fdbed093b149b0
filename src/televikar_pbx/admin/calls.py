"""``televikar-pbx calls list``: a customer's call log, in the customer's local time
(what it says and how: ``reports.call_log``)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any
from zoneinfo import ZoneInfo

from televikar_pbx.admin import parse, render, session
from televikar_pbx.db.calls_repo import CallLogEntry
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.directory import Customer
from televikar_pbx.errors import ConfigError
from televikar_pbx.reports import csvout
from televikar_pbx.reports.call_log import HEADERS, call_json, calls_of, cells
from televikar_pbx.settings import Settings

FORMATS = ("table", "csv", "json")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("calls", help="the call log")
    actions = parser.add_subparsers(dest="calls_command", required=True, metavar="ACTION")

    listing = actions.add_parser(
        "list",
        help="a customer's calls between two dates",
        description="Every call of one customer that arrived between two of its local "
        "dates (both included), in order of arrival, in its local time.",
    )
    listing.add_argument("--customer", required=True, metavar="C", help="name or id")
    listing.add_argument(
        "--from", dest="from_date", required=True, metavar="DATE", help="first day, YYYY-MM-DD"
    )
    listing.add_argument(
        "--to", dest="to_date", required=True, metavar="DATE", help="last day (included)"
    )
    listing.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default); csv for Excel (';', decimal comma, UTF-8 with BOM); json",
    )
    listing.set_defaults(func=cmd_list)


def option_date(option: str, text: str) -> dt.date:
    try:
        return parse.parse_date(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    first, last = option_date("--from", args.from_date), option_date("--to", args.to_date)
    if first > last:
        raise ConfigError(f"--from {first} is after --to {last}")

    async def work(repo: DirectoryRepository) -> tuple[Customer, list[CallLogEntry]]:
        customer = await repo.find_customer(args.customer)
        # session.run hands out the directory; the call log shares its transaction.
        return customer, await calls_of(repo.source, customer, first, last)

    customer, entries = session.run(settings, work)
    zone = ZoneInfo(customer.timezone)
    if args.format == "json":
        print(render.dumps([call_json(customer, entry, zone) for entry in entries]))
    elif args.format == "csv":
        write_bytes(csvout.encode(HEADERS, (cells(entry, zone) for entry in entries)))
    else:
        rows = ([_printable(cell) or "-" for cell in cells(entry, zone)] for entry in entries)
        print(render.table(HEADERS, rows))
    return 0


def _printable(cell: str | None) -> str:
    # A caller name comes from the caller's phone: no escape sequences to the terminal.
    return "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in cell or "")


def write_bytes(data: bytes) -> None:
    # Bytes as they are: the BOM and CRLF must reach the file whatever the locale.
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()

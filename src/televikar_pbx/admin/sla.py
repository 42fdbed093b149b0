"""``televikar-pbx sla report`` and ``sla nightly``: the options and the output.

``report`` prints a customer's SLA figures for local dates ``--from``..``--to``
(definitions: docs/metrics.md; read by ``reports.sla_figures``, shown by
``reports.sla_table``, the PDF by ``reports.pdf``). ``nightly`` stores the figures of the
days due (``reports.sla_figures.store_nightly``) in one transaction, then, unless
``--no-send``, e-mails the reports that are due (``reports send --due``), each recorded as
it goes. "Now" is the command line's clock (``TELEVIKAR_NOW``, ``clock.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import Any

from televikar_pbx.admin import render, session
from televikar_pbx.admin.calls import option_date, write_bytes
from televikar_pbx.admin.reports import send_due_reports
from televikar_pbx.clock import Clock
from televikar_pbx.db.calls_repo import CallLogEntry
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.sla import SlaReport
from televikar_pbx.errors import ConfigError
from televikar_pbx.reports import csvout
from televikar_pbx.reports.call_log import calls_of
from televikar_pbx.reports.sla_figures import CATCH_UP_DAYS, sla_figures, store_nightly
from televikar_pbx.reports.sla_table import CSV_HEADERS, csv_rows, report_text
from televikar_pbx.settings import Settings

FORMATS = ("table", "json", "csv", "pdf")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("sla", help="SLA figures against the customers' targets")
    actions = parser.add_subparsers(dest="sla_command", required=True, metavar="ACTION")

    report = actions.add_parser(
        "report",
        help="a customer's SLA figures by hour or day",
        description="Offered, answered, SL12, SL20, lost %%, short abandons, messages, "
        "waits and talk of one customer per local hour or day from --from to --to (both "
        "included), each judged against the customer's targets, with a total.",
    )
    report.add_argument("--customer", required=True, metavar="C", help="name or id")
    report.add_argument(
        "--from", dest="from_date", required=True, metavar="DATE", help="first day, YYYY-MM-DD"
    )
    report.add_argument(
        "--to", dest="to_date", required=True, metavar="DATE", help="last day (included)"
    )
    report.add_argument("--by", choices=("hour", "day"), default="day", help="default: day")
    report.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default); json; csv for Excel (';', decimal comma, UTF-8 with BOM); "
        "pdf: summary, chart, table and call log (docs/reports.md)",
    )
    report.add_argument(
        "--language", choices=("nb", "en"), help="pdf only: nb (Norwegian, default) or en"
    )
    report.add_argument(
        "--output", metavar="FILE", help="pdf only: write it to FILE (needed on a terminal)"
    )
    report.set_defaults(func=cmd_report)

    nightly = actions.add_parser(
        "nightly",
        help="store every customer's hourly and daily figures of the previous day",
        description="For each customer, compute and store the hourly and daily SLA "
        "figures of its previous local day, and of every day missed since the last stored "
        f"one (at most {CATCH_UP_DAYS} days back), in one transaction. With --date, that "
        "day only, for every customer. A stored period is replaced: re-running gives the "
        "same figures. Then, after that transaction, it e-mails the reports that are due "
        "(`reports send --due`, each recorded as it goes) unless --no-send; exit status 1 "
        "if one could not be sent or SMTP is not configured.",
    )
    nightly.add_argument("--date", metavar="DATE", help="this local day only, YYYY-MM-DD")
    nightly.add_argument(
        "--no-send",
        action="store_true",
        help="store the figures only; do not e-mail the reports that are due",
    )
    nightly.set_defaults(func=cmd_nightly)


# --- sla report ------------------------------------------------------------------------


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    first, last = option_date("--from", args.from_date), option_date("--to", args.to_date)
    if first > last:
        raise ConfigError(f"--from {first} is after --to {last}")
    _pdf_options(args)

    async def work(repo: DirectoryRepository) -> tuple[Customer, SlaReport, list[CallLogEntry]]:
        customer = await repo.find_customer(args.customer)
        report = (await sla_figures(repo, customer, first, last))[args.by]
        if args.format != "pdf":
            return customer, report, []
        return customer, report, await calls_of(repo.source, customer, first, last)

    customer, report, calls = session.run(settings, work)
    if args.format == "pdf":
        _write_pdf(args, customer, report, calls)
    elif args.format == "json":
        print(render.dumps({"customer_id": customer.id, **report.to_dict()}))
    elif args.format == "csv":
        write_bytes(csvout.encode(CSV_HEADERS, csv_rows(report)))
    else:
        print(report_text(customer, report))
    return 0


def _pdf_options(args: argparse.Namespace) -> None:
    """--language and --output go with --format pdf; a PDF is never sent to a terminal."""
    if args.format != "pdf":
        for option, value in (("--language", args.language), ("--output", args.output)):
            if value is not None:
                raise ConfigError(f"{option} is for --format pdf only")
    elif args.output is None and sys.stdout.isatty():
        raise ConfigError("--format pdf: give --output FILE, or redirect to a file")


def _write_pdf(
    args: argparse.Namespace, customer: Customer, report: SlaReport, calls: list[CallLogEntry]
) -> None:
    # Imported here for start-up time only: fpdf2 and matplotlib take a second to load,
    # and every command imports this module (tests/unit/test_cli_startup.py).
    from televikar_pbx.reports.pdf import render_sla_pdf

    clock: Clock = args.clock
    data = render_sla_pdf(
        customer, report, calls, language=args.language or "nb", generated_at=clock.now()
    )
    if args.output is None:
        write_bytes(data)
        return
    write_private(args.output, data)


def write_private(path: str, data: bytes) -> None:
    """``data`` to the file ``path``, readable by its owner only (``--output``)."""
    try:
        # Reports are for the customer and the service user only (docs/security.md).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError as exc:
        raise ConfigError(f"--output {path}: {exc.strerror or exc}") from None


# --- sla nightly -----------------------------------------------------------------------


def cmd_nightly(settings: Settings, args: argparse.Namespace) -> int:
    only = None if args.date is None else option_date("--date", args.date)
    clock: Clock = args.clock
    now = clock.now()

    async def work(repo: DirectoryRepository) -> tuple[list[tuple[Customer, list[dt.date]]], bool]:
        return await store_nightly(repo, now, only)

    stored, reports_wanted = session.run(settings, work)
    for customer, days in stored:
        shown = str(days[0]) if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)"
        print(f"{customer.name}: stored {shown}")
    if args.no_send or not reports_wanted:
        return 0
    if not settings.smtp_host:
        sys.stdout.flush()
        print(
            "televikar-pbx: sla nightly: reports are due but not sent: SMTP is not "
            "configured (TELEVIKAR_SMTP_HOST)",
            file=sys.stderr,
        )
        return 1
    # After the figures are stored and their transaction is over: an SMTP exchange must
    # not hold the database (on SQLite, its write lock).
    return send_due_reports(settings, clock)

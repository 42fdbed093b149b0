"""``televikar-pbx reports send`` and ``reports list``: the customers' report e-mails.

``send --due`` e-mails every due report (``reports.delivery``; rules in
``domain.delivery``) of every customer with a report interval and addresses;
``--customer C`` those of one customer; ``--customer C --from D --to D`` that period now,
even if it was sent before. One line per report: sent ones on stdout, failed ones on
stderr with the SMTP error; the exit status is 1 if any failed. ``list`` shows the
records.

Not one transaction: each record is written as it happens (``session.run(steps=True)``),
so a report is pending while its e-mail is on the way, then sent or failed, and an
interrupted run leaves what it sent recorded. "Now" (which reports are due, the times
recorded) is the command line's clock (``TELEVIKAR_NOW``, ``clock.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from televikar_pbx.admin import render, session
from televikar_pbx.admin.calls import option_date
from televikar_pbx.clock import Clock
from televikar_pbx.db.delivery_repo import DeliveryRepository
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.delivery import Delivery, ReportPeriod
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.reporting import ReportInterval
from televikar_pbx.errors import ConfigError
from televikar_pbx.reports.delivery import DeliveryResult, send_due, send_period
from televikar_pbx.reports.mail import SmtpConfig
from televikar_pbx.settings import Settings

LIST_HEADERS = (
    "CUSTOMER",
    "PERIOD",
    "INTERVAL",
    "STATUS",
    "ATTEMPTS",
    "LAST ATTEMPT",
    "SENT",
    "RECIPIENTS",
    "ERROR",
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("reports", help="e-mail the customers' SLA reports")
    actions = parser.add_subparsers(dest="reports_command", required=True, metavar="ACTION")

    send = actions.add_parser(
        "send",
        help="e-mail the due reports (PDF and CSV) over SMTP",
        description="E-mail each due report (PDF, call log CSV, SLA CSV) to the customer's "
        "report addresses over SMTP (TELEVIKAR_SMTP_*), and record it: a sent report is "
        "not sent again, a failed one is retried by the next run. Due: the previous "
        "day, ISO week or month, and those missed since the last one sent (at most 31 "
        "days, 8 weeks, 3 months back). Exit status 1 if any e-mail failed.",
    )
    which = send.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--due", action="store_true", help="every customer with a report interval and addresses"
    )
    which.add_argument("--customer", metavar="C", help="this customer only (name or id)")
    send.add_argument(
        "--from",
        dest="from_date",
        metavar="DATE",
        help="with --customer and --to: send this period now, even if sent before",
    )
    send.add_argument("--to", dest="to_date", metavar="DATE", help="last day (included)")
    send.set_defaults(func=cmd_send)

    listing = actions.add_parser(
        "list",
        help="the reports sent, failed or being sent",
        description="The recorded report e-mails, by customer and period; times in the "
        "customer's local time.",
    )
    listing.add_argument("--customer", metavar="C", help="this customer only (name or id)")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.set_defaults(func=cmd_list)


# --- reports send ----------------------------------------------------------------------


def _explicit_period(args: argparse.Namespace) -> ReportPeriod | None:
    if args.from_date is None and args.to_date is None:
        return None
    if args.customer is None:
        raise ConfigError("--from and --to need --customer")
    if args.from_date is None or args.to_date is None:
        raise ConfigError("give both --from and --to (or neither)")
    first, last = option_date("--from", args.from_date), option_date("--to", args.to_date)
    if first > last:
        raise ConfigError(f"--from {first} is after --to {last}")
    return ReportPeriod(first, last)


def cmd_send(settings: Settings, args: argparse.Namespace) -> int:
    period = _explicit_period(args)
    SmtpConfig.from_settings(settings)  # before the database: nothing is recorded
    clock: Clock = args.clock

    async def work(repo: DirectoryRepository) -> tuple[list[DeliveryResult], list[str]]:
        if args.customer is None:
            return await send_due(settings, repo.source, clock), []
        customer = await repo.find_customer(args.customer)
        if period is not None:
            return [await send_period(settings, repo.source, clock, customer, period)], []
        report = await repo.report_settings(customer.id)
        if report.interval is ReportInterval.NONE:
            return [], [f"{customer.name}: nothing due (report interval none)"]
        if not report.emails:
            return [], [f"{customer.name}: nothing due (no report addresses)"]
        results = await send_due(settings, repo.source, clock, customer=customer)
        return results, [] if results else [f"{customer.name}: nothing due"]

    results, notes = session.run(settings, work, steps=True)
    if args.due and not results:
        notes = ["no reports due"]
    for note in notes:
        print(note)
    return print_results(results)


def send_due_reports(settings: Settings, clock: Clock) -> int:
    """``reports send --due`` as a function (for ``sla nightly``): send, print one line
    per report, return the exit status (1 if any failed). ConfigError when SMTP is not
    configured."""
    SmtpConfig.from_settings(settings)

    async def work(repo: DirectoryRepository) -> list[DeliveryResult]:
        return await send_due(settings, repo.source, clock)

    return print_results(session.run(settings, work, steps=True))


def print_results(results: Iterable[DeliveryResult]) -> int:
    """Sent reports on stdout, failures (and refused recipients) on stderr; 1 if any."""
    code = 0
    for result in results:
        what = f"{result.customer.name} {result.delivery.period}"
        if result.sent:
            print(f"{what}: sent to {', '.join(result.delivery.recipients)}")
        if result.error is not None:
            code = 1
            if result.sent:
                problem = f"sent, but the server {result.error}"
            else:
                problem = f"not sent (attempt {result.delivery.attempts}): {result.error}"
            sys.stdout.flush()
            print(f"televikar-pbx: {what}: {problem}", file=sys.stderr)
    return code


# --- reports list ----------------------------------------------------------------------


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(repo: DirectoryRepository) -> tuple[dict[int, Customer], list[Delivery]]:
        store = DeliveryRepository(repo.source)
        if args.customer is None:
            customers = {c.id: c for c in await repo.list_customers()}
            return customers, await store.deliveries()
        customer = await repo.find_customer(args.customer)
        return {customer.id: customer}, await store.deliveries(customer.id)

    customers, deliveries = session.run(settings, work)
    if args.json:
        print(render.dumps([delivery_json(customers[d.customer_id], d) for d in deliveries]))
    else:
        rows = (_row(customers[d.customer_id], d) for d in deliveries)
        print(render.table(LIST_HEADERS, rows))
    return 0


def _local(moment: dt.datetime | None, customer: Customer) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(customer.timezone)).isoformat(timespec="seconds")


def _row(customer: Customer, d: Delivery) -> list[str]:
    def minutes(moment: dt.datetime | None) -> str:
        shown = _local(moment, customer)
        return "-" if shown is None else shown[:16].replace("T", " ")

    return [
        customer.name,
        str(d.period),
        d.interval.value,
        d.status.value,
        str(d.attempts),
        minutes(d.last_attempt_at),
        minutes(d.sent_at),
        ", ".join(d.recipients),
        d.last_error or "-",
    ]


def delivery_json(customer: Customer, d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "customer_id": customer.id,
        "customer": customer.name,
        "interval": d.interval.value,
        "from": d.period.first_day.isoformat(),
        "to": d.period.last_day.isoformat(),
        "status": d.status.value,
        "attempts": d.attempts,
        "recipients": list(d.recipients),
        "last_error": d.last_error,
        "last_attempt_at": _local(d.last_attempt_at, customer),
        "sent_at": _local(d.sent_at, customer),
    }

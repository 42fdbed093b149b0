"""``televikar-pbx billing month YYYY-MM``: what each customer owes for one month.

The rules are ``domain.billing`` (docs/billing.md); this module reads the month's
figures (``BillingRepository``) and prints them for the people who invoice: Norwegian
labels, kroner with a decimal comma. The table groups thousands with a space
(``1 234,50``); the CSV does not (``1234,50``: Norwegian Excel reads a number with a
plain space as text) and has every amount in whole øre as well.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import Any

from televikar_pbx.admin import render, session
from televikar_pbx.admin.calls import write_bytes
from televikar_pbx.admin.money import format_kroner
from televikar_pbx.db.billing_repo import BilledCustomer, BillingRepository
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.billing import Invoice, InvoiceLine, LineKind, Month, invoice
from televikar_pbx.errors import ConfigError
from televikar_pbx.reports import csvout
from televikar_pbx.settings import Settings

FORMATS = ("table", "csv")
MONTHS = (
    "januar", "februar", "mars", "april", "mai", "juni",
    "juli", "august", "september", "oktober", "november", "desember",
)  # fmt: skip
LABELS = {
    LineKind.FIXED_FEE: "Fast månedspris",
    LineKind.ANSWERED_CALLS: "Besvarte samtaler",
    LineKind.MESSAGES: "Beskjeder",
    LineKind.ORDERS: "Bestillinger",
    LineKind.BOOKED_DAYS: "Bookede dager",
}
NO_LINES = "(ingen linjer)"
CUSTOMER_TOTAL = "Sum"
TOTAL, ALL_CUSTOMERS = "Totalt", "Sum alle kunder"
HEADERS = ("Kunde", "Linje", "Antall", "Enhetspris (kr)", "Beløp (kr)")
CSV_HEADERS = (
    "Kunde-ID",
    "Kunde",
    "Linje",
    "Antall",
    "Enhetspris (kr)",
    "Beløp (kr)",
    "Enhetspris (øre)",
    "Beløp (øre)",
)

Billed = list[tuple[BilledCustomer, Invoice]]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("billing", help="what customers owe")
    actions = parser.add_subparsers(dest="billing_command", required=True, metavar="ACTION")

    month = actions.add_parser(
        "month",
        help="each customer's invoice lines and total for one month",
        description="Per customer: the fixed fee (prorated by the agreement's days in "
        "the month), answered calls, messages (voice and taken by agents), orders and "
        "booked days outside the agreement, "
        "each with its price, and the customer's total; then the total of all. The month "
        "is each customer's local calendar month (docs/billing.md).",
    )
    month.add_argument("month", metavar="YYYY-MM", help="the month, e.g. 2026-03")
    month.add_argument("--customer", metavar="C", help="this customer only (name or id)")
    month.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default); csv for Excel (';', decimal comma, UTF-8 with BOM)",
    )
    month.set_defaults(func=cmd_month)


def option_month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise ConfigError(f"billing month: {exc}") from None


def cmd_month(settings: Settings, args: argparse.Namespace) -> int:
    month = option_month(args.month)

    async def work(repo: DirectoryRepository) -> Billed:
        ids = None
        if args.customer is not None:
            ids = [(await repo.find_customer(args.customer)).id]
        # session.run hands out the directory; billing shares its transaction.
        billed = await BillingRepository(repo.source).customer_months(month, ids)
        return [(customer, invoice(customer.inputs)) for customer in billed]

    billed = session.run(settings, work)
    if args.format == "csv":
        write_bytes(csvout.encode(CSV_HEADERS, csv_rows(billed)))
    else:
        print(month_text(month, billed))
    return 0


def label(line: InvoiceLine) -> str:
    """``Fast månedspris (17/31 dager)``, ``Besvarte samtaler``, ..."""
    text = LABELS[line.kind]
    if line.days_in_month is not None:
        text += f" ({line.quantity}/{line.days_in_month} dager)"
    return text


def grand_total(billed: Billed) -> int:
    return sum(bill.total_ore for _, bill in billed)


def _table_rows(billed: Billed) -> Iterator[Sequence[str]]:
    for n, (customer, bill) in enumerate(billed):
        if n:
            yield ("",) * len(HEADERS)
        name = _printable(customer.name)
        for line in bill.lines:
            yield (
                name,
                label(line),
                str(line.quantity),
                format_kroner(line.unit_price_ore),
                format_kroner(line.amount_ore),
            )
            name = ""
        if not bill.lines:
            yield (name, NO_LINES, "", "", "")
            name = ""
        yield (name, CUSTOMER_TOTAL, "", "", format_kroner(bill.total_ore))
    if billed:
        yield ("",) * len(HEADERS)
    yield (TOTAL, ALL_CUSTOMERS, "", "", format_kroner(grand_total(billed)))


def month_text(month: Month, billed: Billed) -> str:
    title = f"Fakturagrunnlag {MONTHS[month.month - 1]} {month.year} ({month})"
    table = render.table(HEADERS, _table_rows(billed), right={2, 3, 4})
    return f"{title}\n\n{table}"


def _printable(text: str) -> str:
    # A name typed by an operator: still no escape sequences to the terminal.
    return "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in text)


def _csv_kroner(ore: int) -> str:
    return format_kroner(ore, grouped=False)


def csv_rows(billed: Billed) -> Iterator[Sequence[str | None]]:
    """One row per line, a ``Sum`` row per customer, and a ``Totalt`` row at the end."""
    for customer, bill in billed:
        cid = str(customer.id)
        for line in bill.lines:
            yield (
                cid,
                customer.name,
                label(line),
                str(line.quantity),
                _csv_kroner(line.unit_price_ore),
                _csv_kroner(line.amount_ore),
                str(line.unit_price_ore),
                str(line.amount_ore),
            )
        total = bill.total_ore
        yield (cid, customer.name, CUSTOMER_TOTAL, None, None, _csv_kroner(total), None, str(total))
    total = grand_total(billed)
    yield (None, TOTAL, ALL_CUSTOMERS, None, None, _csv_kroner(total), None, str(total))

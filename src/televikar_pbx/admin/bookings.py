"""``televikar-pbx bookings add|list``: periods we answer for a customer without (or
beyond) an agreement, in the customer's local time."""

from __future__ import annotations

import argparse
from typing import Any

from televikar_pbx.admin import control, render, session
from televikar_pbx.admin.inputs import BookingInput
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.calendar import Booking
from televikar_pbx.domain.directory import Customer
from televikar_pbx.settings import Settings

MOMENT_HELP = "'YYYY-MM-DD HH:MM' in the customer's time zone, or a date (its whole day)"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("bookings", help="bookings of customers without an agreement")
    actions = parser.add_subparsers(dest="bookings_command", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add",
        help="book a period",
        description="Book [from, to) for a customer; it must not overlap its other bookings.",
    )
    add.add_argument("--customer", required=True, metavar="C", help="name or id")
    add.add_argument(
        "--from", dest="starts_at", required=True, metavar="DATETIME", help=MOMENT_HELP
    )
    add.add_argument(
        "--to",
        dest="ends_at",
        required=True,
        metavar="DATETIME",
        help=MOMENT_HELP + "; a date includes that day",
    )
    add.set_defaults(func=cmd_add)

    listing = actions.add_parser("list", help="a customer's bookings, past ones included")
    listing.add_argument("--customer", required=True, metavar="C", help="name or id")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    async def work(repo: DirectoryRepository) -> tuple[Customer, Booking]:
        customer = await repo.find_customer(args.customer)
        spec = session.checked(
            BookingInput,
            {"timezone": customer.timezone, "starts_at": args.starts_at, "ends_at": args.ends_at},
        )
        return customer, await repo.add_booking(customer.id, spec.starts_at, spec.ends_at)

    customer, booking = session.run(settings, work)
    shown = render.booking_json(customer, booking)
    print(
        f"booked customer {customer.id} {customer.name!r}"
        f" from {shown['starts_at']} to {shown['ends_at']}"
    )
    control.reload_after_change(settings.control_port)
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(repo: DirectoryRepository) -> str:
        customer = await repo.find_customer(args.customer)
        bookings = await repo.list_bookings(customer.id)
        if args.json:
            return render.dumps([render.booking_json(customer, b) for b in bookings])
        return render.bookings_table(customer, bookings)

    print(session.run(settings, work))
    return 0

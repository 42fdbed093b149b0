"""``televikar-pbx customers add|list|show|edit|last-calls``."""

from __future__ import annotations

import argparse
from typing import Any

from televikar_pbx.admin import control, desk_setup, last_calls, message_setup, render, session
from televikar_pbx.admin.inputs import RULE_FIELDS, CustomerInput
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.directory import ClosedAction, Customer, HoldStyle, OutsidePolicy
from televikar_pbx.domain.reporting import ReportInterval
from televikar_pbx.errors import ConfigError
from televikar_pbx.settings import Settings

# dest -> (option, argparse keywords); dest is the CustomerInput field.
OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "display_name": ("--display-name", {"help": "the name agents see while the call rings"}),
    "numbers": (
        "--number",
        {"action": "append", "metavar": "DID", "help": "a number of ours the calls arrive on"},
    ),
    "forwarded_from": (
        "--forwarded-from",
        {
            "action": "append",
            "metavar": "N",
            "help": "the customer's own number, as forwarded (tells customers on one DID apart)",
        },
    ),
    "timezone": ("--timezone", {"metavar": "ZONE", "help": "default Europe/Oslo"}),
    "hours": (
        "--hours",
        {
            "action": "append",
            "metavar": "'DAYS HH:MM-HH:MM'",
            "help": "weekly service hours, e.g. 'mon-fri 08:00-16:00' (none: always open)",
        },
    ),
    "closed": ("--closed", {"action": "append", "metavar": "DATE", "help": "closed all day"}),
    "special_days": (
        "--special-day",
        {"action": "append", "metavar": "'DATE HH:MM-HH:MM'", "help": "other hours on a date"},
    ),
    "max_wait_s": ("--max-wait", {"metavar": "S", "help": "seconds before a message is taken"}),
    "wrap_up_s": ("--wrap-up", {"metavar": "S", "help": "seconds after a call (default 10)"}),
    "hold": ("--hold", {"choices": [h.value for h in HoldStyle], "help": "what callers hear"}),
    "hold_media": ("--hold-media", {"metavar": "X", "help": "music class or announcement"}),
    "sl12": ("--sl12", {"metavar": "PERCENT", "help": "SL12 target (default 70)"}),
    "sl20": ("--sl20", {"metavar": "PERCENT", "help": "SL20 target (default 90)"}),
    "lost": ("--lost", {"metavar": "PERCENT", "help": "lost calls at most (default 5)"}),
    "report_interval": ("--report-interval", {"choices": [i.value for i in ReportInterval]}),
    "report_emails": (
        "--report-email",
        {"action": "append", "metavar": "ADDR", "help": "where reports go"},
    ),
    "agreement_start": ("--agreement-start", {"metavar": "DATE"}),
    "agreement_end": ("--agreement-end", {"metavar": "DATE", "help": "last day (inclusive)"}),
    "outside_policy": (
        "--outside-policy",
        {"choices": [p.value for p in OutsidePolicy], "help": "outside agreement and bookings"},
    ),
    "closed_action": (
        "--closed-action",
        {"choices": [a.value for a in ClosedAction], "help": "outside service hours"},
    ),
    "message_prompt": ("--message-prompt", {"metavar": "SOUND", "help": "the customer's own"}),
    # Prices in kroner ('1500', '1500,50'), stored in whole øre (docs/billing.md).
    "monthly_fee": ("--monthly-fee", {"metavar": "KR", "help": "fixed fee per month (default 0)"}),
    "call_price": ("--call-price", {"metavar": "KR", "help": "per answered call (default 0)"}),
    "message_price": (
        "--message-price",
        {"metavar": "KR", "help": "per message, voice or taken by an agent (default 0)"},
    ),
    "order_price": ("--order-price", {"metavar": "KR", "help": "per order taken (default 0)"}),
    "booking_day_price": (
        "--booking-day-price",
        {"metavar": "KR", "help": "per booked day outside the agreement (default 0)"},
    ),
}
# --clear NAME -> what the field becomes.
CLEARABLE: dict[str, dict[str, Any]] = {
    "forwarded-from": {"forwarded_from": ()},
    "hours": {"hours": ()},
    "closed": {"closed": ()},
    "special-days": {"special_days": ()},
    "report-emails": {"report_emails": ()},
    "hold-media": {"hold_media": None},
    "message-prompt": {"message_prompt": None},
    "agreement": {"agreement_start": None, "agreement_end": None},
    "agreement-end": {"agreement_end": None},
}


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("customers", help="customers we answer for")
    actions = parser.add_subparsers(dest="customers_command", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="add a customer")
    add.add_argument("name", metavar="NAME", help="the customer's name (unique)")
    _options(add, required={"display_name", "numbers"})
    message_setup.voice_delivery_option(add)
    desk_setup.greeting_option(add)
    add.set_defaults(func=cmd_add)

    listing = actions.add_parser("list", help="all customers")
    listing.add_argument("--json", action="store_true", help="a JSON array, as `show --json`")
    listing.set_defaults(func=cmd_list)

    show = actions.add_parser("show", help="one customer, all settings")
    show.add_argument("customer", metavar="NAME_OR_ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    edit = actions.add_parser(
        "edit",
        help="change a customer",
        description="Change what is given; a list option (--number, --hours, ...) replaces "
        "that whole list, --clear empties one.",
    )
    edit.add_argument("customer", metavar="NAME_OR_ID")
    edit.add_argument("--name", help="rename the customer")
    _options(edit, required=set())
    message_setup.voice_delivery_option(edit)
    desk_setup.greeting_option(edit)
    edit.add_argument("--clear", action="append", choices=sorted(CLEARABLE), metavar="WHAT")
    edit.set_defaults(func=cmd_edit)

    last_calls.register(actions)  # customers last-calls (the forwarding watch)
    message_setup.register(actions)  # customers form|recipients


def _options(parser: argparse.ArgumentParser, required: set[str]) -> None:
    for dest, (flag, kwargs) in OPTIONS.items():
        parser.add_argument(flag, dest=dest, required=dest in required, **kwargs)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    return {dest: value for dest in OPTIONS if (value := getattr(args, dest)) is not None}


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    given = _given(args)
    spec = session.checked(CustomerInput, {"name": args.name, **given})

    async def work(repo: DirectoryRepository) -> Customer:
        return await repo.add_customer(
            spec.name,
            spec.display_name,
            spec.numbers,
            timezone=spec.timezone,
            forwarded_from=spec.forwarded_from,
            # No rule option: the service's defaults, wrap-up following its default.
            rules=spec.rules() if RULE_FIELDS & given.keys() else None,
            agreement=spec.agreement(),
            hours=spec.hours,
            exceptions=spec.exceptions(),
            report=spec.report(),
            prices=spec.prices(),
        )

    customer = session.run(
        settings, desk_setup.with_greeting(message_setup.with_voice_delivery(work, args), args)
    )
    print(f"added customer {customer.id} {customer.name!r} ({', '.join(customer.numbers)})")
    control.reload_after_change(settings.control_port)
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(repo: DirectoryRepository) -> str:
        customers = await repo.list_customers()
        if not args.json:
            return render.customers_table(customers)
        reports, agents = await repo.all_report_settings(), await repo.list_agents()
        voice = await message_setup.voice_deliveries(repo)
        escalation = await message_setup.escalations(repo)
        return render.dumps(
            [
                render.customer_json(c, reports[c.id], agents, voice[c.id], escalation[c.id])
                for c in customers
            ]
        )

    print(session.run(settings, work))
    return 0


def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    async def work(repo: DirectoryRepository) -> str:
        customer = await repo.find_customer(args.customer)
        report, agents = await repo.report_settings(customer.id), await repo.list_agents()
        voice = (await message_setup.voice_deliveries(repo))[customer.id]
        escalation = (await message_setup.escalations(repo))[customer.id]
        if args.json:
            return render.dumps(render.customer_json(customer, report, agents, voice, escalation))
        return render.customer_text(customer, report, agents, voice, escalation)

    print(session.run(settings, work))
    return 0


def cmd_edit(settings: Settings, args: argparse.Namespace) -> int:
    given = _given(args)
    if args.name is not None:
        given["name"] = args.name
    cleared: dict[str, Any] = {}
    for what in args.clear or ():
        cleared |= CLEARABLE[what]
    both = sorted(cleared.keys() & given.keys())
    if both:
        raise ConfigError(f"--clear and {OPTIONS[both[0]][0]} together: give one of them")
    if (
        not given
        and not cleared
        and not message_setup.message_settings_given(args)
        and args.greeting is None
    ):
        raise ConfigError("nothing to change (see televikar-pbx customers edit --help)")

    async def work(repo: DirectoryRepository) -> Customer:
        customer = await repo.find_customer(args.customer)
        if not given and not cleared:  # only --voice-delivery, --escalate-after, --greeting
            return customer
        current = CustomerInput.current(customer, await repo.report_settings(customer.id))
        spec = session.checked(CustomerInput, current | cleared | given)
        return await repo.update_customer(
            customer.id,
            name=spec.name,
            display_name=spec.display_name,
            timezone=spec.timezone,
            numbers=spec.numbers,
            forwarded_from=spec.forwarded_from,
            rules=spec.rules() if RULE_FIELDS & (given.keys() | cleared.keys()) else None,
            agreement=spec.agreement(),
            hours=spec.hours,
            exceptions=spec.exceptions(),
            report=spec.report(),
            prices=spec.prices(),
        )

    customer = session.run(
        settings, desk_setup.with_greeting(message_setup.with_voice_delivery(work, args), args)
    )
    print(f"updated customer {customer.id} {customer.name!r}")
    control.reload_after_change(settings.control_port)
    return 0

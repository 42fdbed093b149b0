"""``televikar-pbx messages take|list|show|resend``: messages and orders agents take, and
every message's delivery, over the use cases in ``messages/services.py`` (the same the
web desk will call). Rendering is ``message_output``.

"Now" is the injectable clock (``TELEVIKAR_NOW``, televikar_pbx/clock.py); dates of
``list`` are the customer's local dates, both included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from televikar_pbx.admin import message_output, render, session
from televikar_pbx.admin.calls import option_date, write_bytes
from televikar_pbx.clock import clock_from_env
from televikar_pbx.db.calls_repo import CallRepository
from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.records import MessageLogRecord, MessageRecord
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.message_forms import Form, FormKind, prefill
from televikar_pbx.domain.message_validation import ValidationFailed
from televikar_pbx.domain.messages import MessageStatus
from televikar_pbx.errors import ConfigError
from televikar_pbx.messages import services
from televikar_pbx.reports import csvout
from televikar_pbx.settings import Settings

FORMATS = ("table", "csv", "json")


class Refused(Exception):
    """Input refused with several problems, one line each (not a ValueError, so that
    ``session.run`` lets it through whole after rolling the transaction back)."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = tuple(lines)


def report_refused(command: str, refused: Refused) -> int:
    for line in refused.lines:
        print(f"televikar-pbx: {command}: {line}", file=sys.stderr)
    return 1


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("messages", help="messages and orders taken for customers")
    actions = parser.add_subparsers(dest="messages_command", required=True, metavar="ACTION")

    take = actions.add_parser(
        "take",
        help="save a message or order an agent took (validated, then delivered)",
        description="Validate the fields against the customer's current form and save "
        "the message with its deliveries in one transaction; prints its id. Any wrong "
        "field: one line per field by its label, exit 1, nothing saved.",
    )
    take.add_argument("--customer", required=True, metavar="C", help="name or id")
    take.add_argument("--kind", required=True, choices=[k.value for k in FormKind])
    take.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a field of the form by its key (see customers form show); repeatable",
    )
    take.add_argument("--call", type=int, metavar="ID", help="the call it was taken on")
    take.add_argument("--urgent", action="store_true", help="to every recipient, at once")
    take.add_argument("--agent", metavar="A", help="who took it (endpoint, id or name)")
    take.set_defaults(func=cmd_take)

    listing = actions.add_parser(
        "list",
        help="a customer's messages between two dates",
        description="Every message of one customer taken between two of its local "
        "dates (both included), oldest first, in its local time.",
    )
    listing.add_argument("--customer", required=True, metavar="C", help="name or id")
    listing.add_argument("--from", dest="from_date", required=True, metavar="DATE")
    listing.add_argument("--to", dest="to_date", required=True, metavar="DATE", help="included")
    listing.add_argument("--status", choices=[s.value for s in MessageStatus])
    listing.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default); csv for Excel (';', UTF-8 with BOM); json",
    )
    listing.set_defaults(func=cmd_list)

    show = actions.add_parser("show", help="one message: every field by its label, its log")
    show.add_argument("message_id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    resend = actions.add_parser(
        "resend",
        help="deliver a message again to its customer's current recipients",
        description="Queues a new round of deliveries (new Message-IDs) to every "
        "recipient, urgent-only ones included; the running service sends them.",
    )
    resend.add_argument("message_id", type=int, metavar="ID")
    resend.set_defaults(func=cmd_resend)


def parse_fields(items: Sequence[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--field {item!r}: write KEY=VALUE")
        if key in fields:
            raise ConfigError(f"--field {key}: given twice")
        fields[key] = value
    return fields


def cmd_take(settings: Settings, args: argparse.Namespace) -> int:
    raw: dict[str, str] = parse_fields(args.field)
    kind = FormKind(args.kind)
    # To the second, as every list shows it (and two messages taken in the same second
    # are listed in the order they were saved).
    now = clock_from_env().now().replace(microsecond=0)

    async def work(repo: DirectoryRepository) -> tuple[Customer, int]:
        customer = await repo.find_customer(args.customer)
        agent = None if args.agent is None else await repo.find_agent(args.agent)
        caller_number = None
        if args.call is not None:
            call = await CallRepository(repo.source).get_call(args.call)
            if call.customer_id != customer.id:
                raise ConfigError(f"--call {args.call}: not a call of customer {customer.id}")
            caller_number = call.caller_number
        messages = MessageRepository(repo.source)
        form = await services.current_form(messages, customer.id, kind)
        given = prefill(form, caller_number) | raw
        try:
            message_id = await services.take_message(
                messages,
                customer_id=customer.id,
                kind=kind,
                raw=given,
                taken_at=now,
                call_id=args.call,
                agent_id=None if agent is None else agent.id,
                caller_number=caller_number,
                urgent=args.urgent,
                actor=agent.name if agent is not None else "operator",
            )
        except ValidationFailed as exc:
            raise Refused([str(e) for e in exc.errors]) from None
        return customer, message_id

    try:
        customer, message_id = session.run(settings, work)
    except Refused as refused:
        return report_refused("messages take", refused)
    print(f"took {kind.value} {message_id} for customer {customer.id} {customer.name!r}")
    return 0


@dataclass(frozen=True, slots=True)
class Listed:
    customer: Customer
    messages: list[MessageRecord]
    forms: dict[tuple[str, int], Form]
    agents: dict[int, str]


async def _forms_of(
    repo: MessageRepository, customer_id: int, messages: Sequence[MessageRecord]
) -> dict[tuple[str, int], Form]:
    forms: dict[tuple[str, int], Form] = {}
    for m in messages:
        if m.form_version is None or (m.kind, m.form_version) in forms:
            continue
        form = await services.form_version(repo, customer_id, FormKind(m.kind), m.form_version)
        if form is not None:
            forms[(m.kind, m.form_version)] = form
    return forms


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    first, last = option_date("--from", args.from_date), option_date("--to", args.to_date)
    if first > last:
        raise ConfigError(f"--from {first} is after --to {last}")

    async def work(repo: DirectoryRepository) -> Listed:
        customer = await repo.find_customer(args.customer)
        zone = ZoneInfo(customer.timezone)
        start = dt.datetime.combine(first, dt.time(0), tzinfo=zone)
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        messages = MessageRepository(repo.source)
        found = await messages.list_messages(customer.id, start, end, args.status)
        agents = {a.id: a.name for a in await repo.list_agents()}
        return Listed(customer, found, await _forms_of(messages, customer.id, found), agents)

    listed = session.run(settings, work)
    zone = ZoneInfo(listed.customer.timezone)
    out = message_output
    if args.format == "json":
        print(
            render.dumps(
                [out.message_json(m, zone, listed.forms, listed.agents) for m in listed.messages]
            )
        )
        return 0
    rows = [out.list_cells(m, zone, listed.forms, listed.agents) for m in listed.messages]
    if args.format == "csv":
        write_bytes(csvout.encode(out.LIST_HEADERS, rows))
    else:
        print(render.table(out.LIST_HEADERS, out.table_rows(rows)))
    return 0


@dataclass(frozen=True, slots=True)
class Shown:
    customer: Customer
    message: MessageRecord
    form: Form | None
    log: list[MessageLogRecord]
    agents: dict[int, str]


def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    async def work(repo: DirectoryRepository) -> Shown:
        messages = MessageRepository(repo.source)
        message = await messages.get_message(args.message_id)
        customer = await repo.get_customer(message.customer_id)
        form = None
        if message.form_version is not None:
            form = await services.form_version(
                messages, customer.id, FormKind(message.kind), message.form_version
            )
        agents = {a.id: a.name for a in await repo.list_agents()}
        return Shown(customer, message, form, await messages.message_log(message.id), agents)

    shown = session.run(settings, work)
    zone = ZoneInfo(shown.customer.timezone)
    forms = {} if shown.form is None else {(shown.message.kind, shown.form.version): shown.form}
    if args.json:
        data = message_output.message_json(shown.message, zone, forms, shown.agents)
        data["customer"] = shown.customer.name
        data["log"] = [message_output.log_json(entry, zone) for entry in shown.log]
        print(render.dumps(data))
    else:
        text = message_output.message_text(
            shown.customer, shown.message, shown.form, shown.log, shown.agents
        )
        print(text)
    return 0


def cmd_resend(settings: Settings, args: argparse.Namespace) -> int:
    now = clock_from_env().now()

    async def work(repo: DirectoryRepository) -> int:
        return await MessageRepository(repo.source).resend(args.message_id, now, "operator")

    queued = session.run(settings, work)
    if queued:
        print(f"message {args.message_id}: {queued} deliveries queued")
    else:
        print(f"message {args.message_id}: its customer has no recipients; nothing queued")
    return 0

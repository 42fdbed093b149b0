"""``televikar-pbx customers form show|edit`` and ``customers recipients add|remove|list``:
a customer's message and order forms, and who gets its messages (docs/messages.md).

``form show`` prints the definition exactly as ``form edit --file`` reads it back (JSON,
or YAML with a comment line naming the version). ``form edit`` stores a new version
only when the fields changed; a definition with problems lists every one of them, one
line each, and changes nothing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from televikar_pbx.admin import render, session
from televikar_pbx.admin.messages import Refused, report_refused
from televikar_pbx.db.escalation_repo import EscalationRepository
from televikar_pbx.db.messages_repo import VOICE_DELIVERIES, MessageRepository
from televikar_pbx.db.records import RecipientRecord
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.escalation import MAX_ESCALATE_AFTER_MIN, escalate_after
from televikar_pbx.domain.message_delivery import Channel
from televikar_pbx.domain.message_forms import Form, FormDefinitionError, FormKind
from televikar_pbx.domain.message_validation import normalise_email, normalise_phone
from televikar_pbx.errors import ConfigError
from televikar_pbx.messages import services
from televikar_pbx.settings import Settings

MAX_FORM_FILE = 1_000_000  # bytes: a form is a few kilobytes


# --- customers add|edit --voice-delivery, --escalate-after ------------------------------

ESCALATION_OFF = 0  # what --escalate-after none parses to (stored as NULL)


def voice_delivery_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--voice-delivery",
        choices=VOICE_DELIVERIES,
        help="a voice message's recording attached to the e-mail (default), or a signed "
        "link to a page that plays it (needs TELEVIKAR_WEB_PUBLIC_URL; attached without)",
    )
    parser.add_argument(
        "--escalate-after",
        type=_escalate_after,
        metavar="MIN|none",
        help="an urgent message not acknowledged within MIN minutes goes to the next "
        "person on the recipient list; none (the default): to everyone at once",
    )


def _escalate_after(text: str) -> int:
    if text.strip().lower() in ("none", "off"):
        return ESCALATION_OFF
    try:
        minutes = int(text)
        escalate_after(minutes)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"whole minutes 1..{MAX_ESCALATE_AFTER_MIN}, or none: {text!r}"
        ) from None
    return minutes


async def voice_deliveries(repo: DirectoryRepository) -> dict[int, str]:
    return await MessageRepository(repo.source).voice_deliveries()


async def escalations(repo: DirectoryRepository) -> dict[int, int | None]:
    """Each customer's ``--escalate-after`` in minutes; None: no escalation."""
    return await EscalationRepository(repo.source).escalate_after()


def message_settings_given(args: argparse.Namespace) -> bool:
    return args.voice_delivery is not None or args.escalate_after is not None


def with_voice_delivery(
    work: Callable[[DirectoryRepository], Awaitable[Customer]], args: argparse.Namespace
) -> Callable[[DirectoryRepository], Awaitable[Customer]]:
    """``work`` (customers add or edit), then ``--voice-delivery`` and
    ``--escalate-after`` in its transaction."""

    async def both(repo: DirectoryRepository) -> Customer:
        customer = await work(repo)
        if args.voice_delivery is not None:
            await MessageRepository(repo.source).set_voice_delivery(
                customer.id, args.voice_delivery
            )
        if args.escalate_after is not None:
            minutes = None if args.escalate_after == ESCALATION_OFF else args.escalate_after
            await EscalationRepository(repo.source).set_escalate_after(customer.id, minutes)
        return customer

    return both


def register(actions: argparse._SubParsersAction[Any]) -> None:
    """Adds ``form`` and ``recipients`` under ``customers``."""
    form = actions.add_parser("form", help="a customer's message and order forms")
    form_actions = form.add_subparsers(dest="form_command", required=True, metavar="ACTION")
    show = form_actions.add_parser("show", help="the current form, as `form edit` reads it")
    show.add_argument("customer", metavar="NAME_OR_ID")
    show.add_argument("--kind", required=True, choices=[k.value for k in FormKind])
    show.add_argument("--format", choices=("json", "yaml"), default="json")
    show.set_defaults(func=cmd_form_show)
    edit = form_actions.add_parser(
        "edit",
        help="a new version of the form from a JSON or YAML file",
        description="Fields as {'fields': [{key, label, type, required, help, choices, "
        "prefill}, ...]} (see docs/messages.md). Messages keep the version they were "
        "taken with; the same fields again store nothing new.",
    )
    edit.add_argument("customer", metavar="NAME_OR_ID")
    edit.add_argument("--kind", required=True, choices=[k.value for k in FormKind])
    edit.add_argument(
        "--file", required=True, type=Path, metavar="F", help="*.json, else read as YAML"
    )
    edit.set_defaults(func=cmd_form_edit)

    recipients = actions.add_parser("recipients", help="who gets a customer's messages")
    rec_actions = recipients.add_subparsers(
        dest="recipients_command", required=True, metavar="ACTION"
    )
    add = rec_actions.add_parser("add", help="add an e-mail or SMS recipient")
    add.add_argument("customer", metavar="NAME_OR_ID")
    _address(add)
    add.add_argument("--urgent-only", action="store_true", help="only urgent messages")
    add.add_argument("--digest", action="store_true", help="e-mail: a daily digest instead")
    add.add_argument("--name", default="", metavar="N", help="who it is")
    add.set_defaults(func=cmd_recipients_add)
    remove = rec_actions.add_parser("remove", help="remove a recipient")
    remove.add_argument("customer", metavar="NAME_OR_ID")
    _address(remove)
    remove.set_defaults(func=cmd_recipients_remove)
    listing = rec_actions.add_parser("list", help="a customer's recipients")
    listing.add_argument("customer", metavar="NAME_OR_ID")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_recipients_list)


def _address(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--email", metavar="ADDR")
    group.add_argument("--sms", metavar="NUMBER", help="a mobile number (Norwegian without +47)")


def _channel(args: argparse.Namespace) -> tuple[Channel, str]:
    if args.email is not None:
        return Channel.EMAIL, args.email
    return Channel.SMS, args.sms


# --- forms ------------------------------------------------------------------------------


def form_document(customer: Customer, form: Form, fmt: str) -> str:
    data = form.to_dict()
    if fmt == "json":
        return render.dumps(data)
    comment = f"# {customer.name}: {form.kind.value} form, version {form.version}\n"
    return comment + yaml.safe_dump(data, allow_unicode=True, sort_keys=False).rstrip("\n")


def cmd_form_show(settings: Settings, args: argparse.Namespace) -> int:
    async def work(repo: DirectoryRepository) -> tuple[Customer, Form]:
        customer = await repo.find_customer(args.customer)
        messages = MessageRepository(repo.source)
        return customer, await services.current_form(messages, customer.id, FormKind(args.kind))

    customer, form = session.run(settings, work)
    print(form_document(customer, form, args.format))
    return 0


def read_definition(path: Path) -> object:
    """The decoded JSON (``*.json``) or YAML file; ConfigError naming the file."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FORM_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"--file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FORM_FILE:
        raise ConfigError(f"--file {path}: larger than {MAX_FORM_FILE} bytes")
    try:
        text = data.decode("utf-8-sig")
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except UnicodeDecodeError:
        raise ConfigError(f"--file {path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--file {path}: not JSON: {exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(f"--file {path}: not YAML{line}: {problem}") from None


def cmd_form_edit(settings: Settings, args: argparse.Namespace) -> int:
    definition = read_definition(args.file)
    kind = FormKind(args.kind)

    async def work(repo: DirectoryRepository) -> tuple[Customer, int, Form]:
        customer = await repo.find_customer(args.customer)
        messages = MessageRepository(repo.source)
        before = (await services.current_form(messages, customer.id, kind)).version
        try:
            form = await services.edit_form(messages, customer.id, kind, definition)
        except FormDefinitionError as exc:
            raise Refused(exc.problems) from None
        return customer, before, form

    try:
        customer, before, form = session.run(settings, work)
    except Refused as refused:
        return report_refused("customers form edit", refused)
    what = f"customer {customer.id} {customer.name!r}: {kind.value} form"
    if form.version == before:
        print(f"{what} unchanged (version {form.version})")
    else:
        print(f"{what} version {form.version} saved")
    return 0


# --- recipients -------------------------------------------------------------------------


def recipient_json(r: RecipientRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "customer_id": r.customer_id,
        "channel": r.channel,
        "address": r.address,
        "name": r.name,
        "urgent_only": r.urgent_only,
        "digest": r.digest,
    }


def recipients_table(recipients: list[RecipientRecord]) -> str:
    return render.table(
        ("ID", "CHANNEL", "ADDRESS", "NAME", "GETS", "DIGEST"),
        (
            (
                str(r.id),
                r.channel,
                r.address,
                r.name or "-",
                "urgent only" if r.urgent_only else "all",
                "daily" if r.digest else "-",
            )
            for r in recipients
        ),
    )


def cmd_recipients_add(settings: Settings, args: argparse.Namespace) -> int:
    channel, address = _channel(args)

    async def work(repo: DirectoryRepository) -> tuple[Customer, RecipientRecord]:
        customer = await repo.find_customer(args.customer)
        added = await services.add_recipient(
            MessageRepository(repo.source),
            customer.id,
            channel,
            address,
            urgent_only=args.urgent_only,
            digest=args.digest,
            name=args.name,
        )
        return customer, added

    customer, added = session.run(settings, work)
    print(f"customer {customer.id} {customer.name!r}: added {added.channel} {added.address}")
    return 0


def cmd_recipients_remove(settings: Settings, args: argparse.Namespace) -> int:
    channel, given = _channel(args)
    try:  # stored normalised: look it up the same way
        address = normalise_email(given) if channel is Channel.EMAIL else normalise_phone(given)
    except ValueError:
        address = given.strip()

    async def work(repo: DirectoryRepository) -> Customer:
        customer = await repo.find_customer(args.customer)
        removed = await MessageRepository(repo.source).remove_recipient(
            customer.id, channel.value, address
        )
        if not removed:
            raise ConfigError(f"customer {customer.id} has no {channel.value} recipient {given}")
        return customer

    customer = session.run(settings, work)
    print(f"customer {customer.id} {customer.name!r}: removed {channel.value} {address}")
    return 0


def cmd_recipients_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(repo: DirectoryRepository) -> list[RecipientRecord]:
        customer = await repo.find_customer(args.customer)
        return await MessageRepository(repo.source).recipients(customer.id)

    recipients = session.run(settings, work)
    if args.json:
        print(render.dumps([recipient_json(r) for r in recipients]))
    else:
        print(recipients_table(recipients))
    return 0

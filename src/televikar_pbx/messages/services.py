"""Use cases of messages, shared by every face (the command line now, the agent desk
next): the form a customer's agents fill in, taking a message or order, recipients.

Each function takes the repository of the caller's unit of work, so what it writes (the
message, its log and its outbox rows, or a form's first version) is one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.records import RecipientRecord
from televikar_pbx.domain.message_delivery import Channel, Recipient, Scope
from televikar_pbx.domain.message_forms import DEFAULT_FORMS, Form, FormKind, parse_form
from televikar_pbx.domain.message_validation import RawValue, validate


async def current_form(repo: MessageRepository, customer_id: int, kind: FormKind) -> Form:
    """The customer's form of this kind. A customer who never had one gets the default,
    stored as its version 1 on first use, so every message names a stored version."""
    stored = await repo.current_form(customer_id, kind.value)
    if stored is None:
        form = DEFAULT_FORMS[kind]
        version = await repo.save_form(customer_id, kind.value, form.to_dict()["fields"])
        return Form(form.kind, version, form.fields)
    version, fields = stored
    return parse_form({"fields": fields}, kind, version)


async def form_version(
    repo: MessageRepository, customer_id: int, kind: FormKind, version: int
) -> Form | None:
    """The form a message was taken with, to show it by its labels."""
    fields = await repo.form_version(customer_id, kind.value, version)
    return None if fields is None else parse_form({"fields": fields}, kind, version)


async def edit_form(
    repo: MessageRepository, customer_id: int, kind: FormKind, definition: object
) -> Form:
    """A new version of the form from an operator's definition (FormDefinitionError
    lists every problem); the same fields again store nothing new."""
    current = await current_form(repo, customer_id, kind)
    wanted = parse_form(definition, kind, current.version + 1)
    if wanted.fields == current.fields:
        return current
    version = await repo.save_form(customer_id, kind.value, wanted.to_dict()["fields"])
    return Form(kind, version, wanted.fields)


async def take_message(
    repo: MessageRepository,
    *,
    customer_id: int,
    kind: FormKind,
    raw: Mapping[str, RawValue],
    taken_at: dt.datetime,
    call_id: int | None = None,
    agent_id: int | None = None,
    caller_number: str | None = None,
    urgent: bool = False,
    actor: str = "agent",
) -> int:
    """Validate against the customer's current form and save with its deliveries; the
    message id. ``ValidationFailed`` (one error per field, by its label) saves nothing."""
    form = await current_form(repo, customer_id, kind)
    values: dict[str, Any] = dict(validate(form, raw))
    return await repo.take_message(
        customer_id=customer_id,
        kind=kind.value,
        fields=values,
        form_version=form.version,
        taken_at=taken_at,
        call_id=call_id,
        agent_id=agent_id,
        caller_number=caller_number,
        urgent=urgent,
        actor=actor,
    )


async def add_recipient(
    repo: MessageRepository,
    customer_id: int,
    channel: Channel,
    address: str,
    *,
    urgent_only: bool = False,
    digest: bool = False,
    name: str = "",
) -> RecipientRecord:
    """Add a recipient, its address checked and normalised (ValueError in Norwegian)."""
    scope = Scope.URGENT_ONLY if urgent_only else Scope.ALL
    checked = Recipient.create(customer_id, channel, address, scope, digest=digest, name=name)
    rid = await repo.add_recipient(
        customer_id,
        checked.channel.value,
        checked.address,
        urgent_only=urgent_only,
        digest=digest,
        name=checked.name or None,
    )
    return next(r for r in await repo.recipients(customer_id) if r.id == rid)

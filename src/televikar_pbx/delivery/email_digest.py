"""The daily digest: one e-mail with a recipient's messages of the day (Norwegian).

For recipients who chose ``digest`` (``domain.message_delivery``): never urgent
messages, which always go at once. Subject ``Beskjeder til Fjordbakst 25.10.2026 (3)``;
the body lists the messages oldest first, each with the same rows as its own e-mail
(:func:`~televikar_pbx.delivery.email_message.message_rows`), and every voice message's
recording attached. The Message-ID comes from
``domain.message_delivery.digest_message_id``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import html
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from televikar_pbx.delivery.email_message import (
    KIND_NAMES,
    Recording,
    attachment_name,
    caller_text,
    message_rows,
)
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.message_forms import Form
from televikar_pbx.domain.messages import Message, MessageKind


@dataclass(frozen=True, slots=True)
class DigestItem:
    message: Message
    form: Form | None  # the version it was taken with; None for a voice message
    recording: Recording | None = None


def _heading(customer: Customer, number: int, item: DigestItem) -> str:
    local = item.message.taken_at.astimezone(ZoneInfo(customer.timezone))
    who = caller_text(item.message, item.form)
    return f"{number}. {KIND_NAMES[item.message.kind]} fra {who}, kl. {local:%H:%M}"


def compose_digest(
    *,
    sender: str,
    to: str,
    customer: Customer,
    day: dt.date,
    items: Sequence[DigestItem],
    message_id: str,
    now: dt.datetime,
) -> EmailMessage:
    """The digest of ``items`` (one customer's, not urgent) for the local ``day``."""
    if not items:
        raise ValueError("a digest without messages is not sent")
    for item in items:
        if item.message.customer_id != customer.id:
            raise ValueError(f"message {item.message.id} is not customer {customer.id}'s")
        if item.message.urgent:
            raise ValueError(f"message {item.message.id} is urgent: it is not held for a digest")
        if item.message.kind is MessageKind.VOICE and item.recording is None:
            raise ValueError(f"voice message {item.message.id} needs its recording")
    ordered = sorted(items, key=lambda i: (i.message.taken_at, i.message.id))
    title = f"Beskjeder til {customer.display_name} {day:%d.%m.%Y}"
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = " ".join(f"{title} ({len(ordered)})".split())
    mail["Date"] = email.utils.format_datetime(now.astimezone(dt.UTC))
    mail["Message-ID"] = message_id
    mail["Content-Language"] = "nb"
    text = [title, ""]
    parts = [f"<h2>{html.escape(title)}</h2>"]
    for number, item in enumerate(ordered, 1):
        heading = _heading(customer, number, item)
        rows = message_rows(customer, item.message, item.form)
        text.append(heading)
        for label, value in rows:
            shown = value.replace("\n", "\n      ")
            text.append(f"    {label}: {shown}")
        text.append("")
        cells = "".join(
            f'<tr><th style="text-align:left;vertical-align:top;padding-right:1em">'
            f"{html.escape(label)}</th><td>{html.escape(value).replace(chr(10), '<br>')}</td></tr>"
            for label, value in rows
        )
        parts.append(f"<h3>{html.escape(heading)}</h3><table>{cells}</table>")
    text += ["-- ", "Svartjenesten"]
    mail.set_content("\n".join(text) + "\n")
    mail.add_alternative(
        '<!DOCTYPE html><html lang="nb"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>{''.join(parts)}</body></html>",
        subtype="html",
    )
    for item in ordered:
        if item.recording is not None:
            mail.add_attachment(
                item.recording.data,
                maintype="audio",
                subtype="wav",
                filename=attachment_name(customer, item.message),
            )
    return mail

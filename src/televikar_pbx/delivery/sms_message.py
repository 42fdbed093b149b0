"""The SMS text of a message (Norwegian), kept within a few segments.

``HASTER: Beskjed til Fjordbakst fra Kari Nordmann (+47 22 33 44 55). Gjelder: ...
Ring tilbake: Ja. Mottatt 25.10. kl. 02:30. Melding nr. 42``

The caller's name and number are in the opening; the other fields that were filled in
follow by label, line breaks as `` / ``; empty ones are left out (an SMS is short: the
e-mail has every field). A voice message gives the number, the time and the length.
The text is cut to ``max_segments`` (:func:`televikar_pbx.domain.sms_text.truncate`),
the message number kept at its end so the customer can find the whole of it.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from televikar_pbx.delivery.email_message import KIND_NAMES, caller_text, duration_text
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.message_forms import FieldType, Form, display_value
from televikar_pbx.domain.messages import Message, MessageKind
from televikar_pbx.domain.sms_text import truncate

MAX_SEGMENTS = 3


def compose_sms(
    customer: Customer, message: Message, form: Form | None, max_segments: int = MAX_SEGMENTS
) -> str:
    if message.customer_id != customer.id:
        raise ValueError(f"message {message.id} is not customer {customer.id}'s")
    local = message.taken_at.astimezone(ZoneInfo(customer.timezone))
    opening = f"{KIND_NAMES[message.kind]} til {customer.display_name} fra "
    opening += caller_text(message, form)
    parts = [("HASTER: " if message.urgent else "") + " ".join(opening.split())]
    if message.kind is MessageKind.VOICE:
        parts.append(f"Lengde {duration_text(message.duration_s or 0.0)}")
    else:
        if form is None or form.version != message.form_version:
            raise ValueError(f"message {message.id} is shown with its own form version")
        shown_in_opening = {"name"} | {f.key for f in form.fields if f.type is FieldType.PHONE}
        for f in form.fields:
            value = message.values.get(f.key)
            if value is None or f.key in shown_in_opening:
                continue
            text = " / ".join(line.strip() for line in display_value(f, value).splitlines())
            parts.append(f"{f.label}: {text}")
    parts.append(f"Mottatt {local:%d.%m.} kl. {local:%H:%M}")
    tail = f" Melding nr. {message.id}"
    body = ". ".join(p.rstrip(".") for p in parts) + "."
    return truncate(body, max_segments, suffix=tail)  # the number stays whole at the end

"""How a message reads to a person, wherever it is shown (``messages list|show``, the
agent desk): Norwegian names of kinds and statuses, and each field by its label in the
form version the message was taken with, its value as a Norwegian reader sees it
(``display_value``: ``Ja``/``Nei``, ``31.12.2026``)."""

from __future__ import annotations

from typing import Any

from televikar_pbx.db.records import MessageRecord
from televikar_pbx.domain.message_forms import Form, display_value
from televikar_pbx.reports.call_log import MESSAGE_KINDS

STATUSES = {
    "new": "Ny",
    "sent": "Sendt",
    "delivered": "Levert",
    "acknowledged": "Kvittert",
    "failed": "Feilet",
}


def kind_label(kind: str) -> str:
    return MESSAGE_KINDS.get(kind, kind)


def status_label(status: str) -> str:
    return STATUSES.get(status, status)


def field_rows(message: MessageRecord, form: Form | None) -> list[tuple[str, str, Any]]:
    """(key, label, stored value) of every field of the message's form, in its order,
    then any stored value the form does not have (by its key); None: not filled in."""
    rows: list[tuple[str, str, Any]] = []
    known: set[str] = set()
    if form is not None:
        for f in form.fields:
            known.add(f.key)
            rows.append((f.key, f.label, message.fields.get(f.key)))
    rows.extend((k, k, v) for k, v in message.fields.items() if k not in known)
    return rows


def shown_value(form: Form | None, key: str, value: Any) -> str:
    if value is None:
        return ""
    if form is not None:
        try:
            return display_value(form.field(key), value)
        except (KeyError, ValueError):
            pass
    return str(value)

"""What ``messages list|show`` print: Norwegian headers and labels for the table and the
CSV (they go to the customer), English keys for the JSON (scripts; keys only added).

A field is shown by its label in the form version the message was taken with, its
value as a Norwegian reader sees it (``display_value``: ``Ja``/``Nei``, ``31.12.2026``);
the JSON keeps the stored value. Times are the customer's local time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import PurePath
from typing import Any
from zoneinfo import ZoneInfo

from televikar_pbx.db.records import MessageLogRecord, MessageRecord
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.message_forms import Form
from televikar_pbx.reports.call_log import MESSAGE_KINDS, WITHHELD, local_time
from televikar_pbx.reports.message_labels import (
    field_rows,
    kind_label,
    shown_value,
    status_label,
)

KINDS = MESSAGE_KINDS
LIST_HEADERS = ("ID", "Dato", "Tid", "Type", "Innringer", "Haster", "Status", "Agent", "Innhold")
TABLE_CONTENT = 60  # characters of the content column in the table

Forms = Mapping[tuple[str, int], Form]


def _taken(message: MessageRecord) -> dt.datetime:
    return message.taken_at or message.created_at


def content(message: MessageRecord, form: Form | None) -> str:
    """The message in one cell: a voice message's file and length, else its filled-in
    fields as ``Label: value`` separated by ``; ``."""
    if message.kind == "voice":
        name = PurePath(message.file).name if message.file else ""
        length = "" if message.duration_s is None else f" ({message.duration_s:.1f} s)"
        return (name + length.replace(".", ",")).strip()
    return "; ".join(
        f"{label}: {shown_value(form, key, value)}"
        for key, label, value in field_rows(message, form)
        if value is not None
    )


def _caller(message: MessageRecord) -> str | None:
    if message.caller_number:
        return message.caller_number
    return WITHHELD if message.kind == "voice" else None


def _agent(message: MessageRecord, agents: Mapping[int, str]) -> str | None:
    return None if message.agent_id is None else agents.get(message.agent_id, str(message.agent_id))


def _form(message: MessageRecord, forms: Forms) -> Form | None:
    return None if message.form_version is None else forms.get((message.kind, message.form_version))


def list_cells(
    message: MessageRecord, zone: ZoneInfo, forms: Forms, agents: Mapping[int, str]
) -> Sequence[str | None]:
    return (
        str(message.id),
        *local_time(_taken(message), zone),
        kind_label(message.kind),
        _caller(message),
        "Ja" if message.urgent else "Nei",
        status_label(message.status),
        _agent(message, agents),
        content(message, _form(message, forms)),
    )


def printable(cell: str | None) -> str:
    """One line without control characters: nothing a caller typed reaches the terminal
    as an escape sequence."""
    text = " ".join((cell or "").split())
    return "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in text)


def table_rows(rows: Iterable[Sequence[str | None]]) -> Iterator[list[str]]:
    for row in rows:
        cells = [printable(cell) or "-" for cell in row]
        if len(cells[-1]) > TABLE_CONTENT:
            cells[-1] = cells[-1][: TABLE_CONTENT - 1] + "…"
        yield cells


def message_json(
    message: MessageRecord, zone: ZoneInfo, forms: Forms, agents: Mapping[int, str]
) -> dict[str, Any]:
    form = _form(message, forms)
    date, time = local_time(_taken(message), zone)
    return {
        "id": message.id,
        "customer_id": message.customer_id,
        "kind": message.kind,
        "call_id": message.call_id,
        "taken_at": _taken(message).astimezone(zone).isoformat(),
        "date": date,
        "time": time,
        "caller_number": message.caller_number,
        "urgent": message.urgent,
        "status": message.status,
        "agent_id": message.agent_id,
        "agent": _agent(message, agents),
        "form_version": message.form_version,
        "fields": [
            {"key": key, "label": label, "value": value}
            for key, label, value in field_rows(message, form)
        ],
        "file": message.file,
        "duration_s": message.duration_s,
    }


def log_json(entry: MessageLogRecord, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "at": entry.at.astimezone(zone).isoformat(),
        "status": entry.status,
        "actor": entry.actor,
        "channel": entry.channel,
        "recipient": entry.recipient,
        "result": entry.result,
    }


def message_text(
    customer: Customer,
    message: MessageRecord,
    form: Form | None,
    log: Sequence[MessageLogRecord],
    agents: Mapping[int, str],
) -> str:
    zone = ZoneInfo(customer.timezone)
    date, time = local_time(_taken(message), zone)
    head = [
        ("message", f"{message.id} ({kind_label(message.kind)})"),
        ("customer", f"{customer.id} {printable(customer.name)}"),
        ("taken", f"{date} {time} ({customer.timezone})"),
        ("agent", printable(_agent(message, agents)) or "-"),
        ("call", "-" if message.call_id is None else str(message.call_id)),
        ("caller", _caller(message) or "-"),
        ("urgent", "yes" if message.urgent else "no"),
        ("status", f"{message.status} ({status_label(message.status)})"),
    ]
    if message.form_version is not None:
        head.append(("form", f"{message.kind} version {message.form_version}"))
    if message.kind == "voice":
        head.append(("recording", content(message, None) or "-"))
    width = max(len(key) for key, _ in head)
    lines = [f"{key + ':':<{width + 1}} {value}" for key, value in head]
    rows = field_rows(message, form)
    if rows:
        lines.append("fields:")
        label_width = max(len(printable(label)) for _, label, _ in rows)
        for key, label, value in rows:
            shown = printable(shown_value(form, key, value)) or "-"
            lines.append(f"  {printable(label) + ':':<{label_width + 1}} {shown}")
    lines.append("log:")
    for entry in log:
        at_date, at_time = local_time(entry.at, zone)
        parts = [f"{at_date} {at_time}", entry.status, entry.actor]
        if entry.channel:
            parts.append(f"{entry.channel} {entry.recipient or ''}".strip())
        if entry.result:
            parts.append(entry.result)
        lines.append("  " + "  ".join(printable(p) for p in parts))
    return "\n".join(lines)

"""A customer's call log as the customer reads it (``calls list``, the report e-mails).

Read by the customer's local dates (:func:`calls_of`). The table and the CSV are for the
customer: Norwegian headers and labels, durations in seconds with one decimal and a
decimal comma (rounded up to the tenth, so that a wait shown as ``12,0`` is within the
12 s limit), a withheld number as "skjult nummer". The JSON is for scripts: English keys
(only ever added to), exact seconds, ISO 8601 instants with the customer's UTC offset,
the stored outcome values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any
from zoneinfo import ZoneInfo

from televikar_pbx.db.calls_repo import CallLogEntry, CallRepository
from televikar_pbx.db.repo_base import SessionSource
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.outcomes import Outcome

HEADERS = (
    "Dato",
    "Tid",
    "Innringer",
    "Navn",
    "Ventetid (s)",
    "Utfall",
    "Agent",
    "Samtaletid (s)",
    "Beskjed",
)
WITHHELD = "skjult nummer"
# What Asterisk and SIP trunks put in the caller number when the caller hides it.
WITHHELD_NUMBERS = frozenset(
    {"", "anonymous", "unknown", "restricted", "private", "withheld", "unavailable"}
)
OUTCOMES = {
    Outcome.ANSWERED: "Besvart",
    Outcome.ABANDONED: "Avbrutt",
    Outcome.MESSAGE: "Beskjed",
    Outcome.NO_MESSAGE: "Ingen beskjed",
    Outcome.UNKNOWN_NUMBER: "Ukjent nummer",
    Outcome.REJECTED: "Avvist",
    Outcome.FAILED: "Feil",
}
NOT_ENDED = "Ikke avsluttet"
# What a call produced, in the "Beskjed" column: a voice message by its file name (as
# before), a message or order an agent took by its kind and id ("Bestilling 13").
MESSAGE_KINDS = {"voice": "Talebeskjed", "message": "Beskjed", "order": "Bestilling"}


def local_days(timezone: str, first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` of the local dates ``first`` to ``last`` (both included)."""
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(first, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return start, end


async def calls_of(
    source: SessionSource, customer: Customer, first: dt.date, last: dt.date
) -> list[CallLogEntry]:
    """The customer's calls (only) that arrived on its local dates ``first``..``last``."""
    start, end = local_days(customer.timezone, first, last)
    return await CallRepository(source).calls_between(customer.id, start, end)


# --- one call -----------------------------------------------------------------------------


def caller_number(entry: CallLogEntry) -> str | None:
    """The caller's number; None when it is withheld or missing."""
    number = (entry.call.caller_number or "").strip()
    return None if number.casefold() in WITHHELD_NUMBERS else number


def seconds(duration: dt.timedelta | None) -> str | None:
    """Seconds with one decimal and a decimal comma, rounded up to the next tenth:
    12.01 s is ``12,1``, so that ``12,0`` always means within 12 s."""
    if duration is None:
        return None
    tenths = -(-duration // dt.timedelta(milliseconds=100))  # ceiling division
    whole, tenth = divmod(abs(tenths), 10)
    return f"{'-' if tenths < 0 else ''}{whole},{tenth}"


def local_time(moment: dt.datetime, zone: ZoneInfo) -> tuple[str, str]:
    """Date and time of day; a time in the hour repeated in autumn gets its UTC offset."""
    local = moment.astimezone(zone)
    time = f"{local:%H:%M:%S}"
    offset = local.utcoffset()
    if offset is not None and local.replace(fold=1 - local.fold).utcoffset() != offset:
        hours, minutes = divmod(abs(offset) // dt.timedelta(minutes=1), 60)
        time += f" {'-' if offset < dt.timedelta(0) else '+'}{hours:02}:{minutes:02}"
    return f"{local:%Y-%m-%d}", time


def outcome_label(entry: CallLogEntry) -> str:
    outcome = entry.call.outcome
    if outcome is None:
        return NOT_ENDED
    try:
        return OUTCOMES[Outcome(outcome)]
    except ValueError:  # a value newer than this list
        return outcome


def message_cell(entry: CallLogEntry, kinds: Mapping[str, str] = MESSAGE_KINDS) -> str | None:
    """The messages a call produced, in one cell; None: none."""
    taken = entry.messages or ((entry.message,) if entry.message is not None else ())
    parts = [
        PurePath(m.file).name
        if m.kind == "voice" and m.file
        else f"{kinds.get(m.kind, m.kind)} {m.id}"
        for m in taken
    ]
    return ", ".join(parts) or None


def cells(entry: CallLogEntry, zone: ZoneInfo) -> Sequence[str | None]:
    """One row of the table and the CSV, in the order of HEADERS; None is empty."""
    number = caller_number(entry)
    return (
        *local_time(entry.call.arrived_at, zone),
        number or WITHHELD,
        entry.call.caller_name if number else None,
        seconds(entry.wait),
        outcome_label(entry),
        entry.answered_by,
        seconds(entry.talk),
        message_cell(entry),
    )


def _instant(moment: dt.datetime | None, zone: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(zone).isoformat()


def _exact(duration: dt.timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()


def call_json(customer: Customer, entry: CallLogEntry, zone: ZoneInfo) -> dict[str, Any]:
    call, message = entry.call, entry.message
    number = caller_number(entry)
    date, time = local_time(call.arrived_at, zone)
    return {
        "id": call.id,
        "customer_id": customer.id,
        "arrived_at": _instant(call.arrived_at, zone),
        "date": date,
        "time": time,
        "caller_number": number,
        "caller_name": call.caller_name if number else None,
        "caller_withheld": number is None,
        "wait_s": _exact(entry.wait),
        "outcome": call.outcome,
        "agent_id": call.agent_id if entry.answered_by is not None else None,
        "agent": entry.answered_by,
        "answered_at": _instant(call.answered_at, zone),
        "ended_at": _instant(call.ended_at, zone),
        "talk_s": _exact(entry.talk),
        "message": (
            None
            if message is None
            else {"id": message.id, "file": message.file, "duration_s": message.duration_s}
        ),
        # Every message the call produced, the voice message included.
        "messages": [
            {"id": m.id, "kind": m.kind, "status": m.status, "file": m.file} for m in entry.messages
        ],
    }

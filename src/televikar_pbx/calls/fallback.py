"""Calls the dialplan answered while the service was down, imported into the call log.

When ``Stasis()`` fails (our app is not connected), ``[televikar-fallback]`` in
asterisk/conf/extensions.conf answers, plays the message prompt and records, leaving
two files per call in ``<recording spool>/fallback``: ``<uniqueid>.wav`` and
``<uniqueid>.call``, ``key=value`` fields separated by spaces, written at once by the
hang-up handler (a file without ``ended=`` is not complete). The service imports them when it
starts and whenever its ARI connection comes back: a ``message`` call (recording of at
least ``MIN_MESSAGE_S``) or ``no_message``, with a ``message_capture`` journal entry
(reason ``service_down``) at the answer, so the SLA wait is arrival to capture.

Each import is idempotent: the call is looked up by its channel id (the uniqueid)
first, and the files are removed only after the call is recorded; a crash in between
leaves files that the next import finishes without counting the call twice.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import structlog

from televikar_pbx.calls.journal import CallJournal
from televikar_pbx.calls.media import keep_private, wav_seconds
from televikar_pbx.calls.ports import CallStore
from televikar_pbx.domain.acd import MIN_MESSAGE_S
from televikar_pbx.domain.directory import Directory
from televikar_pbx.domain.outcomes import Outcome

log = structlog.get_logger("televikar_pbx.calls.fallback")

REASON = "service_down"


class FallbackStore(CallStore, Protocol):
    async def find_by_channel(self, channel_id: str) -> object | None: ...


@dataclass(frozen=True, slots=True)
class FallbackCall:
    """What the dialplan left behind for one call."""

    uniqueid: str
    dialled: str
    caller: str | None
    forwarded_from: str | None
    arrived_at: datetime
    answered_at: datetime
    ended_at: datetime


def _instant(value: str) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def parse_call_file(text: str) -> FallbackCall | None:
    """The call described by a ``.call`` file; None while it is incomplete (no
    ``ended=`` yet). Raises ValueError when a complete file is malformed."""
    fields: dict[str, str] = {}
    for field in text.split():
        key, sep, value = field.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    if not fields.get("ended"):
        return None
    try:
        ended = _instant(fields["ended"])
        # Missing start times (a hang-up before the answer): the end stands in.
        arrived = _instant(fields["arrived"]) if fields.get("arrived") else ended
        answered = _instant(fields["answered"]) if fields.get("answered") else ended
        return FallbackCall(
            uniqueid=fields["uniqueid"],
            dialled=fields.get("dialled", ""),
            caller=fields.get("caller") or None,
            forwarded_from=fields.get("forwarded_from") or None,
            arrived_at=arrived,
            answered_at=max(answered, arrived),
            ended_at=max(ended, answered, arrived),
        )
    except (KeyError, ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"malformed fallback call file: {exc}") from None


async def import_fallback_calls(
    folder: Path, directory: Directory, store: FallbackStore, messages_dir: Path
) -> int:
    """Import every complete call in ``folder``; returns how many were added."""
    added = 0
    for meta in await asyncio.to_thread(_complete_candidates, folder):
        try:
            text = await asyncio.to_thread(meta.read_text, "utf-8", "replace")
            call = parse_call_file(text)
        except (OSError, ValueError) as exc:
            log.error("fallback.unreadable", file=str(meta), error=str(exc))
            continue
        if call is None:
            continue  # the call is still going on (or Asterisk died mid-call)
        if await _import_one(call, meta.with_suffix(".wav"), directory, store, messages_dir):
            added += 1
        await asyncio.to_thread(meta.unlink, True)
    if added:
        log.info("fallback.imported", calls=added, folder=str(folder))
    return added


async def _import_one(
    call: FallbackCall,
    wav: Path,
    directory: Directory,
    store: FallbackStore,
    messages_dir: Path,
) -> bool:
    bound = log.bind(call_id=call.uniqueid, dialled=call.dialled)
    if await store.find_by_channel(call.uniqueid) is not None:
        bound.info("fallback.already_imported")
        await asyncio.to_thread(wav.unlink, True)
        return False
    customer = directory.customer_for_call(call.dialled, call.forwarded_from)
    record_id = await store.create_call(
        channel_id=call.uniqueid,
        linkedid=call.uniqueid,
        customer_id=None if customer is None else customer.id,
        dialled_number=call.dialled,
        caller_number=call.caller,
        caller_name=None,
        arrived_at=call.arrived_at,
    )
    journal = CallJournal(store)
    await journal.message_capture(record_id, call.answered_at, REASON)
    seconds = await asyncio.to_thread(wav_seconds, wav)  # 0.0 when there is none
    if customer is None:
        outcome = Outcome.UNKNOWN_NUMBER
    elif seconds >= MIN_MESSAGE_S:
        target = await asyncio.to_thread(_keep, wav, messages_dir / str(customer.id))
        await store.add_message(record_id, customer.id, call.caller, str(target), seconds)
        outcome = Outcome.MESSAGE
    else:
        outcome = Outcome.NO_MESSAGE
    if outcome is not Outcome.MESSAGE:
        await asyncio.to_thread(wav.unlink, True)
    await journal.close_row(record_id, call.ended_at, outcome)
    bound.info("fallback.call_imported", outcome=outcome.value, seconds=round(seconds, 2))
    return True


def _complete_candidates(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.call")) if folder.is_dir() else []


def _keep(source: Path, folder: Path) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder.parent, 0o700)
    return keep_private(source, folder / f"fallback-{source.name}")

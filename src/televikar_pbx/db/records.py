"""What the call and message repositories hand out: plain frozen values, no SQLAlchemy.

Kept in ``db/`` rather than ``domain/``: these are rows of the call log (database ids,
summary columns), not states of the ACD.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from televikar_pbx.domain.outcomes import Outcome

# The outcome vocabulary lives in the core; the old name stays for the call log.
CallOutcome = Outcome


@dataclass(frozen=True, slots=True)
class CallRecord:
    id: int
    channel_id: str
    linkedid: str
    customer_id: int | None
    dialled_number: str
    caller_number: str | None
    caller_name: str | None
    arrived_at: dt.datetime
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    agent_id: int | None = None
    outcome: str | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str | None = None


@dataclass(frozen=True, slots=True)
class CallEventRecord:
    call_id: int
    seq: int
    type: str
    at: dt.datetime
    agent_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: int
    call_id: int | None
    customer_id: int
    caller_number: str | None
    # Voice messages: where the recording is kept, and its length.
    file: str | None
    duration_s: float | None
    created_at: dt.datetime
    kind: str = "voice"
    fields: dict[str, Any] = field(default_factory=dict)
    form_version: int | None = None
    agent_id: int | None = None
    urgent: bool = False
    status: str = "new"
    taken_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class MessageLogRecord:
    at: dt.datetime
    status: str
    actor: str
    channel: str | None = None
    recipient: str | None = None
    result: str | None = None
    message_id: int | None = None


@dataclass(frozen=True, slots=True)
class RecipientRecord:
    id: int
    customer_id: int
    channel: str  # email | sms
    address: str
    urgent_only: bool = False
    digest: bool = False
    position: int = 0
    name: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxJob:
    """One claimed delivery: what to send, to whom, and its stable key."""

    id: int
    message_id: int
    channel: str
    address: str
    message_key: str
    attempts: int
    generation: int = 0
    batch_key: str | None = None

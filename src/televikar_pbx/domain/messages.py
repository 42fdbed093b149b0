"""Messages taken for a customer, and the life of their status (no I/O, no clock).

Theory of operation
-------------------
A message is what the answering service sells besides a fast answer: a caller's
recorded ``voice`` message, or a ``message`` ("beskjed") or ``order`` ("bestilling") an
agent filled in on the customer's form (:mod:`televikar_pbx.domain.message_forms`), the
values checked by :mod:`televikar_pbx.domain.message_validation` before anything is
saved. A message keeps the version of the form it was taken with.

Each message goes to its customer's recipients as *deliveries* (one per recipient and
channel, :mod:`televikar_pbx.domain.message_delivery`). A delivery and the message
itself move through the same statuses:

- ``new``: saved, not yet handed to a channel;
- ``sent``: handed to the SMTP server or the SMS gateway;
- ``delivered``: the channel reported it reached the phone (SMS delivery reports; plain
  e-mail has no such report and stays ``sent``);
- ``acknowledged``: the customer confirmed they read it (the web desk, next issue);
- ``failed``: the last retry failed, or the channel reported it undeliverable.

Transitions are data (:data:`TRANSITIONS`); :func:`advance` raises
:class:`IllegalTransition` for any other pair and changes nothing (the status is a
value). ``resend`` takes a message or delivery back to ``new`` from any status after
``new``: the shell writes new deliveries for it (with a new Message-ID generation).

The message's own status is :func:`combined_status` of its deliveries: ``failed`` when
any failed (someone did not get it; ``status`` shows it), else the least advanced
delivery. ``acknowledged`` is the customer's, so it is reached on the message itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from televikar_pbx.domain.message_forms import FieldValue


class MessageKind(StrEnum):
    VOICE = "voice"  # the caller spoke to our recording
    MESSAGE = "message"  # taken by an agent ("beskjed")
    ORDER = "order"  # taken by an agent ("bestilling")


class MessageStatus(StrEnum):
    NEW = "new"
    SENT = "sent"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"


class StatusEvent(StrEnum):
    """What happened to a message or a delivery (past tense)."""

    SENT = "sent"  # handed to the channel
    DELIVERED = "delivered"  # the channel reported it on the phone
    ACKNOWLEDGED = "acknowledged"  # the customer confirmed it
    FAILED = "failed"  # last retry failed, or reported undeliverable
    RESEND_REQUESTED = "resend_requested"  # an operator asked for it again


_S = MessageStatus
_E = StatusEvent

TRANSITIONS: Mapping[MessageStatus, Mapping[StatusEvent, MessageStatus]] = MappingProxyType(
    {
        _S.NEW: MappingProxyType({_E.SENT: _S.SENT, _E.FAILED: _S.FAILED}),
        _S.SENT: MappingProxyType(
            {
                _E.DELIVERED: _S.DELIVERED,
                _E.ACKNOWLEDGED: _S.ACKNOWLEDGED,  # e-mail has no delivery report
                _E.FAILED: _S.FAILED,  # the gateway reported it undeliverable
                _E.RESEND_REQUESTED: _S.NEW,
            }
        ),
        _S.DELIVERED: MappingProxyType(
            {_E.ACKNOWLEDGED: _S.ACKNOWLEDGED, _E.RESEND_REQUESTED: _S.NEW}
        ),
        _S.ACKNOWLEDGED: MappingProxyType({_E.RESEND_REQUESTED: _S.NEW}),
        _S.FAILED: MappingProxyType({_E.RESEND_REQUESTED: _S.NEW}),
    }
)
"""``{status: {event: next status}}``; every pair not listed is illegal."""

# How far along each status is, for combined_status (failed is handled apart).
_PROGRESS = {_S.NEW: 0, _S.SENT: 1, _S.DELIVERED: 2, _S.ACKNOWLEDGED: 3}


class IllegalTransition(ValueError):
    """The event cannot happen in this status; nothing changed."""

    def __init__(self, status: MessageStatus, event: StatusEvent) -> None:
        allowed = ", ".join(e.value for e in TRANSITIONS[status]) or "none"
        super().__init__(
            f"a message that is {status.value} cannot be {event.value} (allowed: {allowed})"
        )
        self.status = status
        self.event = event


def advance(status: MessageStatus, event: StatusEvent) -> MessageStatus:
    """The status after ``event``; :class:`IllegalTransition` if it cannot happen."""
    try:
        return TRANSITIONS[status][event]
    except KeyError:
        raise IllegalTransition(status, event) from None


def combined_status(deliveries: Iterable[MessageStatus]) -> MessageStatus:
    """A message's status from its deliveries' (rule in the module docstring); ``new``
    when it has none yet."""
    statuses = list(deliveries)
    if not statuses:
        return _S.NEW
    if _S.FAILED in statuses:
        return _S.FAILED
    return min(statuses, key=_PROGRESS.__getitem__)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One line of a message's log: who or what moved it, when, over which channel to
    whom, and the result (an error, the gateway's id, ...)."""

    at: datetime
    status: MessageStatus
    event: StatusEvent
    actor: str  # "outbox", "gateway", an agent's or operator's name
    channel: str | None = None
    recipient: str | None = None
    result: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One message as the core sees it. ``values`` are the validated field values of
    form ``form_version`` (empty for a voice message, which has ``recording`` and
    ``duration_s`` instead)."""

    id: int
    customer_id: int
    kind: MessageKind
    taken_at: datetime
    caller_number: str | None  # E.164, None when withheld
    urgent: bool = False
    call_id: int | None = None
    agent: str | None = None
    form_version: int | None = None
    values: Mapping[str, FieldValue] = field(default_factory=dict)
    recording: str | None = None
    duration_s: float | None = None
    status: MessageStatus = MessageStatus.NEW

    def __post_init__(self) -> None:
        if self.taken_at.tzinfo is None:
            raise ValueError("taken_at must be timezone-aware")
        if self.kind is MessageKind.VOICE:
            if self.recording is None or self.duration_s is None:
                raise ValueError("a voice message needs its recording and duration")
        elif self.form_version is None:
            raise ValueError(f"a {self.kind.value} needs the version of its form")
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

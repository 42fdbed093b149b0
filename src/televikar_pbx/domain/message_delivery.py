"""Who gets a message, over which channel, when to retry, and its stable Message-ID
(no I/O, no clock). Report e-mails have their own rules in ``domain/delivery.py``.

Recipients
----------
A customer's recipient is one address on one channel: an e-mail address or a mobile
number (E.164) for SMS, with a scope (``all`` messages or ``urgent_only``) and, for
e-mail, ``digest``: a daily digest instead of one e-mail per message. A person who wants
both e-mail and SMS is two recipients (with the same ``name``).

The rule (:func:`plan_deliveries`)
----------------------------------
- A message goes only to recipients of its own customer: any other is refused with
  :class:`ForeignRecipient` before anything is planned (confidentiality).
- Not urgent: every recipient whose scope is ``all``; an e-mail recipient with
  ``digest`` gets it in the next digest rather than now.
- Urgent: every recipient, whatever the scope, at once (a digest never holds an urgent
  message). So an urgent message goes by SMS *and* e-mail to everyone who has both, and
  ``urgent_only`` recipients hear only of what cannot wait. A customer with escalation
  gets it one person at a time instead (:mod:`televikar_pbx.domain.escalation`).
- The same (channel, address) twice is one delivery.

Retries (:func:`next_attempt`)
------------------------------
An attempt that fails is tried again after :data:`RETRY_DELAYS` (10 s, 30 s, 1, 2, 5,
10, 20, 30 min, then hourly: about 8 h of trying in all), so a short SMTP outage costs
seconds and a long one still gets through the same working day; after the last delay
the delivery is ``failed`` with the last error.

Digest (:func:`next_digest_at`)
-------------------------------
A digest goes once a day at :data:`DIGEST_AT` (16:00) on the customer's local calendar,
with the messages planned ``digest`` since the last one; its Message-ID is stable per
customer, recipient and local day (:func:`digest_message_id`).

Message-ID (:func:`message_id`)
-------------------------------
Derived from the message, the recipient and the *generation* (0, then 1, 2, ... for each
``messages resend``), never from the attempt or the time: an e-mail sent again after a
crash between "handed over" and "recorded" carries the same Message-ID, so the receiving
side sees a duplicate for what it is. A resend is a new generation, so mail clients that
drop repeated Message-IDs still show it. The SMS gateway's reference
(:func:`sms_reference`) is derived the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from televikar_pbx.domain.message_validation import normalise_email, normalise_phone


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Scope(StrEnum):
    ALL = "all"
    URGENT_ONLY = "urgent_only"


@dataclass(frozen=True, slots=True)
class Recipient:
    customer_id: int
    channel: Channel
    address: str  # e-mail address or E.164 mobile number, normalised by :meth:`create`
    scope: Scope = Scope.ALL
    digest: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        if self.digest and self.channel is not Channel.EMAIL:
            raise ValueError("only an e-mail recipient can get a daily digest")

    @classmethod
    def create(
        cls,
        customer_id: int,
        channel: Channel,
        address: str,
        scope: Scope = Scope.ALL,
        *,
        digest: bool = False,
        name: str = "",
    ) -> Recipient:
        """A recipient with its address checked and normalised (``ValueError`` with a
        Norwegian reason otherwise): for ``customers recipients add``."""
        if channel is Channel.EMAIL:
            address = normalise_email(address.strip())
        else:
            address = normalise_phone(address.strip())
        return cls(customer_id, channel, address, scope, digest, name.strip())

    @property
    def key(self) -> str:
        """What identifies the recipient across renames: ``email:kari@example.com``."""
        return f"{self.channel.value}:{self.address}"


class When(StrEnum):
    NOW = "now"
    DIGEST = "digest"


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    recipient: Recipient
    when: When

    @property
    def channel(self) -> Channel:
        return self.recipient.channel


class ForeignRecipient(ValueError):
    """A recipient of another customer was offered a message: nothing was planned."""


def plan_deliveries(
    customer_id: int, urgent: bool, recipients: Iterable[Recipient]
) -> list[PlannedDelivery]:
    """The deliveries of a message of ``customer_id`` (rules in the module docstring),
    in the recipients' order."""
    candidates = list(recipients)
    foreign = [r for r in candidates if r.customer_id != customer_id]
    if foreign:
        raise ForeignRecipient(
            f"recipients of customer(s) {sorted({r.customer_id for r in foreign})} "
            f"offered a message of customer {customer_id}"
        )
    planned: list[PlannedDelivery] = []
    seen: set[str] = set()
    for r in candidates:
        if r.key in seen or (not urgent and r.scope is Scope.URGENT_ONLY):
            continue
        seen.add(r.key)
        when = When.DIGEST if r.digest and not urgent else When.NOW
        planned.append(PlannedDelivery(r, when))
    return planned


RETRY_DELAYS: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s) for s in (10, 30, 60, 120, 300, 600, 1200, 1800, *([3600] * 7))
)
"""Wait after failed attempt n (1-based) before attempt n+1; one attempt more than
delays, then ``failed``."""
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def next_attempt(attempts_made: int, failed_at: datetime) -> datetime | None:
    """When to try again after ``attempts_made`` attempts, the last failing at
    ``failed_at``; None: that was the last, the delivery has failed."""
    if attempts_made < 1:
        raise ValueError(f"attempts_made counts from 1, got {attempts_made}")
    if attempts_made >= MAX_ATTEMPTS:
        return None
    return failed_at + RETRY_DELAYS[attempts_made - 1]


def _digest(message_id: int, recipient_key: str, generation: int) -> str:
    if message_id < 1 or generation < 0:
        raise ValueError(f"no Message-ID for message {message_id}, generation {generation}")
    text = f"{message_id}|{recipient_key}|{generation}".encode()
    return hashlib.sha256(text).hexdigest()[:20]


def message_id(message_id: int, recipient_key: str, domain: str, generation: int = 0) -> str:
    """The RFC 5322 Message-ID of message ``message_id`` to ``recipient_key``
    (:attr:`Recipient.key`); ``domain`` is ours (the sender's)."""
    if not domain or any(c in domain for c in "<>@ \r\n"):
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    suffix = f".r{generation}" if generation else ""
    return f"<msg{message_id}{suffix}.{_digest(message_id, recipient_key, generation)}@{domain}>"


def sms_reference(message_id: int, recipient_key: str, generation: int = 0) -> str:
    """Our reference for the SMS gateway, at most 36 characters, returned in its
    delivery reports: ``m<id>g<generation>-<hash>``."""
    ref = f"m{message_id}g{generation}-{_digest(message_id, recipient_key, generation)[:12]}"
    if len(ref) > 36:  # pragma: no cover - an id of 20 digits
        raise ValueError(f"SMS reference too long: {ref}")
    return ref


_REFERENCE = re.compile(r"m([1-9][0-9]*)g([0-9]+)-[0-9a-f]{12}")


def parse_sms_reference(ref: str) -> tuple[int, int] | None:
    """``(message id, generation)`` of one of our references, else None (a report for
    something we did not send, or a forged one: the shell still looks the full
    reference up before it believes it)."""
    m = _REFERENCE.fullmatch(ref.strip())
    return None if m is None else (int(m.group(1)), int(m.group(2)))


DIGEST_AT = time(16, 0)
"""When a customer's daily digest goes, local time (the end of an office day)."""


def next_digest_at(after: datetime, timezone: str, at: time = DIGEST_AT) -> datetime:
    """The first digest time strictly after ``after`` (aware), as aware UTC: ``at`` on
    the customer's local calendar, so it stays 16:00 across DST changes. A local time
    that does not exist that day (the spring gap) is read with the offset before it."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    zone = ZoneInfo(timezone)
    day = after.astimezone(zone).date()
    while True:
        candidate = datetime.combine(day, at, tzinfo=zone)
        if candidate > after:
            return candidate.astimezone(UTC)
        day += timedelta(days=1)


def digest_message_id(customer_id: int, recipient_key: str, day: date, domain: str) -> str:
    """The Message-ID of one recipient's digest for the local ``day``: stable, like
    :func:`message_id`, so a digest sent twice after a crash is recognisable."""
    if not domain or any(c in domain for c in "<>@ \r\n"):
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    text = f"digest|{customer_id}|{recipient_key}|{day.isoformat()}".encode()
    digest = hashlib.sha256(text).hexdigest()[:20]
    return f"<digest{customer_id}.{day:%Y%m%d}.{digest}@{domain}>"

"""Our small SMS port: what the outbox needs from any SMS gateway.

SmsError (a TelevikarError) is what an adapter raises; ``permanent`` tells the outbox
not to retry (a number the gateway refuses, a request it will never take) as opposed
to an outage or an account problem (connection refused, 5xx, timeout, wrong password, no
credit), which the retry schedule handles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from televikar_pbx.errors import TelevikarError


class SmsError(TelevikarError):
    """The gateway did not take the SMS; ``permanent``: trying again will not help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class SmsReceipt:
    """The gateway took the SMS: its own id (in its delivery reports) and how many
    segments it will bill."""

    gateway_id: str
    segments: int


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a gateway's delivery report says about one SMS."""

    reference: str | None  # ours, given at send (domain.message_delivery.sms_reference)
    gateway_id: str
    number: str  # E.164 when it parses, else as the gateway wrote it
    delivered: bool
    error: str | None = None


class SmsGateway(Protocol):
    async def send(self, to: str, text: str, reference: str) -> SmsReceipt:
        """Send ``text`` to ``to`` (E.164); ``reference`` comes back in the delivery
        report. :class:`SmsError` when it was not taken."""
        ...

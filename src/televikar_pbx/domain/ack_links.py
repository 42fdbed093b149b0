"""Signed, expiring tokens for the links that acknowledge a message (issue 14).

An urgent message's e-mail carries a link ``.../ack/<token>``; opening it marks the
message acknowledged without a log-in. The token names the message and when the link
stops working, signed with a key derived from the server's secret::

    token = "<message id>.<expiry, unix seconds>.<base64url HMAC-SHA256>"
    HMAC key = subkey(server secret, "ack-link"); signed text = "ack:<id>:<expiry>"

``check`` answers VALID, EXPIRED (genuine but too late) or TAMPERED (anything else:
malformed, another message id or expiry, another key). The signature is checked
first, so an altered token never learns more than TAMPERED. Pure: ``now`` is given.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from televikar_pbx.domain.auth import subkey

DEFAULT_VALIDITY = dt.timedelta(days=7)


class AckStatus(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    TAMPERED = "tampered"


@dataclass(frozen=True, slots=True)
class AckCheck:
    status: AckStatus
    message_id: int | None = None  # set when VALID or EXPIRED
    expires_at: dt.datetime | None = None


def _signature(server_secret: bytes, message_id: int, expiry: int) -> str:
    key = subkey(server_secret, "ack-link")
    digest = hmac.new(key, f"ack:{message_id}:{expiry}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(server_secret: bytes, message_id: int, expires_at: dt.datetime) -> str:
    """A token for acknowledging ``message_id`` until ``expires_at`` (aware)."""
    if expires_at.tzinfo is None:
        raise ValueError(f"expires_at must be timezone-aware: {expires_at!r}")
    if message_id < 1:
        raise ValueError(f"not a message id: {message_id}")
    if not server_secret:
        raise ValueError("no server secret to sign with")
    expiry = int(expires_at.timestamp())
    return f"{message_id}.{expiry}.{_signature(server_secret, message_id, expiry)}"


def _canonical(text: str) -> bool:
    return text.isascii() and text.isdigit() and str(int(text)) == text


def check(server_secret: bytes, token: str, now: dt.datetime) -> AckCheck:
    """Whether ``token`` is a genuine, unexpired link (see the module's docstring)."""
    parts = token.split(".")
    if len(parts) != 3 or not server_secret:
        return AckCheck(AckStatus.TAMPERED)
    raw_id, raw_expiry, given = parts
    # Canonical decimal only ("+1", " 1", "01" would name the same numbers but were
    # never issued): the signed text must be exactly what sign() produced.
    if not all(_canonical(part) for part in (raw_id, raw_expiry)) or not given.isascii():
        return AckCheck(AckStatus.TAMPERED)
    message_id, expiry = int(raw_id), int(raw_expiry)
    expected = _signature(server_secret, message_id, expiry)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return AckCheck(AckStatus.TAMPERED)
    expires_at = dt.datetime.fromtimestamp(expiry, dt.UTC)
    status = AckStatus.VALID if now < expires_at else AckStatus.EXPIRED
    return AckCheck(status, message_id, expires_at)

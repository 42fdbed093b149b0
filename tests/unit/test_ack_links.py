"""Signed, expiring acknowledgement links (domain.ack_links): valid, expired, tampered."""

from __future__ import annotations

import datetime as dt

import pytest

from televikar_pbx.domain.ack_links import AckStatus, check, sign

SECRET = b"k" * 32
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
EXPIRES = T0 + dt.timedelta(days=7)


def test_valid_until_the_expiry() -> None:
    token = sign(SECRET, 42, EXPIRES)
    result = check(SECRET, token, T0)
    assert (result.status, result.message_id, result.expires_at) == (
        AckStatus.VALID,
        42,
        EXPIRES,
    )
    assert check(SECRET, token, EXPIRES - dt.timedelta(seconds=1)).status is AckStatus.VALID


def test_expired_at_and_after_the_expiry() -> None:
    token = sign(SECRET, 42, EXPIRES)
    for now in (EXPIRES, EXPIRES + dt.timedelta(days=30)):
        result = check(SECRET, token, now)
        assert (result.status, result.message_id) == (AckStatus.EXPIRED, 42)


def test_tampered_tokens() -> None:
    token = sign(SECRET, 42, EXPIRES)
    message_id, expiry, signature = token.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for bad in (
        f"43.{expiry}.{signature}",  # another message
        f"{message_id}.{int(expiry) + 86400}.{signature}",  # a later expiry
        f"{message_id}.{expiry}.{flipped}",
        f"{message_id}.{expiry}.",
        f"042.{expiry}.{signature}",  # same number, not as issued
        f"+42.{expiry}.{signature}",
        f"{message_id}.{expiry}",
        f"{token}.x",
        "",
        "ø.1.x",
        f"{message_id}.{expiry}.{signature}ø",
    ):
        result = check(SECRET, bad, T0)
        assert (result.status, result.message_id) == (AckStatus.TAMPERED, None), bad
    # Another server's secret.
    assert check(b"j" * 32, token, T0).status is AckStatus.TAMPERED
    # An expired link that was altered says tampered, not expired.
    assert check(SECRET, f"43.{expiry}.{signature}", EXPIRES).status is AckStatus.TAMPERED


def test_sign_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        sign(SECRET, 42, EXPIRES.replace(tzinfo=None))
    with pytest.raises(ValueError):
        sign(SECRET, 0, EXPIRES)
    with pytest.raises(ValueError):
        sign(b"", 42, EXPIRES)


def test_token_is_url_safe() -> None:
    token = sign(SECRET, 123456, EXPIRES)
    assert all(c.isalnum() or c in "-_." for c in token)

"""Who gets a message and how, retries, and stable identities."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from televikar_pbx.domain.message_delivery import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    Channel,
    ForeignRecipient,
    Recipient,
    Scope,
    When,
    digest_message_id,
    message_id,
    next_attempt,
    next_digest_at,
    parse_sms_reference,
    plan_deliveries,
    sms_reference,
)
from televikar_pbx.domain.message_validation import InvalidValue

T0 = dt.datetime(2026, 10, 25, 0, 59, 50, tzinfo=dt.UTC)  # the night clocks go back

KARI_MAIL = Recipient.create(7, Channel.EMAIL, "Kari@Example.com", name="Kari")
KARI_SMS = Recipient.create(7, Channel.SMS, "998 87 766", Scope.URGENT_ONLY, name="Kari")
BOOKS = Recipient.create(7, Channel.EMAIL, "regnskap@example.com", digest=True)
OLA_SMS = Recipient.create(7, Channel.SMS, "+4741234567")
RECIPIENTS = [KARI_MAIL, KARI_SMS, BOOKS, OLA_SMS]


def _plan(urgent: bool, recipients: list[Recipient] = RECIPIENTS) -> list[tuple[str, When]]:
    return [(p.recipient.key, p.when) for p in plan_deliveries(7, urgent, recipients)]


def test_create_normalises_addresses() -> None:
    assert KARI_MAIL.key == "email:Kari@example.com"
    assert KARI_SMS.key == "sms:+4799887766"
    with pytest.raises(InvalidValue, match="telefonnummer"):
        Recipient.create(7, Channel.SMS, "123")
    with pytest.raises(InvalidValue, match="e-postadresse"):
        Recipient.create(7, Channel.EMAIL, "kari")
    with pytest.raises(ValueError, match="digest"):
        Recipient.create(7, Channel.SMS, "+4741234567", digest=True)


def test_not_urgent_goes_to_scope_all_and_digest_waits() -> None:
    assert _plan(urgent=False) == [
        ("email:Kari@example.com", When.NOW),
        ("email:regnskap@example.com", When.DIGEST),
        ("sms:+4741234567", When.NOW),
    ]


def test_urgent_goes_to_everyone_on_every_channel_now() -> None:
    assert _plan(urgent=True) == [
        ("email:Kari@example.com", When.NOW),
        ("sms:+4799887766", When.NOW),
        ("email:regnskap@example.com", When.NOW),
        ("sms:+4741234567", When.NOW),
    ]


def test_same_address_twice_is_one_delivery() -> None:
    assert _plan(False, [KARI_MAIL, KARI_MAIL]) == [("email:Kari@example.com", When.NOW)]
    assert _plan(False, []) == []


def test_another_customers_recipient_is_refused() -> None:
    other = Recipient.create(8, Channel.EMAIL, "sjef@konkurrent.no")
    with pytest.raises(ForeignRecipient, match=r"\[8\].*customer 7"):
        plan_deliveries(7, True, [KARI_MAIL, other])


def test_retry_schedule_and_the_last_retry() -> None:
    times = [T0]
    attempts = 1
    while (at := next_attempt(attempts, times[-1])) is not None:
        times.append(at)
        attempts += 1
    assert attempts == MAX_ATTEMPTS == len(RETRY_DELAYS) + 1
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == list(RETRY_DELAYS)
    assert gaps[:3] == [dt.timedelta(seconds=s) for s in (10, 30, 60)]
    assert gaps == sorted(gaps)  # never shorter than the one before
    assert dt.timedelta(hours=7) < times[-1] - T0 < dt.timedelta(hours=9)
    with pytest.raises(ValueError):
        next_attempt(0, T0)


def test_message_id_is_stable_and_distinct() -> None:
    a = message_id(42, KARI_MAIL.key, "televikar.example")
    assert a == message_id(42, KARI_MAIL.key, "televikar.example")  # after a crash: same
    assert a.startswith("<msg42.") and a.endswith("@televikar.example>")
    others = {
        message_id(43, KARI_MAIL.key, "televikar.example"),
        message_id(42, BOOKS.key, "televikar.example"),
        message_id(42, KARI_MAIL.key, "televikar.example", generation=1),
    }
    assert a not in others and len(others) == 3
    with pytest.raises(ValueError):
        message_id(42, KARI_MAIL.key, "evil>\r\nBcc: x@y")


def test_sms_reference() -> None:
    ref = sms_reference(42, OLA_SMS.key, generation=3)
    assert len(ref) <= 36 and ref == sms_reference(42, OLA_SMS.key, generation=3)
    assert ref != sms_reference(42, KARI_SMS.key, generation=3)
    assert parse_sms_reference(ref) == (42, 3)
    assert parse_sms_reference("ABC123") is None


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # Summer (UTC+2): 16:00 in Oslo is 14:00 UTC.
        (dt.datetime(2026, 10, 24, 13, 59, tzinfo=dt.UTC), dt.datetime(2026, 10, 24, 14, 0)),
        (dt.datetime(2026, 10, 24, 14, 0, tzinfo=dt.UTC), dt.datetime(2026, 10, 25, 15, 0)),
        # The night clocks go back: the next day's 16:00 is in winter time (UTC+1).
        (T0, dt.datetime(2026, 10, 25, 15, 0)),
        # Spring forward (2027-03-28): 16:00 CEST is 14:00 UTC.
        (dt.datetime(2027, 3, 27, 23, 0, tzinfo=dt.UTC), dt.datetime(2027, 3, 28, 14, 0)),
    ],
)
def test_next_digest_at(after: dt.datetime, expected: dt.datetime) -> None:
    assert next_digest_at(after, "Europe/Oslo") == expected.replace(tzinfo=dt.UTC)


def test_next_digest_in_the_spring_gap_and_naive_times() -> None:
    # 02:30 does not exist in Oslo on 2027-03-28; read with the winter offset: 01:30 UTC.
    after = dt.datetime(2027, 3, 28, 0, 0, tzinfo=dt.UTC)
    at = next_digest_at(after, "Europe/Oslo", dt.time(2, 30))
    assert at == dt.datetime(2027, 3, 28, 1, 30, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="aware"):
        next_digest_at(dt.datetime(2027, 1, 1), "Europe/Oslo")


def test_digest_message_id() -> None:
    day = dt.date(2026, 10, 25)
    a = digest_message_id(7, BOOKS.key, day, "televikar.example")
    assert a == digest_message_id(7, BOOKS.key, day, "televikar.example")
    assert a.startswith("<digest7.20261025.")
    assert a != digest_message_id(7, BOOKS.key, day + dt.timedelta(days=1), "televikar.example")
    assert a != digest_message_id(7, KARI_MAIL.key, day, "televikar.example")

"""The daily digest e-mail, parsed back: order, every message's fields, recordings."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage

import pytest

from televikar_pbx.delivery.email_digest import DigestItem, compose_digest
from televikar_pbx.delivery.email_message import Recording
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.message_delivery import digest_message_id
from televikar_pbx.domain.message_forms import DEFAULT_MESSAGE_FORM
from televikar_pbx.domain.messages import Message, MessageKind

CUSTOMER = Customer(7, "Fjordbakst AS", "Fjordbakst")
DAY = dt.date(2026, 10, 25)
T = dt.datetime(2026, 10, 25, 8, 0, tzinfo=dt.UTC)  # 09:00 in Oslo (winter time)
MID = digest_message_id(7, "email:regnskap@example.com", DAY, "televikar.example")
WAV = b"RIFF....WAVEfmt fake"


def _items() -> list[DigestItem]:
    values = {"name": "Kari <K>", "phone": "+4722334455", "subject": "Faktura", "call_back": True}
    later = Message(2, 7, MessageKind.MESSAGE, T + dt.timedelta(hours=2), None, form_version=1,
                    values=values)  # fmt: skip
    voice = Message(1, 7, MessageKind.VOICE, T, None, recording="1.wav", duration_s=3.0)
    return [DigestItem(later, DEFAULT_MESSAGE_FORM), DigestItem(voice, None, Recording(WAV, 3.0))]


def _compose(items: list[DigestItem]) -> EmailMessage:
    mail = compose_digest(sender="meldinger@televikar.example", to="regnskap@example.com",
                          customer=CUSTOMER, day=DAY, items=items, message_id=MID,
                          now=T + dt.timedelta(hours=7))  # fmt: skip
    parsed = email.message_from_bytes(mail.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_digest_lists_the_messages_oldest_first() -> None:
    mail = _compose(_items())
    assert mail["Subject"] == "Beskjeder til Fjordbakst 25.10.2026 (2)"
    assert mail["Message-ID"] == MID
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None and html is not None
    text = plain.get_content()
    first = text.index("1. Talebeskjed fra skjult nummer, kl. 09:00")
    second = text.index("2. Beskjed fra Kari <K> (+47 22 33 44 55), kl. 11:00")
    assert first < second
    assert "    Firma: \N{EN DASH}" in text and "    Ring tilbake: Ja" in text
    assert "Kari &lt;K&gt;" in html.get_content()
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content() == WAV
    assert attachment.get_filename() == "talebeskjed-1-20261025-0900.wav"


def test_digest_refuses_what_does_not_belong() -> None:
    items = _items()
    with pytest.raises(ValueError, match="without messages"):
        _compose([])
    urgent = Message(3, 7, MessageKind.VOICE, T, None, urgent=True, recording="3.wav",
                     duration_s=1.0)  # fmt: skip
    with pytest.raises(ValueError, match="urgent"):
        _compose([*items, DigestItem(urgent, None, Recording(WAV, 1.0))])
    foreign = Message(4, 8, MessageKind.VOICE, T, None, recording="4.wav", duration_s=1.0)
    with pytest.raises(ValueError, match="not customer 7"):
        _compose([*items, DigestItem(foreign, None, Recording(WAV, 1.0))])
    with pytest.raises(ValueError, match="needs its recording"):
        _compose([DigestItem(items[1].message, None)])

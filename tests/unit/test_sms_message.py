"""The SMS text of a message: the caller first, filled-in fields by label, cut to fit."""

from __future__ import annotations

import datetime as dt

import pytest

from televikar_pbx.delivery.sms_message import compose_sms
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.message_forms import DEFAULT_MESSAGE_FORM, DEFAULT_ORDER_FORM
from televikar_pbx.domain.messages import Message, MessageKind
from televikar_pbx.domain.sms_text import Encoding, split

CUSTOMER = Customer(7, "Fjordbakst AS", "Fjordbakst")
TAKEN = dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)  # 02:30 in Oslo, after DST ends


def test_message_sms() -> None:
    values = {"name": "Kari Nordmann", "phone": "+4722334455", "subject": "Faktura\nfra mars",
              "call_back": True}  # fmt: skip
    message = Message(42, 7, MessageKind.MESSAGE, TAKEN, None, urgent=True, form_version=1,
                      values=values)  # fmt: skip
    text = compose_sms(CUSTOMER, message, DEFAULT_MESSAGE_FORM)
    assert text == (
        "HASTER: Beskjed til Fjordbakst fra Kari Nordmann (+47 22 33 44 55). "
        "Gjelder: Faktura / fra mars. Ring tilbake: Ja. Mottatt 25.10. kl. 02:30. "
        "Melding nr. 42"
    )
    assert split(text).encoding is Encoding.GSM7


def test_voice_sms_and_withheld_number() -> None:
    voice = Message(9, 7, MessageKind.VOICE, TAKEN, None, recording="x.wav", duration_s=65.4)
    assert compose_sms(CUSTOMER, voice, None) == (
        "Talebeskjed til Fjordbakst fra skjult nummer. Lengde 1 min 5 s. "
        "Mottatt 25.10. kl. 02:30. Melding nr. 9"
    )


def test_long_order_is_cut_but_keeps_its_number() -> None:
    values = {"name": "Per", "phone": "+4799887766", "product": "Kringle " * 100,
              "quantity": 3, "call_back": False}  # fmt: skip
    order = Message(77, 7, MessageKind.ORDER, TAKEN, None, form_version=1, values=values)
    text = compose_sms(CUSTOMER, order, DEFAULT_ORDER_FORM, max_segments=2)
    assert split(text).segments == 2 and text.endswith("... Melding nr. 77")
    assert text.startswith("Bestilling til Fjordbakst fra Per (+47 99 88 77 66). Vare")
    with pytest.raises(ValueError, match="form version"):
        compose_sms(CUSTOMER, order, DEFAULT_MESSAGE_FORM.__class__(
            DEFAULT_ORDER_FORM.kind, 2, DEFAULT_ORDER_FORM.fields))  # fmt: skip

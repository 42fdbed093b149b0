"""The message e-mail parsed back with the stdlib: headers, every field by its label,
escaped HTML, and a voice message's WAV attachment measured with soxi."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from televikar_pbx.delivery.email_message import (
    RecordingError,
    compose,
    load_recording,
)
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.message_delivery import message_id
from televikar_pbx.domain.message_forms import DEFAULT_MESSAGE_FORM, DEFAULT_ORDER_FORM
from televikar_pbx.domain.message_validation import validate
from televikar_pbx.domain.messages import Message, MessageKind

CUSTOMER = Customer(7, "Fjordbakst AS", "Fjordbakst <Bergen>")
# 01:30 UTC on the night summer time ends: 02:30 CET in Oslo, not 03:30.
TAKEN = dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)
NOW = TAKEN + dt.timedelta(seconds=20)
MID = message_id(42, "email:kari@example.com", "televikar.example")


def _parse(mail: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(mail.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _bodies(mail: EmailMessage) -> tuple[str, str]:
    plain, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def _compose(message: Message, **kw: object) -> EmailMessage:
    args: dict[str, object] = {
        "sender": "Svartjenesten <meldinger@televikar.example>",
        "to": "kari@example.com",
        "customer": CUSTOMER,
        "message": message,
        "form": DEFAULT_MESSAGE_FORM,
        "message_id": MID,
        "now": NOW,
    } | kw
    return _parse(compose(**args))  # type: ignore[arg-type]


def test_agent_message_lists_every_field_by_label() -> None:
    values = validate(
        DEFAULT_MESSAGE_FORM,
        {"name": "Kari <b>Nordmann</b>", "phone": "22334455", "subject": "Faktura\nfra mars",
         "call_back": "ja"},
    )  # fmt: skip
    message = Message(42, 7, MessageKind.MESSAGE, TAKEN, "+4722334455", urgent=True,
                      agent="Ola", form_version=1, values=values)  # fmt: skip
    mail = _compose(message)
    assert mail["Subject"] == (
        "HASTER: Beskjed til Fjordbakst <Bergen> fra Kari <b>Nordmann</b> (+47 22 33 44 55)"
    )
    assert mail["Message-ID"] == MID and mail["To"] == "kari@example.com"
    assert mail["Importance"] == "high"
    assert email.utils.parsedate_to_datetime(mail["Date"]) == NOW
    plain, html = _bodies(mail)
    for line in (
        "Navn: Kari <b>Nordmann</b>",
        "Telefon: +47 22 33 44 55",
        "Firma: \N{EN DASH}",  # an empty optional field is still shown
        "Gjelder:\n  Faktura\n  fra mars",
        "Ring tilbake: Ja",
        "Mottatt: søndag 25. oktober 2026 kl. 02:30",
        "Tatt imot av: Ola",
    ):
        assert line in plain
    assert "Kari &lt;b&gt;Nordmann&lt;/b&gt;" in html and "<b>Nordmann" not in html
    assert "Fjordbakst &lt;Bergen&gt;" in html and "Faktura<br>fra mars" in html
    assert not [p for p in mail.iter_attachments()]


def test_order_subject_and_the_form_version_must_match() -> None:
    values = {"name": "Per", "phone": "+4799887766", "product": "Kaker", "quantity": 12.5,
              "call_back": False}  # fmt: skip
    order = Message(43, 7, MessageKind.ORDER, TAKEN, None, form_version=1, values=values)
    mail = _compose(order, form=DEFAULT_ORDER_FORM)
    assert mail["Subject"] == "Bestilling til Fjordbakst <Bergen> fra Per (+47 99 88 77 66)"
    assert "Antall: 12,5" in _bodies(mail)[0] and "Importance" not in mail
    with pytest.raises(ValueError, match="form version 2"):
        _compose(Message(44, 7, MessageKind.ORDER, TAKEN, None, form_version=2, values=values),
                 form=DEFAULT_ORDER_FORM)  # fmt: skip
    with pytest.raises(ValueError, match="not customer 8"):
        _compose(order, customer=Customer(8, "Annen AS", "Annen"), form=DEFAULT_ORDER_FORM)


def _sox(*args: str) -> None:
    subprocess.run(["sox", "-V1", *args], check=True, capture_output=True)


def _soxi_seconds(path: Path) -> float:
    out = subprocess.run(["soxi", "-D", str(path)], check=True, capture_output=True, text=True)
    return float(out.stdout)


async def test_voice_message_attaches_the_wav_as_recorded(tmp_path: Path) -> None:
    source = tmp_path / "msg.wav"
    _sox("-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(source),
         "synth", "3.7", "sine", "440")  # fmt: skip
    recording = await load_recording(source)
    assert recording.data == source.read_bytes() and recording.duration_s == pytest.approx(3.7)
    voice = Message(45, 7, MessageKind.VOICE, TAKEN, "+4722334455", recording="msg.wav",
                    duration_s=3.7)  # fmt: skip
    mail = _compose(voice, form=None, recording=recording)
    assert mail["Subject"] == "Talebeskjed til Fjordbakst <Bergen> fra +47 22 33 44 55"
    plain, _ = _bodies(mail)
    assert "Fra: +47 22 33 44 55" in plain and "Lengde: 4 s" in plain
    assert "Tid: søndag 25. oktober 2026 kl. 02:30" in plain
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "audio/wav"
    assert attachment.get_filename() == "talebeskjed-45-20261025-0230.wav"
    received = tmp_path / "received.wav"
    received.write_bytes(attachment.get_content())
    assert _soxi_seconds(received) == pytest.approx(3.7, abs=0.01)


async def test_withheld_number_and_conversion_from_gsm(tmp_path: Path) -> None:
    source = tmp_path / "msg.gsm"
    _sox("-n", "-r", "8000", "-c", "1", str(source), "synth", "2.5", "sine", "300")
    recording = await load_recording(source)
    assert recording.data[:4] == b"RIFF" and recording.duration_s == pytest.approx(2.5)
    voice = Message(46, 7, MessageKind.VOICE, TAKEN, None, recording="msg.gsm", duration_s=2.5)
    mail = _compose(voice, form=None, recording=recording)
    assert mail["Subject"] == "Talebeskjed til Fjordbakst <Bergen> fra skjult nummer"
    [attachment] = list(mail.iter_attachments())
    received = tmp_path / "received.wav"
    received.write_bytes(attachment.get_content())
    assert _soxi_seconds(received) == pytest.approx(2.5, abs=0.01)
    with pytest.raises(ValueError, match="recording"):
        _compose(voice, form=None)


async def test_recording_cut_short_by_a_crash_and_missing_ones(tmp_path: Path) -> None:
    # Asterisk fills in the WAV header's sizes when the recording closes; killed before,
    # the header says "empty" while the samples are there.
    good = tmp_path / "good.wav"
    _sox("-n", "-r", "8000", "-c", "1", "-b", "16", str(good), "synth", "1.5", "sine", "440")
    data = bytearray(good.read_bytes())
    data[4:8] = data[40:44] = (0).to_bytes(4, "little")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(bytes(data))
    assert _soxi_seconds(broken) == 0.0
    recording = await load_recording(broken)
    assert recording.duration_s == pytest.approx(1.5)
    assert recording.data == good.read_bytes()
    with pytest.raises(RecordingError, match=r"missing\.wav"):
        await load_recording(tmp_path / "missing.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio at all")
    with pytest.raises(RecordingError, match="sox could not convert"):
        await load_recording(garbage)

"""The e-mail that brings a message to one of its customer's recipients (Norwegian).

Subject: the kind, the customer and the caller, ``HASTER:`` first when urgent:
``Beskjed til Fjordbakst AS fra Kari Nordmann (+47 22 33 44 55)``. A voice message is
``Talebeskjed til ... fra +47 ...`` (or ``fra skjult nummer``).

Body: plain text with an HTML alternative (every value escaped). An agent's message
lists *every* field of the form version it was taken with, by its label, in the form's
order, an en dash for an optional field left empty, so the customer sees what was asked as
well as what was answered. A voice message gives the caller's number, the time in the
customer's time zone (Europe/Oslo by default) and the length, with the recording
attached.

The recording is attached as WAV, 16-bit PCM, 8 kHz mono: what Asterisk records for
us, so normally the file goes as it is. Every mail client and phone plays WAV PCM
without a codec, it is exact to the sample (the length the customer sees is the length
we say), and at 16 kB/s our longest message (``max_message_s``, 2 min) is under 2 MB,
well within mail size limits. MP3 would be a tenth of that, but needs sox's MP3 format
(libsox-fmt-mp3, not on our hosts) and adds encoder padding for no gain in a
telephone-band recording. A recording in another format (``.gsm``, ``.ulaw``, ``.sln``
and others sox reads) is converted to that WAV with sox, in a worker thread.

The Message-ID is given by the caller (``domain.message_delivery.message_id``): stable
per message, recipient and resend, so a copy sent twice after a crash is recognisable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import html
import io
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.message_forms import FieldType, Form, display_value, format_phone
from televikar_pbx.domain.messages import Message, MessageKind
from televikar_pbx.errors import TelevikarError

EMPTY = "\N{EN DASH}"
WITHHELD = "skjult nummer"
KIND_NAMES = {
    MessageKind.VOICE: "Talebeskjed",
    MessageKind.MESSAGE: "Beskjed",
    MessageKind.ORDER: "Bestilling",
}
WEEKDAYS = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag")
MONTHS = (
    "januar", "februar", "mars", "april", "mai", "juni",
    "juli", "august", "september", "oktober", "november", "desember",
)  # fmt: skip
SOX_TIMEOUT_S = 60


class RecordingError(TelevikarError):
    """The recording could not be read or converted for the e-mail."""


@dataclass(frozen=True, slots=True)
class Recording:
    """The voice message's audio as attached: WAV bytes and their length."""

    data: bytes
    duration_s: float


def _one_line(text: str) -> str:
    return " ".join(text.split())


def caller_text(message: Message, form: Form | None) -> str:
    """Who called, for the subject: the name field and the number, or the number, or
    ``skjult nummer``."""
    name = message.values.get("name") if form is not None else None
    phone: str | None = None
    if form is not None:
        for f in form.fields:
            value = message.values.get(f.key)
            if f.type is FieldType.PHONE and isinstance(value, str):
                phone = value
                break
    phone = phone or message.caller_number
    shown_phone = format_phone(phone) if phone else None
    if isinstance(name, str) and name.strip():
        return f"{_one_line(name)} ({shown_phone})" if shown_phone else _one_line(name)
    return shown_phone or WITHHELD


def subject(customer: Customer, message: Message, form: Form | None) -> str:
    text = (
        f"{KIND_NAMES[message.kind]} til {customer.display_name} fra {caller_text(message, form)}"
    )
    return _one_line(("HASTER: " if message.urgent else "") + text)


def local_time(at: dt.datetime, timezone: str) -> str:
    """``lørdag 5. desember 2026 kl. 14:03`` in the customer's zone."""
    local = at.astimezone(ZoneInfo(timezone))
    return (
        f"{WEEKDAYS[local.weekday()]} {local.day}. {MONTHS[local.month - 1]} {local.year} "
        f"kl. {local:%H:%M}"
    )


def duration_text(seconds: float) -> str:
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def message_rows(customer: Customer, message: Message, form: Form | None) -> list[tuple[str, str]]:
    """(label, value) in the order the body shows them."""
    rows: list[tuple[str, str]] = []
    if message.kind is MessageKind.VOICE:
        number = message.caller_number
        rows.append(("Fra", format_phone(number) if number else WITHHELD))
        rows.append(("Tid", local_time(message.taken_at, customer.timezone)))
        rows.append(("Lengde", duration_text(message.duration_s or 0.0)))
        return rows
    if form is None:
        raise ValueError(f"a {message.kind.value} is shown with its form")
    if message.form_version != form.version:
        raise ValueError(
            f"message {message.id} was taken with form version {message.form_version}, "
            f"not {form.version}"
        )
    for f in form.fields:
        value = message.values.get(f.key)
        rows.append((f.label, EMPTY if value is None else display_value(f, value)))
    rows.append(("Mottatt", local_time(message.taken_at, customer.timezone)))
    if message.agent:
        rows.append(("Tatt imot av", message.agent))
    return rows


ACK_PROMPT = "Bekreft at meldingen er lest"
LISTEN_PROMPT = "Hør meldingen"


def body_text(
    customer: Customer,
    message: Message,
    form: Form | None,
    ack_url: str | None = None,
    listen_url: str | None = None,
) -> str:
    title = f"{KIND_NAMES[message.kind]} til {customer.display_name}"
    lines = [("HASTER: " if message.urgent else "") + title, ""]
    for label, value in message_rows(customer, message, form):
        if "\n" in value:
            lines.append(f"{label}:")
            lines.extend(f"  {line}" for line in value.splitlines())
        else:
            lines.append(f"{label}: {value}")
    if listen_url:
        lines += ["", f"{LISTEN_PROMPT}:", listen_url]
    elif message.kind is MessageKind.VOICE:
        lines += ["", "Opptaket er vedlagt (WAV)."]
    if ack_url and ack_url != listen_url:
        lines += ["", f"{ACK_PROMPT}:", ack_url]
    lines += ["", "-- ", f"Svartjenesten, melding nr. {message.id}"]
    return "\n".join(lines) + "\n"


def body_html(
    customer: Customer,
    message: Message,
    form: Form | None,
    ack_url: str | None = None,
    listen_url: str | None = None,
) -> str:
    e = html.escape
    title = e(f"{KIND_NAMES[message.kind]} til {customer.display_name}")
    urgent = '<p><strong style="color:#b00">HASTER</strong></p>' if message.urgent else ""
    rows = "".join(
        f'<tr><th style="text-align:left;vertical-align:top;padding-right:1em">{e(label)}</th>'
        f"<td>{e(value).replace(chr(10), '<br>')}</td></tr>"
        for label, value in message_rows(customer, message, form)
    )
    note = "<p>Opptaket er vedlagt (WAV).</p>" if message.kind is MessageKind.VOICE else ""
    if listen_url:
        note = f'<p><a href="{e(listen_url)}">{e(LISTEN_PROMPT)}</a></p>'
    if ack_url and ack_url != listen_url:
        note += f'<p><a href="{e(ack_url)}">{e(ACK_PROMPT)}</a></p>'
    return (
        f'<!DOCTYPE html><html lang="nb"><head><meta charset="utf-8"><title>{title}</title>'
        f"</head><body>{urgent}<h2>{title}</h2><table>{rows}</table>{note}"
        f"<p>Svartjenesten, melding nr. {message.id}</p></body></html>"
    )


def attachment_name(customer: Customer, message: Message) -> str:
    local = message.taken_at.astimezone(ZoneInfo(customer.timezone))
    return f"talebeskjed-{message.id}-{local:%Y%m%d-%H%M}.wav"


def compose(
    *,
    sender: str,
    to: str,
    customer: Customer,
    message: Message,
    form: Form | None,
    message_id: str,
    now: dt.datetime,
    recording: Recording | None = None,
    ack_url: str | None = None,
    listen_url: str | None = None,
) -> EmailMessage:
    """The e-mail of ``message`` to one recipient ``to``. ``form``: the version the
    message was taken with (None for a voice message, which needs ``recording`` or
    ``listen_url``, the signed link to its page on the desk, for customers who chose
    links); ``ack_url``: the link that acknowledges it (urgent messages, web/app.py)."""
    if message.customer_id != customer.id:
        raise ValueError(f"message {message.id} is not customer {customer.id}'s")
    if message.kind is MessageKind.VOICE and recording is None and listen_url is None:
        raise ValueError("a voice message is sent with its recording or a link to it")
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject(customer, message, form)
    mail["Date"] = email.utils.format_datetime(now.astimezone(dt.UTC))
    mail["Message-ID"] = message_id
    if message.urgent:
        mail["Importance"] = "high"
        mail["X-Priority"] = "1"
    mail["Content-Language"] = "nb"
    mail.set_content(body_text(customer, message, form, ack_url, listen_url))
    mail.add_alternative(body_html(customer, message, form, ack_url, listen_url), subtype="html")
    if recording is not None:
        mail.add_attachment(
            recording.data,
            maintype="audio",
            subtype="wav",
            filename=attachment_name(customer, message),
        )
    return mail


async def load_recording(path: Path) -> Recording:
    """The recording as WAV bytes to attach (converted with sox when it is not PCM WAV),
    read in a worker thread. :class:`RecordingError` when it cannot be."""
    return await asyncio.to_thread(_load_blocking, path)


def _pcm_wav(data: bytes) -> Recording | None:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            rate, frames = wav.getframerate(), wav.getnframes()
            width, channels = wav.getsampwidth(), wav.getnchannels()
    except (wave.Error, EOFError):
        return None
    if rate <= 0 or frames <= 0 or frames * width * channels > len(data):
        return None
    return Recording(data, frames / rate)


def _repaired(data: bytes) -> bytes:
    """Asterisk writes a canonical 44-byte WAV header with zero sizes and fills them in
    when the recording closes: a recording whose process was killed says it is empty
    (sox then reads nothing). Such a header gets the sizes of the samples that are
    there; any other file is returned as it is."""
    if len(data) <= 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE" or data[36:40] != b"data":
        return data
    body = len(data) - 44
    if int.from_bytes(data[40:44], "little") == body:
        return data
    body -= body % 2  # whole 16-bit samples
    return b"".join(
        (b"RIFF", (36 + body).to_bytes(4, "little"), data[8:40], body.to_bytes(4, "little"),
         data[44 : 44 + body])
    )  # fmt: skip


def _load_blocking(path: Path) -> Recording:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordingError(f"recording {path}: {exc.strerror or exc}") from exc
    if path.suffix.lower() == ".wav" and (as_is := _pcm_wav(_repaired(data))) is not None:
        return as_is
    with tempfile.TemporaryDirectory(prefix="televikar-wav-") as tmp:
        # A file, not a pipe: sox fills in the WAV header's sizes by seeking back.
        target = Path(tmp) / "recording.wav"
        command = ["sox", "-V1", str(path), "-e", "signed-integer", "-b", "16",
                   "-c", "1", "-r", "8000", str(target)]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, timeout=SOX_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RecordingError(f"sox could not convert {path}: {exc}") from exc
        converted = target.read_bytes() if target.is_file() else b""
        result = _pcm_wav(converted) if done.returncode == 0 and converted else None
    if result is None:
        reason = " ".join(done.stderr.decode("utf-8", "replace").split()) or "no audio"
        raise RecordingError(f"sox could not convert {path}: {reason}")
    return result

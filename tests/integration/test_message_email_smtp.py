"""A composed message e-mail through our SMTP adapter to a real SMTP server (aiosmtpd on
127.0.0.1): it arrives with its Message-ID, every field, and a recording that plays for
the recorded length (soxi)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from televikar_pbx.delivery.email_message import compose, load_recording
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.message_delivery import Channel, Recipient, message_id, plan_deliveries
from televikar_pbx.domain.messages import Message, MessageKind
from televikar_pbx.reports.mail import SmtpConfig, send

TAKEN = dt.datetime(2026, 12, 5, 13, 3, tzinfo=dt.UTC)


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, server_hostname="mail.test")
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _tone(path: Path, seconds: float) -> None:
    subprocess.run(
        ["sox", "-V1", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path),
         "synth", str(seconds), "sine", "440"],
        check=True,
    )  # fmt: skip


def _soxi_seconds(path: Path) -> float:
    out = subprocess.run(["soxi", "-D", str(path)], check=True, capture_output=True, text=True)
    return float(out.stdout)


async def test_voice_message_arrives_and_plays_its_length(
    smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp
    source = tmp_path / "call-77.wav"
    _tone(source, 4.2)
    customers = [Customer(1, "Fjordbakst AS", "Fjordbakst"), Customer(2, "Havbris AS", "Havbris")]
    recipients = [
        Recipient.create(1, Channel.EMAIL, "dagny@fjordbakst.example"),
        Recipient.create(2, Channel.EMAIL, "post@havbris.example"),
    ]
    config = SmtpConfig("127.0.0.1", port, "none", "meldinger@televikar.example", timeout_s=10)
    recording = await load_recording(source)
    sent_ids = {}
    for customer in customers:
        voice = Message(70 + customer.id, customer.id, MessageKind.VOICE, TAKEN, "+4722334455",
                        recording=source.name, duration_s=recording.duration_s)  # fmt: skip
        mine = [r for r in recipients if r.customer_id == customer.id]
        for planned in plan_deliveries(customer.id, False, mine):
            mid = message_id(voice.id, planned.recipient.key, "televikar.example")
            mail = compose(sender=config.sender, to=planned.recipient.address, customer=customer,
                           message=voice, form=None, message_id=mid, now=TAKEN,
                           recording=recording)  # fmt: skip
            assert await send(config, mail) is None
            sent_ids[planned.recipient.address] = mid
    assert len(inbox.received) == 2
    for rcpt_tos, message in inbox.received:
        [address] = rcpt_tos
        assert message["Message-ID"] == sent_ids[address]
        customer = "Fjordbakst" if "fjordbakst" in address else "Havbris"
        assert message["Subject"] == f"Talebeskjed til {customer} fra +47 22 33 44 55"
        [attachment] = list(message.iter_attachments())
        received = tmp_path / f"received-{address}.wav"
        received.write_bytes(attachment.get_content())
        assert _soxi_seconds(received) == pytest.approx(4.2, abs=0.01)

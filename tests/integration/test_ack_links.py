"""Customers acknowledge urgent messages by the link in their e-mail (issue 14): the
e-mail the real delivery worker sends over a real SMTP server carries a signed link;
opening it (GET) changes nothing, its button (POST, CSRF-checked) marks the message
acknowledged once, with a line in its log; an expired link answers 410, a tampered one
404. On SQLite and PostgreSQL, time from a clock the test moves."""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.auth.passwords import TEST_PARAMS, Passwords
from televikar_pbx.auth.services import AuthPolicy, DeskAuth
from televikar_pbx.db.audit_repo import AuditRepository
from televikar_pbx.db.calls_repo import CallRepository
from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.outbox_repo import OutboxRepository
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.delivery.service import channels
from televikar_pbx.delivery.worker import DeliveryWorker
from televikar_pbx.domain import ack_links
from televikar_pbx.domain.audit import AuditAction
from televikar_pbx.domain.message_delivery import Channel
from televikar_pbx.domain.message_forms import FormKind
from televikar_pbx.messages.services import add_recipient, take_message
from televikar_pbx.settings import Settings
from televikar_pbx.web.app import WebConfig, make_app
from tests.integration.test_desk_web import MovableClock as HandClock
from tests.mailserver import Mailbox, Servers

Sessionmaker = async_sessionmaker[AsyncSession]
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
SECRET = "a" * 40
PUBLIC = "https://desk.televikar.example"
INBOX = "post@fjordbakst.example"
# Half a second of 8 kHz 16-bit mono silence, as Asterisk records.
_PCM = b"\0\0" * 4000
WAV = (
    b"RIFF" + struct.pack("<I", 36 + len(_PCM)) + b"WAVEfmt "
    + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    + b"data" + struct.pack("<I", len(_PCM)) + _PCM
)  # fmt: skip


@pytest.fixture
def clock() -> HandClock:
    return HandClock(T0)


@pytest.fixture
async def desk(sessionmaker: Sessionmaker, clock: HandClock) -> AsyncIterator[TestClient[Any, Any]]:
    auth = DeskAuth(sessionmaker, Passwords(TEST_PARAMS), AuthPolicy())
    app = make_app(auth, WebConfig(SECRET.encode()), clock, MessageRepository(sessionmaker))
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def take(sm: Sessionmaker, urgent: bool) -> int:
    async with sm.begin() as s:
        repo = DirectoryRepository(s)
        customer = await repo.find_customer("Fjordbakst AS")
        return await take_message(
            MessageRepository(s), customer_id=customer.id, kind=FormKind.MESSAGE,
            raw={"name": "Per Hansen", "phone": "912 34 567", "subject": "Ring meg",
                 "call_back": "ja"},
            taken_at=T0, urgent=urgent,
        )  # fmt: skip


async def send_all(sm: Sessionmaker, clock: HandClock, port: int) -> int:
    config = Settings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
        smtp_from="Televikar <meldinger@televikar.example>",
        web_public_url=PUBLIC, web_secret=SECRET,  # type: ignore[arg-type]
    )  # fmt: skip
    worker = DeliveryWorker(
        OutboxRepository(sm), MessageRepository(sm),
        channels(config, sm, clock, None),  # type: ignore[arg-type]
        clock,
    )  # fmt: skip
    return await worker.run_once()


@pytest.fixture
async def customer(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker.begin() as s:
        c = await DirectoryRepository(s).add_customer("Fjordbakst AS", "Fjordbakst", ["4721000001"])
        await add_recipient(MessageRepository(s), c.id, Channel.EMAIL, INBOX)


def link_in(body: str) -> str:
    found = re.search(re.escape(PUBLIC) + r"/ack/(\S+)", body)
    assert found, body
    return found.group(1)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def statuses(sm: Sessionmaker, message: int) -> tuple[str, list[str]]:
    repo = MessageRepository(sm)
    record = await repo.get_message(message)
    return record.status, [e.status for e in await repo.message_log(message)]


async def test_an_urgent_email_links_to_a_page_whose_button_acknowledges_it_once(
    sessionmaker: Sessionmaker, customer: None, clock: HandClock, desk: TestClient[Any, Any]
) -> None:
    urgent, plain = await take(sessionmaker, True), await take(sessionmaker, False)
    inbox, servers = Mailbox(), Servers()
    try:
        assert await send_all(sessionmaker, clock, servers.start(inbox)) == 2
    finally:
        servers.stop_all()
    by_subject = {m.message["Subject"]: m.message for m in inbox.to(INBOX)}
    [urgent_mail] = [m for s, m in by_subject.items() if "HASTER" in s.upper()]
    [plain_mail] = [m for s, m in by_subject.items() if "HASTER" not in s.upper()]
    text = urgent_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = urgent_mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    token = link_in(text)
    assert f'href="{PUBLIC}/ack/{token}"' in html
    assert "/ack/" not in plain_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert ack_links.check(SECRET.encode(), token, T0).message_id == urgent

    clock.at = T0 + dt.timedelta(hours=2)
    page = await desk.get(f"/ack/{token}")  # what a mail scanner also does: nothing
    assert page.status == 200
    body = await page.text()
    assert "Bekreft at meldingen er lest" in body
    assert (await statuses(sessionmaker, urgent))[0] == "sent"

    no_csrf = await desk.post(f"/ack/{token}", data={}, allow_redirects=False)
    assert no_csrf.status == 403
    assert (await statuses(sessionmaker, urgent))[0] == "sent"

    done = await desk.post(f"/ack/{token}", data={"csrf": _csrf(body)})
    assert done.status == 200 and "er bekreftet som lest" in await done.text()
    status, log = await statuses(sessionmaker, urgent)
    assert status == "acknowledged" and log == ["new", "sent", "acknowledged"]
    again = await desk.post(f"/ack/{token}", data={"csrf": _csrf(body)})  # a second click
    assert again.status == 200
    assert (await statuses(sessionmaker, urgent))[1].count("acknowledged") == 1
    assert (await statuses(sessionmaker, plain))[0] == "sent"


async def test_expired_and_tampered_links(
    sessionmaker: Sessionmaker, customer: None, clock: HandClock, desk: TestClient[Any, Any]
) -> None:
    message = await take(sessionmaker, True)
    token = ack_links.sign(SECRET.encode(), message, T0 + dt.timedelta(days=7))
    clock.at = T0 + dt.timedelta(days=7)
    expired = await desk.get(f"/ack/{token}")
    assert expired.status == 410 and "utløpt" in await expired.text()
    clock.at = T0
    message_id, expiry, signature = token.split(".")
    for bad in (
        f"{int(message_id) + 1}.{expiry}.{signature}",  # another message
        f"{message_id}.{int(expiry) + 86400}.{signature}",  # a longer life
        ack_links.sign(b"b" * 40, message, T0 + dt.timedelta(days=7)),  # another key
        "not-a-token",
    ):
        page = await desk.get(f"/ack/{bad}")
        assert page.status == 404, bad
        assert (await desk.post(f"/ack/{bad}", data={})).status == 403  # no form token
    assert (await statuses(sessionmaker, message))[0] == "new"
    # A genuine link to a message that does not exist: 404 too.
    ghost = ack_links.sign(SECRET.encode(), 9999, T0 + dt.timedelta(days=1))
    assert (await desk.get(f"/ack/{ghost}")).status == 404


async def test_a_voice_message_by_link_plays_on_its_page_and_each_play_is_audited(
    sessionmaker: Sessionmaker,
    customer: None,
    clock: HandClock,
    desk: TestClient[Any, Any],
    tmp_path: Path,
) -> None:
    wav = tmp_path / "talebeskjed.wav"
    wav.write_bytes(WAV)
    async with sessionmaker.begin() as s:
        c = await DirectoryRepository(s).find_customer("Fjordbakst AS")
        await MessageRepository(s).set_voice_delivery(c.id, "link")
        call = await CallRepository(s).create_call("v1", None, c.id, "4721000001", None, None, T0)
    voice = await MessageRepository(sessionmaker).add_message(
        call, c.id, "4791234567", str(wav), 0.5, taken_at=T0
    )
    inbox, servers = Mailbox(), Servers()
    try:
        assert await send_all(sessionmaker, clock, servers.start(inbox)) == 1
    finally:
        servers.stop_all()
    [received] = inbox.to(INBOX)
    assert list(received.message.iter_attachments()) == []  # a link, not the recording
    text = received.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hør meldingen:" in text
    token = link_in(text)
    page = await desk.get(f"/ack/{token}")
    assert f'src="/ack/{token}/recording"' in await page.text()
    played = await desk.get(f"/ack/{token}/recording")
    assert played.status == 200 and played.headers["Content-Type"] == "audio/wav"
    assert await played.read() == WAV
    [entry] = await AuditRepository(sessionmaker).list_entries()
    assert (entry.action, entry.username, entry.customer_id, entry.object_id) == (
        AuditAction.PLAY_RECORDING,
        "customer (link)",
        c.id,
        str(voice),
    )
    bad = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (await desk.get(f"/ack/{bad}/recording")).status == 404
    clock.at = T0 + dt.timedelta(days=8)
    assert (await desk.get(f"/ack/{token}/recording")).status == 410
    assert len(await AuditRepository(sessionmaker).list_entries()) == 1

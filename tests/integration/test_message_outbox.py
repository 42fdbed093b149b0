"""Messages reach their customers: saved with their outbox rows in one transaction, sent
by the delivery worker over a real SMTP server (aiosmtpd) and the SMS gateway's stand-in,
whose delivery reports reach our webhook; retries across an SMTP outage; the same
Message-ID after a crash between sending and recording. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import wave
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from televikar_pbx.clock import ShiftedClock
from televikar_pbx.db import migrate, models
from televikar_pbx.db.engine import make_engine
from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.outbox_repo import OutboxRepository
from televikar_pbx.db.records import OutboxJob
from televikar_pbx.db.repositories import CallRepository, DirectoryRepository
from televikar_pbx.delivery.service import Delivery, channels, digest_channel, start_delivery
from televikar_pbx.delivery.sveve_standin import SveveStandIn
from televikar_pbx.delivery.worker import DeliveryWorker, WorkerSettings
from televikar_pbx.domain.message_delivery import MAX_ATTEMPTS, Channel
from televikar_pbx.domain.message_forms import FormKind
from televikar_pbx.domain.message_validation import ValidationFailed
from televikar_pbx.messages.services import add_recipient, take_message
from televikar_pbx.settings import Settings
from tests.mailserver import Mailbox, Servers, free_port

Sessionmaker = async_sessionmaker[AsyncSession]
T0 = dt.datetime(2026, 12, 3, 9, 15, tzinfo=dt.UTC)
SENDER = "Televikar <meldinger@televikar.example>"
ORDER = {
    "name": "Per Hansen",
    "phone": "912 34 567",
    "product": "Kransekake",
    "quantity": "2",
    "call_back": "ja",
}


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
async def standin() -> AsyncIterator[SveveStandIn]:
    gateway = SveveStandIn()
    try:
        yield gateway
    finally:
        await gateway.stop()


def settings(smtp_port: int, **more: object) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_security="none",
        smtp_from=SENDER,
        smtp_timeout_s=5,
        delivery_poll_s=0.05,
        **more,  # type: ignore[arg-type]
    )


async def customers(sm: Sessionmaker) -> tuple[int, int]:
    async with sm.begin() as s:
        repo = DirectoryRepository(s)
        a = await repo.add_customer("Fjordbakst AS", "Fjordbakst", ["4721000001"])
        b = await repo.add_customer("Nordlys Regnskap AS", "Nordlys", ["4721000002"])
        messages = MessageRepository(s)
        await add_recipient(messages, a.id, Channel.EMAIL, "post@fjordbakst.example")
        await add_recipient(messages, a.id, Channel.SMS, "+47 912 00 001", urgent_only=True)
        await add_recipient(messages, b.id, Channel.EMAIL, "post@nordlys.example")
    return a.id, b.id


async def take(sm: Sessionmaker, customer_id: int, kind: FormKind, **raw: str) -> int:
    async with sm.begin() as s:
        return await take_message(
            MessageRepository(s),
            customer_id=customer_id,
            kind=kind,
            raw=raw,
            taken_at=T0,
            urgent=raw.pop("urgent", "") == "yes",
        )


async def count(sm: Sessionmaker, table: type[models.Base]) -> int:
    async with sm() as s:
        return int(await s.scalar(select(func.count()).select_from(table)) or 0)


async def until(condition: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached within the deadline")


async def test_an_order_missing_a_required_field_leaves_nothing(
    sessionmaker: Sessionmaker,
) -> None:
    a, _ = await customers(sessionmaker)
    wrong = {k: v for k, v in ORDER.items() if k != "product"} | {"phone": "12"}
    with pytest.raises(ValidationFailed) as caught:
        await take(sessionmaker, a, FormKind.ORDER, **wrong)
    problems = {e.label: e.problem for e in caught.value.errors}
    assert set(problems) == {"Vare eller tjeneste", "Telefon"}
    assert problems["Vare eller tjeneste"] == "må fylles ut"
    for table in (models.Message, models.MessageLogEntry, models.OutboxItem, models.MessageForm):
        assert await count(sessionmaker, table) == 0, table.__tablename__


async def test_messages_reach_only_their_own_customer_by_email_and_sms(
    sessionmaker: Sessionmaker, servers: Servers, standin: SveveStandIn, tmp_path: Path
) -> None:
    a, b = await customers(sessionmaker)
    inbox = Mailbox()
    webhook = free_port()
    standin.report_url = f"http://127.0.0.1:{webhook}/sms/report?token=hemmelig"
    gateway = await standin.start()
    config = settings(
        servers.start(inbox),
        sms_user=standin.user,
        sms_password=standin.password,
        sms_base_url=gateway,
        sms_webhook_port=webhook,
        sms_webhook_token="hemmelig",
    )
    order = await take(sessionmaker, a, FormKind.ORDER, urgent="yes", **ORDER)
    note = await take(
        sessionmaker, b, FormKind.MESSAGE,
        name="Kari Nordmann", phone="22 33 44 55", subject="Faktura 1234", call_back="nei",
    )  # fmt: skip
    delivery: Delivery = await start_delivery(config, sessionmaker, ShiftedClock(T0))
    try:
        await until(lambda: len(inbox.received) == 2 and len(standin.sent) == 1)
        await standin.reports_done()
        messages = MessageRepository(sessionmaker)
        for _ in range(100):  # the report reached our webhook; its write may lag a little
            if (await messages.get_message(order)).status == "delivered":
                break
            await asyncio.sleep(0.05)
    finally:
        await delivery.close()

    [to_a] = inbox.to("post@fjordbakst.example")
    [to_b] = inbox.to("post@nordlys.example")
    body_a = to_a.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    body_b = to_b.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Fjordbakst" in to_a.message["Subject"] and "Kransekake" in body_a
    assert "Nordlys" not in body_a and "Faktura" not in body_a
    assert "Nordlys" in to_b.message["Subject"] and "Faktura 1234" in body_b
    assert "Fjordbakst" not in body_b and "Kransekake" not in body_b
    [sms] = standin.sent
    assert sms.to.endswith("91200001") and "Kransekake" in sms.text
    assert (await messages.get_message(order)).status == "delivered"
    assert (await messages.get_message(note)).status == "sent"
    steps = [(e.status, e.channel) for e in await messages.message_log(order)]
    assert steps[0] == ("new", None)
    assert ("sent", "email") in steps and ("sent", "sms") in steps
    assert steps[-1] == ("delivered", "sms")


async def test_smtp_down_then_back_delivers_once(
    sessionmaker: Sessionmaker, servers: Servers
) -> None:
    a, _ = await customers(sessionmaker)
    port = free_port()  # nothing listens yet: the SMTP server is down
    clock = ShiftedClock(T0)
    worker = worker_for(sessionmaker, settings(port), clock)
    message = await take(sessionmaker, a, FormKind.ORDER, **ORDER)
    assert await worker.run_once() == 1
    log = await MessageRepository(sessionmaker).message_log(message)
    assert log[-1].status == "retry" and "127.0.0.1" in (log[-1].result or "")
    assert await worker.run_once() == 0  # not due before its retry delay
    inbox = Mailbox()
    servers.start(inbox, port)
    later = worker_for(sessionmaker, settings(port), ShiftedClock(T0 + dt.timedelta(minutes=1)))
    assert await later.run_once() == 1
    assert await later.run_once() == 0
    assert len(inbox.to("post@fjordbakst.example")) == 1
    assert (await MessageRepository(sessionmaker).get_message(message)).status == "sent"


@dataclass
class HandClock:
    at: dt.datetime

    def now(self) -> dt.datetime:
        return self.at


def probing_worker(sm: Sessionmaker, port: int, clock: HandClock, probe_s: float) -> DeliveryWorker:
    return DeliveryWorker(
        OutboxRepository(sm),
        MessageRepository(sm),
        channels(settings(port), sm, clock, None),  # type: ignore[arg-type]
        clock,
        WorkerSettings(probe_s=probe_s),
    )


async def test_a_server_back_from_an_outage_gets_what_waited_before_the_next_retry(
    sessionmaker: Sessionmaker, servers: Servers
) -> None:
    """The first retry would come 10 s after the failure; the probe (every 2 s here)
    finds the server back after 3 s and sends both at once, each once."""
    a, b = await customers(sessionmaker)
    port = free_port()  # the SMTP server is down
    clock = HandClock(T0)
    worker = probing_worker(sessionmaker, port, clock, probe_s=2)
    taken = [await take(sessionmaker, c, FormKind.ORDER, **ORDER) for c in (a, b)]
    assert await worker.run_once() == 2  # both fail: unreachable
    clock.at = T0 + dt.timedelta(seconds=1)
    assert await worker.run_once() == 0  # no probe yet, no retry due
    clock.at = T0 + dt.timedelta(seconds=2.5)
    assert await worker.run_once() == 0  # probed: still down
    inbox = Mailbox()
    servers.start(inbox, port)
    clock.at = T0 + dt.timedelta(seconds=4)
    assert await worker.run_once() == 0  # the next probe is at 4.5 s
    clock.at = T0 + dt.timedelta(seconds=5)
    assert await worker.run_once() == 2  # probed: back, and both are due now
    assert len(inbox.to("post@fjordbakst.example")) == 1
    assert len(inbox.to("post@nordlys.example")) == 1
    repo = MessageRepository(sessionmaker)
    for message in taken:
        assert [e.status for e in await repo.message_log(message)] == ["new", "retry", "sent"]
    assert await worker.run_once() == 0


async def test_a_server_that_refuses_is_not_an_outage(
    sessionmaker: Sessionmaker, servers: Servers
) -> None:
    """A server that refuses the recipient is answering: that is no outage, so no
    probing (only the schedule, here none: a 5xx refusal is final)."""
    a, _ = await customers(sessionmaker)
    inbox = Mailbox(refuse={"post@fjordbakst.example"})
    port = servers.start(inbox)
    clock = HandClock(T0)
    worker = probing_worker(sessionmaker, port, clock, probe_s=1)
    await take(sessionmaker, a, FormKind.ORDER, **ORDER)
    assert await worker.run_once() == 1
    assert worker._probe_at == {}


async def test_a_crash_between_sending_and_recording_resends_the_same_message_id(
    sessionmaker: Sessionmaker, servers: Servers
) -> None:
    a, _ = await customers(sessionmaker)
    inbox = Mailbox()
    config = settings(servers.start(inbox))
    clock = ShiftedClock(T0)
    message = await take(sessionmaker, a, FormKind.ORDER, **ORDER)
    outbox = OutboxRepository(sessionmaker)
    [job] = await outbox.claim_due(clock.now(), 10, lease_s=120)
    record = await MessageRepository(sessionmaker).get_message(message)
    email = channels(config, sessionmaker, clock, None)["email"]  # type: ignore[arg-type]
    await email.deliver(job, record)  # ... and the process dies before recording it
    assert await outbox.claim_due(clock.now(), 10, lease_s=120) == []  # leased
    after_lease = worker_for(sessionmaker, config, ShiftedClock(T0 + dt.timedelta(minutes=3)))
    assert await after_lease.run_once() == 1
    first, second = inbox.to("post@fjordbakst.example")
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert (await MessageRepository(sessionmaker).get_message(message)).status == "sent"


async def test_after_the_last_retry_a_delivery_is_failed_with_its_reason(
    sessionmaker: Sessionmaker,
) -> None:
    a, _ = await customers(sessionmaker)
    port = free_port()
    message = await take(sessionmaker, a, FormKind.ORDER, **ORDER)
    at = T0
    for _ in range(MAX_ATTEMPTS):
        assert await worker_for(sessionmaker, settings(port), ShiftedClock(at)).run_once() == 1
        at += dt.timedelta(hours=2)
    assert await worker_for(sessionmaker, settings(port), ShiftedClock(at)).run_once() == 0
    record = await MessageRepository(sessionmaker).get_message(message)
    assert record.status == "failed"
    last = (await MessageRepository(sessionmaker).message_log(message))[-1]
    assert last.status == "failed" and f"after {MAX_ATTEMPTS} attempts" in (last.result or "")
    assert (await OutboxRepository(sessionmaker).counts()) == {"failed": 1}


async def test_a_voice_message_goes_out_with_its_recording(
    sessionmaker: Sessionmaker, servers: Servers, tmp_path: Path
) -> None:
    a, _ = await customers(sessionmaker)
    inbox = Mailbox()
    worker = worker_for(sessionmaker, settings(servers.start(inbox)), ShiftedClock(T0))
    wav = tmp_path / "m.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\1\0" * 8000 * 3)
    async with sessionmaker.begin() as s:
        call = await CallRepository(s).create_call(
            "v.1", "v.1", a, "4721000001", "4791234567", "Per", T0
        )
    await MessageRepository(sessionmaker).add_message(call, a, "4791234567", str(wav), 3.0, T0)
    assert await worker.run_once() == 1
    [mail] = inbox.to("post@fjordbakst.example")
    [attachment] = list(mail.message.iter_attachments())
    assert attachment.get_content_type() == "audio/wav"
    assert attachment.get_content() == wav.read_bytes()


async def test_a_round_writes_a_few_statements_whatever_its_size(
    engine: AsyncEngine, sessionmaker: Sessionmaker, servers: Servers
) -> None:
    """A round of 20 e-mails: one UPDATE claims them, and their outcomes are three
    statements in one transaction, not four transactions per e-mail (on SQLite each
    write waits for the one write lock the call service needs while callers wait)."""
    a, b = await customers(sessionmaker)
    inbox = Mailbox()
    config = settings(servers.start(inbox))
    for _ in range(12):  # each an e-mail (the SMS recipient takes urgent ones only)
        await take(sessionmaker, a, FormKind.ORDER, **ORDER)
        await take(sessionmaker, b, FormKind.ORDER, **ORDER)
    writes: list[tuple[str, bool]] = []

    def seen(
        conn: object, cursor: object, statement: str, params: object, context: object,
        executemany: bool,
    ) -> None:  # fmt: skip
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            writes.append((verb, executemany))

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        worker = worker_for(sessionmaker, config, ShiftedClock(T0))
        assert await worker.run_once() == 20
        assert len(writes) == 4, writes  # claim; sent rows, their log, the messages' status
        assert [many for _, many in writes] == [False, True, True, False]
        writes.clear()
        assert await worker.run_once() == 4
        assert len(writes) == 4, writes
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert len(inbox.received) == 24
    repo = MessageRepository(sessionmaker)
    day = (T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1))
    taken = [*await repo.list_messages(a, *day), *await repo.list_messages(b, *day)]
    assert len(taken) == 24 and {m.status for m in taken} == {"sent"}
    logs = [await repo.message_log(m.id) for m in taken]
    assert all([entry.status for entry in log] == ["new", "sent"] for log in logs)


def worker_for(sm: Sessionmaker, config: Settings, clock: ShiftedClock) -> DeliveryWorker:
    return DeliveryWorker(
        OutboxRepository(sm),
        MessageRepository(sm),
        channels(config, sm, clock, None),  # type: ignore[arg-type]
        clock,
        digest=digest_channel(config, sm, clock),
    )


async def test_a_digest_recipient_gets_the_days_messages_in_one_email_at_16(
    sessionmaker: Sessionmaker, servers: Servers
) -> None:
    async with sessionmaker.begin() as s:
        a = await DirectoryRepository(s).add_customer("Fjordbakst AS", "Fjordbakst", ["4721000001"])
        await add_recipient(
            MessageRepository(s), a.id, Channel.EMAIL, "sjef@fjordbakst.example", digest=True
        )
    inbox = Mailbox()
    config = settings(servers.start(inbox))
    # T0 is 10:15 in Oslo: the day's digest goes at 16:00 local, 15:00 UTC in December.
    order = await take(sessionmaker, a.id, FormKind.ORDER, **ORDER)
    note = await take(
        sessionmaker, a.id, FormKind.MESSAGE,
        name="Kari Nordmann", phone="22 33 44 55", subject="Ring om leveransen", call_back="ja",
    )  # fmt: skip
    urgent = await take(
        sessionmaker, a.id, FormKind.MESSAGE, urgent="yes",
        name="Ola", phone="22 33 44 56", subject="Ovnen brenner", call_back="ja",
    )  # fmt: skip
    assert await worker_for(sessionmaker, config, ShiftedClock(T0)).run_once() == 1
    [now] = inbox.received  # an urgent message is never held for the digest
    assert "Ovnen brenner" in now.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    before = dt.datetime(2026, 12, 3, 14, 59, 50, tzinfo=dt.UTC)
    assert await worker_for(sessionmaker, config, ShiftedClock(before)).run_once() == 0
    at_16 = dt.datetime(2026, 12, 3, 15, 0, 1, tzinfo=dt.UTC)
    assert await worker_for(sessionmaker, config, ShiftedClock(at_16)).run_once() == 2
    assert await worker_for(sessionmaker, config, ShiftedClock(at_16)).run_once() == 0
    [_, digest] = inbox.received
    assert digest.message["Subject"] == "Beskjeder til Fjordbakst 03.12.2026 (2)"
    body = digest.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Kransekake" in body and "Ring om leveransen" in body and "Ovnen" not in body
    messages = MessageRepository(sessionmaker)
    for m in (order, note, urgent):
        assert (await messages.get_message(m)).status == "sent"


def _sql(url: str, *statements: str) -> list[object]:
    async def run() -> list[object]:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                results = [await conn.execute(text(x)) for x in statements]
                return [r.all() if r.returns_rows else None for r in results]
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def test_migration_0006_keeps_voice_messages_as_new_undelivered(empty_db_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_db_url, "0005")
    await asyncio.to_thread(
        _sql,
        empty_db_url,
        "INSERT INTO customers (name, display_name) VALUES ('A AS', 'A')",
        "INSERT INTO calls (channel_id, linkedid, customer_id, dialled_number, arrived_at)"
        " VALUES ('c.1', 'c.1', 1, '4721000001', CURRENT_TIMESTAMP)",
        "INSERT INTO messages (call_id, customer_id, file, duration_s)"
        " VALUES (1, 1, '/var/lib/televikar-pbx/messages/c.1.wav', 4.5)",
    )
    await asyncio.to_thread(migrate.upgrade, empty_db_url)
    rows = await asyncio.to_thread(
        _sql,
        empty_db_url,
        "SELECT kind, status, file, duration_s, taken_at IS NOT NULL FROM messages",
        "SELECT status, actor FROM message_log",
    )
    assert [tuple(r) for r in rows[0]] == [
        ("voice", "new", "/var/lib/televikar-pbx/messages/c.1.wav", 4.5, True)
    ]
    assert [tuple(r) for r in rows[1]] == [("new", "migration 0006")]
    await asyncio.to_thread(migrate.downgrade, empty_db_url, "0005")
    await asyncio.to_thread(migrate.upgrade, empty_db_url)
    await asyncio.to_thread(migrate.check, empty_db_url)


async def urgent_order_claimed(sm: Sessionmaker, customer: int) -> tuple[int, OutboxJob, OutboxJob]:
    """An urgent order of ``customer``, its deliveries claimed: (message, SMS, e-mail)."""
    message = await take(sm, customer, FormKind.ORDER, urgent="yes", **ORDER)
    jobs = await OutboxRepository(sm).claim_due(T0, 20, 60)
    [sms] = [j for j in jobs if j.channel == "sms"]
    email = next(j for j in jobs if j.channel == "email")
    return message, sms, email


async def test_a_delivery_report_that_comes_before_the_round_is_recorded_is_kept(
    sessionmaker: Sessionmaker,
) -> None:
    """The gateway may report an SMS delivered while the worker's round still sends the
    rest (its outcomes are written when the round ends): the report wins, the log reads
    new, sent, delivered, and the round's own record changes nothing afterwards."""
    a, _ = await customers(sessionmaker)
    message, sms, email = await urgent_order_claimed(sessionmaker, a)
    outbox = OutboxRepository(sessionmaker)
    report_at = T0 + dt.timedelta(seconds=1)
    assert await outbox.delivered(sms.message_key, report_at, "delivered")
    await outbox.finish(T0 + dt.timedelta(seconds=2), sent=[(sms, sms.message_key), (email, None)])
    messages = MessageRepository(sessionmaker)
    assert (await messages.get_message(message)).status == "delivered"
    steps = [(e.status, e.channel) for e in await messages.message_log(message)]
    assert steps[0] == ("new", None)
    assert steps.count(("sent", "sms")) == 1 and steps.count(("delivered", "sms")) == 1
    assert steps.index(("sent", "sms")) < steps.index(("delivered", "sms"))
    assert ("sent", "email") in steps
    async with sessionmaker() as s:
        o = models.OutboxItem
        states = dict((await s.execute(select(o.channel, o.state))).all())
    assert states == {"sms": "delivered", "email": "sent"}
    # An undeliverable report first: failed stays failed.
    second = await take(sessionmaker, a, FormKind.ORDER, urgent="yes", **ORDER)
    [sms2] = [j for j in await outbox.claim_due(T0, 20, 60) if j.channel == "sms"]
    assert await outbox.undeliverable(sms2.message_key, report_at, "not delivered: E07")
    await outbox.finish(T0 + dt.timedelta(seconds=2), sent=[(sms2, sms2.message_key)])
    async with sessionmaker() as s:
        row = await s.scalar(select(o).where(o.message_key == sms2.message_key))
        assert row is not None and row.state == "failed"
    assert second != message


@pytest.mark.parametrize("first", ["round", "report"])
async def test_a_report_racing_the_rounds_record_is_logged_once(
    engine: AsyncEngine, sessionmaker: Sessionmaker, first: str
) -> None:
    """The gateway's report and the round's record of the same SMS overlap: the other
    one starts right after the ``first`` one's first statement, which then waits a
    while. Whichever records the send, the SMS's log reads sent once, then delivered,
    and its outbox row stays delivered. Deciding by a read and writing later logged
    "sent" twice (and the round wrote "sent" over "delivered")."""
    a, _ = await customers(sessionmaker)
    message, sms, email = await urgent_order_claimed(sessionmaker, a)
    outbox = OutboxRepository(sessionmaker)
    other: list[asyncio.Task[object]] = []

    def record_round(repo: OutboxRepository) -> Coroutine[Any, Any, object]:
        return repo.finish(
            T0 + dt.timedelta(seconds=2), sent=[(sms, sms.message_key), (email, None)]
        )

    def report(repo: OutboxRepository) -> Coroutine[Any, Any, object]:
        return repo.delivered(sms.message_key, T0 + dt.timedelta(seconds=1), "ok")

    mine, theirs = (record_round, report) if first == "round" else (report, record_round)

    class OtherStartsAfterFirstStatement(AsyncSession):
        async def execute(self, *args: Any, **kwargs: Any) -> Any:
            result = await super().execute(*args, **kwargs)
            if not other:
                other.append(asyncio.create_task(theirs(outbox)))
                await asyncio.sleep(0.3)  # time enough for the other to commit, if it can
            return result

    racing = async_sessionmaker(
        engine, class_=OtherStartsAfterFirstStatement, expire_on_commit=False
    )
    await mine(OutboxRepository(racing))
    await other[0]
    messages = MessageRepository(sessionmaker)
    assert (await messages.get_message(message)).status == "delivered"
    steps = [(e.status, e.channel) for e in await messages.message_log(message)]
    assert steps.count(("sent", "sms")) == 1 and steps.count(("delivered", "sms")) == 1
    assert steps.index(("sent", "sms")) < steps.index(("delivered", "sms"))
    assert steps.count(("sent", "email")) == 1
    async with sessionmaker() as s:
        o = models.OutboxItem
        states = dict((await s.execute(select(o.channel, o.state))).all())
    assert states == {"sms": "delivered", "email": "sent"}

"""Escalation (issue 14): an urgent message nobody acknowledges within the customer's
minutes goes to the next person on its list, each step in the message's log, until
someone acknowledges or the list ends. The real delivery worker sends over a real SMTP
server (aiosmtpd) and a recording SMS channel, on a clock the test moves, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from televikar_pbx.db import models
from televikar_pbx.db.escalation_repo import EscalationRepository
from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.outbox_repo import OutboxRepository
from televikar_pbx.db.records import MessageRecord, OutboxJob
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.delivery.service import channels
from televikar_pbx.delivery.worker import DeliveryWorker
from televikar_pbx.domain.message_delivery import Channel
from televikar_pbx.domain.message_forms import FormKind
from televikar_pbx.messages.services import add_recipient, take_message
from tests.integration.test_message_outbox import HandClock, Sessionmaker, settings
from tests.mailserver import Mailbox, Servers

T0 = dt.datetime(2026, 12, 3, 9, 15, tzinfo=dt.UTC)
KARI, OLA, VAKT = "kari@fjordbakst.example", "ola@fjordbakst.example", "vakt@fjordbakst.example"
KARI_SMS = "+4791200001"
NORDLYS = ("post@nordlys.example", "sjef@nordlys.example")


def minutes(n: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


class RecordingSms:
    """The SMS channel, whole: records what it was given (the gateway has its own tests)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def deliver(self, job: OutboxJob, message: MessageRecord) -> str | None:
        self.sent.append(job.address)
        return f"sms-{len(self.sent)}"


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    try:
        yield started
    finally:
        started.stop_all()


async def setup(sm: Sessionmaker) -> tuple[int, int]:
    """Fjordbakst escalates after 10 minutes down Kari (e-mail and SMS: one person), Ola,
    and the on-call address; Nordlys does not escalate."""
    async with sm.begin() as s:
        repo = DirectoryRepository(s)
        a = await repo.add_customer("Fjordbakst AS", "Fjordbakst", ["4721000001"])
        b = await repo.add_customer("Nordlys AS", "Nordlys", ["4721000002"])
        messages = MessageRepository(s)
        await add_recipient(messages, a.id, Channel.EMAIL, KARI, name="Kari Nordmann")
        await add_recipient(messages, a.id, Channel.EMAIL, OLA, name="Ola Hansen")
        await add_recipient(
            messages, a.id, Channel.SMS, "912 00 001", urgent_only=True, name="Kari Nordmann"
        )
        await add_recipient(messages, a.id, Channel.EMAIL, VAKT, urgent_only=True)
        for address in NORDLYS:
            await add_recipient(messages, b.id, Channel.EMAIL, address)
        await EscalationRepository(s).set_escalate_after(a.id, 10)
    return a.id, b.id


async def take(sm: Sessionmaker, customer_id: int, *, urgent: bool = True) -> int:
    async with sm.begin() as s:
        return await take_message(
            MessageRepository(s), customer_id=customer_id, kind=FormKind.MESSAGE,
            raw={"name": "Per Hansen", "phone": "912 34 567", "subject": "Ovnen brenner",
                 "call_back": "ja"},
            taken_at=T0, urgent=urgent,
        )  # fmt: skip


def worker(sm: Sessionmaker, port: int, clock: HandClock, sms: RecordingSms) -> DeliveryWorker:
    table = channels(settings(port), sm, clock, None)  # type: ignore[arg-type]
    table["sms"] = sms
    return DeliveryWorker(OutboxRepository(sm), MessageRepository(sm), table, clock)


async def queued(sm: Sessionmaker, message_id: int) -> list[tuple[str, str]]:
    """The message's deliveries, in the order they were queued."""
    o = models.OutboxItem
    async with sm() as s:
        rows = await s.execute(
            select(o.channel, o.address).where(o.message_id == message_id).order_by(o.id)
        )
        return [(channel, address) for channel, address in rows]


async def escalation_log(sm: Sessionmaker, message_id: int) -> list[str]:
    log = await MessageRepository(sm).message_log(message_id)
    return [e.result or "" for e in log if e.status == "escalation"]


async def test_an_urgent_message_goes_to_the_next_person_until_someone_acknowledges(
    sessionmaker: Sessionmaker, servers: Servers
) -> None:
    a, _ = await setup(sessionmaker)
    inbox, sms, clock = Mailbox(), RecordingSms(), HandClock(T0)
    w = worker(sessionmaker, servers.start(inbox), clock, sms)
    message = await take(sessionmaker, a)
    step_1 = [("email", KARI), ("sms", KARI_SMS)]  # Kari: both her channels, first
    assert await queued(sessionmaker, message) == step_1
    assert await escalation_log(sessionmaker, message) == [
        "step 1 of 3: Kari Nordmann; the next in 10 min unless acknowledged"
    ]
    assert await w.run_once() == 2
    assert [r.rcpt_tos for r in inbox.received] == [[KARI]] and sms.sent == [KARI_SMS]

    clock.at = minutes(9)
    assert await w.run_once() == 0  # not yet: nothing new
    assert await queued(sessionmaker, message) == step_1

    clock.at = minutes(10)
    assert await w.run_once() == 1  # Ola's e-mail, queued and sent in the same round
    assert await queued(sessionmaker, message) == [*step_1, ("email", OLA)]
    assert [r.rcpt_tos for r in inbox.received] == [[KARI], [OLA]]
    assert (await escalation_log(sessionmaker, message))[1:] == [
        "escalated to Ola Hansen (step 2 of 3): not acknowledged within 10 min"
    ]

    clock.at = minutes(12)
    assert await MessageRepository(sessionmaker).acknowledge(message, clock.at, "customer (link)")
    for later in (minutes(20), minutes(32), minutes(60 * 24)):
        clock.at = later
        assert await w.run_once() == 0  # acknowledged: no further step
    assert await queued(sessionmaker, message) == [*step_1, ("email", OLA)]
    assert len(inbox.received) == 2 and sms.sent == [KARI_SMS]
    log = await MessageRepository(sessionmaker).message_log(message)
    steps = [(e.status, e.channel, e.recipient) for e in log]
    assert set(steps[2:4]) == {("sent", "email", KARI), ("sent", "sms", KARI_SMS)}  # one round
    assert steps[:2] + steps[4:] == [
        ("new", None, None),
        ("escalation", None, None),
        ("escalation", None, None),
        ("sent", "email", OLA),
        ("acknowledged", None, None),
        ("escalation", None, None),
    ]
    assert log[-1].result == "escalation stopped after step 2: acknowledged"
    assert [e.at for e in log if e.status == "escalation"] == [T0, minutes(10), minutes(12)]
    assert (await MessageRepository(sessionmaker).get_message(message)).status == "acknowledged"


async def test_nobody_acknowledges_every_step_then_the_end_once(
    sessionmaker: Sessionmaker, servers: Servers
) -> None:
    a, _ = await setup(sessionmaker)
    inbox, sms, clock = Mailbox(), RecordingSms(), HandClock(T0)
    w = worker(sessionmaker, servers.start(inbox), clock, sms)
    message = await take(sessionmaker, a)
    for at in (0, 10, 20, 30, 40, 50, 60 * 24):
        clock.at = minutes(at)
        await w.run_once()
    assert await queued(sessionmaker, message) == [
        ("email", KARI), ("sms", KARI_SMS), ("email", OLA), ("email", VAKT),
    ]  # fmt: skip
    assert [r.rcpt_tos for r in inbox.received] == [[KARI], [OLA], [VAKT]]
    assert await escalation_log(sessionmaker, message) == [
        "step 1 of 3: Kari Nordmann; the next in 10 min unless acknowledged",
        "escalated to Ola Hansen (step 2 of 3): not acknowledged within 10 min",
        f"escalated to {VAKT} (step 3 of 3): not acknowledged within 10 min",
        "escalation ended: nobody acknowledged",
    ]
    log = await MessageRepository(sessionmaker).message_log(message)
    ended = [e.at for e in log if e.result == "escalation ended: nobody acknowledged"]
    assert ended == [minutes(30)]  # once, when the last person's 10 minutes were over
    async with sessionmaker() as s:
        row = await s.get(models.Message, message)
        assert row is not None and (row.escalation_step, row.escalate_at) == (3, None)


async def test_without_escalation_and_for_what_is_not_urgent_everything_as_before(
    sessionmaker: Sessionmaker, servers: Servers
) -> None:
    a, b = await setup(sessionmaker)
    inbox, sms, clock = Mailbox(), RecordingSms(), HandClock(T0)
    w = worker(sessionmaker, servers.start(inbox), clock, sms)
    urgent_nordlys = await take(sessionmaker, b)  # Nordlys does not escalate: all at once
    routine = await take(sessionmaker, a, urgent=False)  # not urgent: scope 'all', at once
    assert await queued(sessionmaker, urgent_nordlys) == [("email", x) for x in NORDLYS]
    assert await queued(sessionmaker, routine) == [("email", KARI), ("email", OLA)]
    for at in (0, 10, 20, 30, 60):
        clock.at = minutes(at)
        await w.run_once()
    assert len(inbox.received) == 4 and sms.sent == []
    for message in (urgent_nordlys, routine):
        assert await escalation_log(sessionmaker, message) == []
        log = await MessageRepository(sessionmaker).message_log(message)
        assert [e.status for e in log] == ["new", "sent", "sent"]


async def test_switched_off_while_escalating_the_rest_get_it_at_once(
    sessionmaker: Sessionmaker, servers: Servers
) -> None:
    a, _ = await setup(sessionmaker)
    inbox, sms, clock = Mailbox(), RecordingSms(), HandClock(T0)
    w = worker(sessionmaker, servers.start(inbox), clock, sms)
    message = await take(sessionmaker, a)
    await EscalationRepository(sessionmaker).set_escalate_after(a, None)
    assert (await EscalationRepository(sessionmaker).escalate_after())[a] is None
    clock.at = minutes(10)
    assert await w.run_once() == 4  # Kari's two, and the rest at once
    assert sorted(address for r in inbox.received for address in r.rcpt_tos) == [KARI, OLA, VAKT]
    assert (await escalation_log(sessionmaker, message))[-1] == (
        f"escalation switched off: the rest at once (Ola Hansen, {VAKT})"
    )
    clock.at = minutes(60)
    assert await w.run_once() == 0


async def test_a_resend_goes_to_everyone_and_stops_the_escalation(
    sessionmaker: Sessionmaker,
) -> None:
    a, _ = await setup(sessionmaker)
    message = await take(sessionmaker, a)
    assert await MessageRepository(sessionmaker).resend(message, minutes(5), "operator") == 4
    assert (await escalation_log(sessionmaker, message))[-1] == (
        "escalation stopped: resent to every recipient"
    )
    assert await EscalationRepository(sessionmaker).escalate_due(minutes(60)) == []


async def test_two_workers_never_take_the_same_step(sessionmaker: Sessionmaker) -> None:
    """Two passes at once (two workers, each its own connection): one takes step 2, the
    other finds it taken; a third later finds nothing due yet."""
    a, _ = await setup(sessionmaker)
    message = await take(sessionmaker, a)
    first, second = EscalationRepository(sessionmaker), EscalationRepository(sessionmaker)
    done = await asyncio.gather(first.escalate_due(minutes(10)), second.escalate_due(minutes(10)))
    assert sorted(len(d) for d in done) == [0, 1]
    assert [(e.step, e.deliveries) for d in done for e in d] == [(2, 1)]
    assert await queued(sessionmaker, message) == [
        ("email", KARI), ("sms", KARI_SMS), ("email", OLA),
    ]  # fmt: skip
    assert len(await escalation_log(sessionmaker, message)) == 2
    assert await first.escalate_due(minutes(19)) == []


async def test_the_setting_is_checked(sessionmaker: Sessionmaker) -> None:
    a, _ = await setup(sessionmaker)
    repo = EscalationRepository(sessionmaker)
    for wrong in (0, 1441):
        with pytest.raises(ValueError, match="minutes"):
            await repo.set_escalate_after(a, wrong)
    assert (await repo.escalate_after())[a] == 10

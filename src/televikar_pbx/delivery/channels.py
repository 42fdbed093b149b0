"""The delivery channels the worker hands outbox rows to: e-mail over our SMTP adapter,
SMS over the gateway port. Each reads what it needs (the customer, the form version the
message was taken with, the recording) and turns every failure into ``DeliveryFailed``.
"""

from __future__ import annotations

import datetime as dt
import smtplib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.clock import Clock
from televikar_pbx.db.agents_repo import AgentRepository
from televikar_pbx.db.directory_repo import DirectoryRepository
from televikar_pbx.db.messages_repo import MessageRepository, digest_day
from televikar_pbx.db.records import MessageRecord, OutboxJob
from televikar_pbx.delivery.email_digest import DigestItem, compose_digest
from televikar_pbx.delivery.email_message import RecordingError, compose, load_recording
from televikar_pbx.delivery.sms import SmsError, SmsGateway
from televikar_pbx.delivery.sms_message import compose_sms
from televikar_pbx.delivery.worker import DeliveryFailed
from televikar_pbx.domain import ack_links
from televikar_pbx.domain.ack_links import DEFAULT_VALIDITY
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.message_delivery import digest_message_id, message_id
from televikar_pbx.domain.message_forms import Form, FormKind
from televikar_pbx.domain.messages import Message, MessageKind, MessageStatus
from televikar_pbx.errors import MailError
from televikar_pbx.messages.services import form_version
from televikar_pbx.reports.mail import SmtpConfig, reachable, send


@dataclass(frozen=True, slots=True)
class Context:
    customer: Customer
    message: Message
    form: Form | None
    # A voice message's recording: attached, or a link to the desk (customers edit
    # --voice-delivery link; needs the desk's public address, else attached).
    voice_delivery: str = "attachment"


# Loads the customer and the form version of a message (messages/services.py).
LoadContext = Callable[[MessageRecord], Awaitable[Context]]


def domain_message(record: MessageRecord, agent: str | None = None) -> Message:
    """The core's view of a stored message."""
    return Message(
        id=record.id,
        customer_id=record.customer_id,
        kind=MessageKind(record.kind),
        taken_at=record.taken_at or record.created_at,
        caller_number=record.caller_number,
        urgent=record.urgent,
        call_id=record.call_id,
        agent=agent,
        form_version=record.form_version,
        values=dict(record.fields),
        recording=record.file,
        duration_s=record.duration_s,
        status=MessageStatus(record.status),
    )


@dataclass(frozen=True, slots=True)
class AckLinks:
    """Where an urgent message's e-mail links to acknowledge it: the desk's public
    address (TELEVIKAR_WEB_PUBLIC_URL), signed with its secret, valid ``valid_for``."""

    base_url: str
    secret: bytes = field(repr=False)
    valid_for: dt.timedelta = DEFAULT_VALIDITY

    def url(self, message_id: int, now: dt.datetime) -> str:
        token = ack_links.sign(self.secret, message_id, now + self.valid_for)
        return f"{self.base_url.rstrip('/')}/ack/{token}"


class EmailChannel:
    def __init__(
        self, smtp: SmtpConfig, load: LoadContext, clock: Clock, ack: AckLinks | None = None
    ) -> None:
        self._smtp = smtp
        self._load = load
        self._clock = clock
        self._ack = ack
        # Message-IDs name our sending domain: the part after @ of the sender address.
        self._domain = smtp.sender.rsplit("@", 1)[-1].strip(" >") or "televikar-pbx"

    async def deliver(self, job: OutboxJob, message: MessageRecord) -> str | None:
        ctx = await self._load(message)
        recording = None
        now = self._clock.now()
        listen_url = None
        if message.kind == "voice" and ctx.voice_delivery == "link" and self._ack:
            listen_url = self._ack.url(message.id, now)  # the page plays it, and acknowledges
        elif message.kind == "voice":
            try:
                recording = await load_recording(Path(message.file or ""))
            except RecordingError as exc:
                raise DeliveryFailed(f"recording: {exc}") from exc
        mid = message_id(message.id, f"email:{job.address}", self._domain, job.generation)
        ack_url = self._ack.url(message.id, now) if self._ack and message.urgent else None
        if listen_url is not None and ack_url is not None:
            ack_url = listen_url  # one link: the page plays the message and acknowledges it
        mail = compose(
            sender=self._smtp.sender,
            to=job.address,
            customer=ctx.customer,
            message=ctx.message,
            form=ctx.form,
            message_id=mid,
            now=now,
            recording=recording,
            ack_url=ack_url,
            listen_url=listen_url,
        )
        try:
            refused = await send(self._smtp, mail)
        except MailError as exc:
            raise _mail_failed(exc) from exc
        if refused:
            raise DeliveryFailed(refused, permanent=True)
        return mid

    async def reachable(self) -> bool:
        return await reachable(self._smtp)


class DigestChannel:
    """A recipient's daily digest: the messages held for it, in one e-mail."""

    def __init__(self, smtp: SmtpConfig, load: LoadContext, clock: Clock) -> None:
        self._smtp = smtp
        self._load = load
        self._clock = clock
        self._domain = smtp.sender.rsplit("@", 1)[-1].strip(" >") or "televikar-pbx"

    async def deliver_batch(
        self, jobs: list[OutboxJob], messages: list[MessageRecord]
    ) -> str | None:
        items: list[DigestItem] = []
        customer = None
        for record in messages:
            ctx = await self._load(record)
            customer = ctx.customer
            recording = None
            if record.kind == "voice":
                try:
                    recording = await load_recording(Path(record.file or ""))
                except RecordingError as exc:
                    raise DeliveryFailed(f"recording: {exc}") from exc
            items.append(DigestItem(ctx.message, ctx.form, recording))
        assert customer is not None and jobs[0].batch_key is not None
        day = digest_day(jobs[0].batch_key)
        to = jobs[0].address
        mid = digest_message_id(customer.id, f"email:{to}", day, self._domain)
        mail = compose_digest(
            sender=self._smtp.sender, to=to, customer=customer, day=day, items=items,
            message_id=mid, now=self._clock.now(),
        )  # fmt: skip
        try:
            refused = await send(self._smtp, mail)
        except MailError as exc:
            raise _mail_failed(exc) from exc
        if refused:
            raise DeliveryFailed(refused, permanent=True)
        return mid

    async def reachable(self) -> bool:
        return await reachable(self._smtp)


def _mail_failed(exc: MailError) -> DeliveryFailed:
    return DeliveryFailed(str(exc), permanent=_refused_for_good(exc), unreachable=_server_away(exc))


def _server_away(exc: MailError) -> bool:
    """The SMTP server could not be reached or dropped us before taking the message
    (as opposed to refusing this message, its recipient or our login)."""
    cause = exc.__cause__
    if isinstance(cause, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return True
    return isinstance(cause, OSError) and not isinstance(cause, smtplib.SMTPException)


def _refused_for_good(exc: MailError) -> bool:
    """The server refused the recipient with a 5xx: retrying will not help."""
    cause = exc.__cause__
    if isinstance(cause, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in cause.recipients.values())
    return False


class SmsChannel:
    def __init__(self, gateway: SmsGateway, load: LoadContext) -> None:
        self._gateway = gateway
        self._load = load

    async def deliver(self, job: OutboxJob, message: MessageRecord) -> str | None:
        ctx = await self._load(message)
        text = compose_sms(ctx.customer, ctx.message, ctx.form)
        try:
            receipt = await self._gateway.send(job.address, text, job.message_key)
        except SmsError as exc:
            raise DeliveryFailed(str(exc), permanent=exc.permanent) from exc
        del receipt  # the gateway's reports name our reference (job.message_key)
        return job.message_key


def form_kind(record: MessageRecord) -> FormKind | None:
    return None if record.kind == "voice" else FormKind(record.kind)


def context_loader(sessions: async_sessionmaker[AsyncSession]) -> LoadContext:
    """Read a message's customer, agent and form version, each time (the operator may
    have changed the customer's name since the service started)."""

    async def load(record: MessageRecord) -> Context:
        async with sessions() as session:
            customer = await DirectoryRepository(session).get_customer(record.customer_id)
            agent = None
            if record.agent_id is not None:
                agent = (await AgentRepository(session).get_agent(record.agent_id)).name
            form = None
            kind = form_kind(record)
            if kind is not None and record.form_version is not None:
                form = await form_version(
                    MessageRepository(session), record.customer_id, kind, record.form_version
                )
            voice = await MessageRepository(session).voice_delivery(record.customer_id)
        return Context(customer, domain_message(record, agent), form, voice)

    return load

"""Message delivery inside ``televikar-pbx serve``: the worker over the outbox, its
channels as configured, and the SMS gateway's delivery-report webhook.

E-mail needs the ``TELEVIKAR_SMTP_*`` settings, SMS the ``TELEVIKAR_SMS_*`` ones; a
channel that is not configured is still in the table, so its deliveries are retried and
then ``failed`` with the reason, visible in ``status`` and ``messages show``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.clock import Clock
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.outbox_repo import OutboxRepository
from televikar_pbx.db.records import MessageRecord, OutboxJob
from televikar_pbx.delivery.channels import (
    AckLinks,
    DigestChannel,
    EmailChannel,
    SmsChannel,
    context_loader,
)
from televikar_pbx.delivery.sveve import DEFAULT_BASE_URL, SveveConfig, SveveGateway, read_report
from televikar_pbx.delivery.worker import Channel, DeliveryFailed, DeliveryWorker, WorkerSettings
from televikar_pbx.errors import ConfigError
from televikar_pbx.reports.mail import SmtpConfig
from televikar_pbx.settings import Settings

log = structlog.get_logger("televikar_pbx.delivery")


class Unconfigured:
    """A channel without settings: every delivery fails with the reason."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    async def deliver(self, job: OutboxJob, message: MessageRecord) -> str | None:
        raise DeliveryFailed(self._reason)


@dataclass(slots=True)
class Delivery:
    worker: DeliveryWorker
    _task: asyncio.Task[None]
    _stop: asyncio.Event
    _http: aiohttp.ClientSession
    _webhook: web.AppRunner | None

    async def close(self) -> None:
        self._stop.set()
        await asyncio.gather(self._task, return_exceptions=True)
        if self._webhook is not None:
            await self._webhook.cleanup()
        await self._http.close()


def channels(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    http: aiohttp.ClientSession,
) -> dict[str, Channel]:
    load = context_loader(sessions)
    table: dict[str, Channel] = {}
    try:
        table["email"] = EmailChannel(
            SmtpConfig.from_settings(settings), load, clock, ack_links_from(settings)
        )
    except ConfigError as exc:
        table["email"] = Unconfigured(str(exc))
    if settings.sms_user:
        config = SveveConfig(
            user=settings.sms_user,
            password=settings.sms_password.get_secret_value(),
            sender=settings.sms_sender,
            base_url=settings.sms_base_url or DEFAULT_BASE_URL,
        )
        table["sms"] = SmsChannel(SveveGateway(http, config), load)
    else:
        table["sms"] = Unconfigured("SMS is not configured (TELEVIKAR_SMS_USER)")
    return table


def ack_links_from(settings: Settings) -> AckLinks | None:
    """Acknowledgement links in urgent e-mails, when the desk has a public address and
    its secret (docs/desk-web.md)."""
    secret = settings.web_secret.get_secret_value()
    if not settings.web_public_url or not secret:
        return None
    return AckLinks(
        settings.web_public_url, secret.encode(), dt.timedelta(days=settings.ack_link_days)
    )


def digest_channel(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> DigestChannel | None:
    """The daily digests' channel: e-mail, when SMTP is configured."""
    try:
        smtp = SmtpConfig.from_settings(settings)
    except ConfigError:
        return None
    return DigestChannel(smtp, context_loader(sessions), clock)


async def start_delivery(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> Delivery:
    http = aiohttp.ClientSession()
    outbox = OutboxRepository(sessions)
    worker = DeliveryWorker(
        outbox,
        MessageRepository(sessions),
        channels(settings, sessions, clock, http),
        clock,
        WorkerSettings(
            poll_s=settings.delivery_poll_s,
            lease_s=settings.delivery_lease_s,
            rate=settings.delivery_rate,
            probe_s=settings.delivery_probe_s,
        ),
        digest_channel(settings, sessions, clock),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name="delivery")
    webhook = None
    token = settings.sms_webhook_token.get_secret_value()
    if settings.sms_user:
        webhook = await _start_webhook(outbox, clock, token, settings)
    return Delivery(worker, task, stop, http, webhook)


async def run_delivery(
    settings: Settings, stop: asyncio.Event, clock: Clock, *, idle: bool = False
) -> None:
    """``televikar-pbx deliver``: the worker and the webhook until ``stop`` is set.
    ``idle``: once started, in Linux's SCHED_IDLE class (:func:`idle_priority`)."""
    engine = make_engine(settings.sqlalchemy_url)
    try:
        delivery = await start_delivery(settings, make_sessionmaker(engine), clock)
        if idle:
            idle_priority()
        try:
            await stop.wait()
        finally:
            await delivery.close()
    finally:
        await engine.dispose()
    log.info("delivery.stopped")


def idle_priority() -> None:
    """Run this process only on CPU that no other process wants (SCHED_IDLE).

    Niceness alone was not enough beside routing: with both cores busy, a niced worker
    still took its share at the moments a call arrived, and routing p99 rose by about a
    fifth during a burst; in SCHED_IDLE any runnable normal process preempts it at once
    (docs/performance.md, the burst beside routing). Called once the worker is up, so
    its start (imports, the database) is not what waits on a busy machine. Where the
    class is missing or refused, the worker stays merely niced.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError) as exc:
        log.warning("delivery.idle_priority_unavailable", error=str(exc))


async def _start_webhook(
    outbox: OutboxRepository, clock: Clock, token: str, settings: Settings
) -> web.AppRunner:
    async def report(request: web.Request) -> web.Response:
        found = await read_report(request, token)
        result = "delivered" if found.delivered else f"not delivered: {found.error or '?'}"
        if found.reference is None:  # an SMS not sent by us (or without our reference)
            log.warning("delivery.report_unknown", gateway_id=found.gateway_id, result=result)
            return web.Response(text="ok\n")
        if found.delivered:
            known = await outbox.delivered(found.reference, clock.now(), result)
        else:
            known = await outbox.undeliverable(found.reference, clock.now(), result)
        log.info("delivery.report", reference=found.reference, result=result, known=known)
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/sms/report", report)
    app.router.add_post("/sms/report", report)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.sms_webhook_host, settings.sms_webhook_port).start()
    log.info("delivery.webhook", host=settings.sms_webhook_host, port=settings.sms_webhook_port)
    return runner

"""The Sveve adapter against the local stand-in speaking the same API, on 127.0.0.1:
send, refusals, an outage, and delivery reports posted back to a real webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from televikar_pbx.delivery.sms import DeliveryReport, SmsError, SmsGateway
from televikar_pbx.delivery.sveve import SveveConfig, SveveGateway, read_report
from televikar_pbx.delivery.sveve_standin import SveveStandIn
from televikar_pbx.domain.message_delivery import parse_sms_reference, sms_reference

TOKEN = "s3cret-webhook-token"


class Webhook:
    """Our side of the delivery reports: a real aiohttp server with ``read_report``."""

    def __init__(self) -> None:
        self.reports: asyncio.Queue[DeliveryReport] = asyncio.Queue()
        self.fail_first = 0
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        report = await read_report(request, TOKEN)
        if self.fail_first > 0:  # as if the database were down: the gateway retries
            self.fail_first -= 1
            return web.Response(status=503)
        await self.reports.put(report)
        return web.Response(text="OK")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/sms/report", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}/sms/report"


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook()
    yield hook
    if hook.runner is not None:
        await hook.runner.cleanup()


@pytest.fixture
async def standin(webhook: Webhook) -> AsyncIterator[tuple[SveveStandIn, str]]:
    url = await webhook.start()
    gateway = SveveStandIn(report_url=f"{url}?token={TOKEN}")
    base_url = await gateway.start()
    yield gateway, base_url
    await gateway.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def _adapter(session: aiohttp.ClientSession, base_url: str, **kw: object) -> SmsGateway:
    config = SveveConfig(
        user=str(kw.get("user", "televikar")),
        password="test-password",
        sender="Televikar",
        base_url=base_url,
        timeout_s=5,
    )
    return SveveGateway(session, config)


async def test_send_and_delivery_report(
    standin: tuple[SveveStandIn, str], webhook: Webhook, session: aiohttp.ClientSession
) -> None:
    gateway, base_url = standin
    ref = sms_reference(42, "sms:+4799887766")
    text = "Beskjed til Fjordbakst AS fra Kari Nordmann (+47 22 33 44 55): ring tilbake. " * 3
    receipt = await _adapter(session, base_url).send("+4799887766", text, ref)
    assert receipt.segments == 2  # 237 GSM-7 septets
    [sms] = gateway.sent
    assert (sms.to, sms.text, sms.sender, sms.reference) == ("99887766", text, "Televikar", ref)
    assert receipt.gateway_id == str(sms.id)
    report = await asyncio.wait_for(webhook.reports.get(), 5)
    assert report == DeliveryReport(ref, str(sms.id), "+4799887766", delivered=True)
    assert parse_sms_reference(report.reference or "") == (42, 0)


async def test_foreign_number_and_undeliverable_report_by_get(
    standin: tuple[SveveStandIn, str], webhook: Webhook, session: aiohttp.ClientSession
) -> None:
    gateway, base_url = standin
    gateway.report_method = "GET"
    gateway.undeliverable.add("0046701234567")
    await _adapter(session, base_url).send("+46701234567", "Hej", "m7g0-abc")
    assert gateway.sent[0].to == "0046701234567"
    report = await asyncio.wait_for(webhook.reports.get(), 5)
    assert (report.number, report.delivered, report.reference) == (
        "+46701234567",
        False,
        "m7g0-abc",
    )
    assert report.error == "E07 Nummeret er ikke i bruk"


async def test_reports_are_retried_until_the_webhook_takes_them(
    standin: tuple[SveveStandIn, str], webhook: Webhook, session: aiohttp.ClientSession
) -> None:
    gateway, base_url = standin
    webhook.fail_first = 2
    await _adapter(session, base_url).send("+4799887766", "Hei", "r1")
    report = await asyncio.wait_for(webhook.reports.get(), 5)
    assert report.delivered and [status for _, status in gateway.reports] == [503, 503, 200]


async def test_refused_numbers_are_permanent_and_outages_are_not(
    standin: tuple[SveveStandIn, str], session: aiohttp.ClientSession
) -> None:
    gateway, base_url = standin
    gateway.refused.add("41234567")
    with pytest.raises(SmsError, match="Ugyldig mobilnummer") as info:
        await _adapter(session, base_url).send("+4741234567", "Hei", "r")
    assert info.value.permanent
    with pytest.raises(SmsError, match="brukernavn") as info:
        await _adapter(session, base_url, user="someone-else").send("+4799887766", "Hei", "r")
    assert not info.value.permanent  # the account's problem: retried until someone fixes it
    gateway.outage = 1
    with pytest.raises(SmsError, match="HTTP 503") as info:
        await _adapter(session, base_url).send("+4799887766", "Hei", "r")
    assert not info.value.permanent
    await _adapter(session, base_url).send("+4799887766", "Hei", "r")  # back again
    assert [s.to for s in gateway.sent] == ["99887766"]


async def test_gateway_down_is_a_transient_error(session: aiohttp.ClientSession) -> None:
    # A port nobody listens on: bind one, close it, use its number.
    probe = SveveStandIn()
    base_url = await probe.start()
    await probe.stop()
    with pytest.raises(SmsError) as info:
        await _adapter(session, base_url).send("+4799887766", "Hei", "r")
    assert not info.value.permanent


async def test_webhook_refuses_a_wrong_token_and_a_malformed_report(
    webhook: Webhook, session: aiohttp.ClientSession
) -> None:
    url = await webhook.start()
    async with session.get(
        url, params={"token": "guess", "id": "1", "number": "4799887766", "status": "true"}
    ) as r:
        assert r.status == 403
    async with session.post(f"{url}?token={TOKEN}", data={"id": "1", "status": "maybe"}) as r:
        assert r.status == 400
        assert "status=true|false" in await r.text()
    assert webhook.reports.empty()

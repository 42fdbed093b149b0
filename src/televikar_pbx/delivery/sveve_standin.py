"""A local stand-in for Sveve's SMS gateway, for tests and demos on 127.0.0.1.

It speaks the part of the API that :mod:`televikar_pbx.delivery.sveve` uses: the send
request (JSON body, form or query; the same answers, ``fatalError`` for a wrong user or
password, ``errors`` for numbers it refuses) and the delivery report it then sends to
``report_url`` by POST (form) or GET, retried like the real one while the receiver
answers an error. Knobs for tests: ``undeliverable`` numbers get ``status=false``,
``refused`` numbers are refused at once, ``outage`` answers HTTP 503 to that many
requests.

Never bind it to anything but loopback: it has no TLS, and its credentials are a test's.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from televikar_pbx.domain.sms_text import split

log = structlog.get_logger(__name__)

REPORT_RETRIES_S = (0.05, 0.2, 0.5, 1.0)  # the real one waits 5 s, 15 s, 1 min, ...


@dataclass(frozen=True, slots=True)
class SentSms:
    id: int
    to: str  # as the request gave it (8 digits, or 00 and a country code)
    text: str
    sender: str
    reference: str | None
    segments: int


@dataclass
class SveveStandIn:
    user: str = "televikar"
    password: str = "test-password"
    report_url: str | None = None
    report_method: str = "POST"
    undeliverable: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    outage: int = 0
    sent: list[SentSms] = field(default_factory=list)
    reports: list[tuple[dict[str, str], int]] = field(default_factory=list)  # (params, status)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _next_id: int = 42824112

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve; returns the base URL to give :class:`SveveConfig`."""
        if not host.startswith("127."):
            raise ValueError("the stand-in serves loopback only")
        app = web.Application()
        app.router.add_route("*", "/SMS/SendMessage", self._send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self._session = aiohttp.ClientSession()
        bound_host, bound_port = self._runner.addresses[0][:2]
        return f"http://{bound_host}:{bound_port}"

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def reports_done(self, timeout_s: float = 5.0) -> None:
        """Wait until every delivery report due so far was posted (or given up)."""
        async with asyncio.timeout(timeout_s):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _send(self, request: web.Request) -> web.Response:
        if self.outage > 0:
            self.outage -= 1
            return web.Response(status=503, text="Service Unavailable")
        params = await _params(request)
        if params.get("user") != self.user or params.get("passwd") != self.password:
            return web.json_response({"response": {"fatalError": "Feil brukernavn/passord"}})
        text, sender = str(params.get("msg", "")), str(params.get("from", "27333"))
        numbers = [n.strip() for n in str(params.get("to", "")).split(",") if n.strip()]
        if not text or not numbers:
            return web.json_response({"response": {"fatalError": "Mangler mottaker eller tekst"}})
        ids: list[int] = []
        errors: list[dict[str, str]] = []
        segments = split(text).segments
        for number in numbers:
            if number in self.refused or not _plausible(number):
                errors.append({"number": number, "message": "Ugyldig mobilnummer"})
                continue
            self._next_id += 1
            sms = SentSms(self._next_id, number, text, sender, params.get("ref"), segments)
            self.sent.append(sms)
            ids.append(sms.id)
            if self.report_url and not params.get("test"):
                task = asyncio.create_task(self._report(sms))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        body: dict[str, Any] = {
            "msgOkCount": len(ids),
            "stdSMSCount": len(ids) * segments,
            "ids": ids,
        }
        if errors:
            body["errors"] = errors
        return web.json_response({"response": body})

    async def _report(self, sms: SentSms) -> None:
        assert self._session is not None and self.report_url is not None
        ok = sms.to not in self.undeliverable
        params = {
            "number": f"47{sms.to}" if len(sms.to) == 8 else sms.to[2:],
            "status": "true" if ok else "false",
            "id": str(sms.id),
            "ref": sms.reference or "",
            "errorCode": "" if ok else "E07",
            "errorDesc": "" if ok else "Nummeret er ikke i bruk",
        }
        for delay in REPORT_RETRIES_S:
            await asyncio.sleep(delay)
            status = await self._post_report(params)
            self.reports.append((params, status))
            if 200 <= status < 300:
                return
        log.warning("standin_report_given_up", id=sms.id)

    async def _post_report(self, params: dict[str, str]) -> int:
        assert self._session is not None and self.report_url is not None
        try:
            if self.report_method == "GET":
                request = self._session.get(self.report_url, params=params)
            else:
                request = self._session.post(self.report_url, data=params)
            async with request as response:
                return response.status
        except aiohttp.ClientError:
            return 0


async def _params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST":
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body.get("request", body) if isinstance(body, dict) else {})
        else:
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    test = params.get("test")
    params["test"] = test is True or str(test).lower() == "true"
    return params


def _plausible(number: str) -> bool:
    return number.isdigit() and (len(number) == 8 or (number.startswith("00") and len(number) > 9))

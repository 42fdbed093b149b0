"""The SMS adapter for Sveve (Sveve AS, a Norwegian SMS gateway), over its HTTP API.

Why Sveve: its API is public and small (one request to send, one webhook for delivery
reports), takes a sender name and our own reference that comes back in the report, and
needs no SDK, OAuth or request signing; it sends to every Norwegian operator. Others
(Link Mobility, Target365) need token exchanges or signed requests for the same thing.

The API as we use it
--------------------
Send: ``POST {base_url}/SMS/SendMessage`` with a JSON body ``{"user", "passwd", "to",
"msg", "from", "ref", "f": "json"}`` (``test: true`` takes the request without sending).
The answer is ``{"response": {"msgOkCount": 1, "stdSMSCount": 2, "ids": [42824112]}}``,
with ``"errors": [{"number", "message"}]`` for numbers it refused, or ``{"response":
{"fatalError": "..."}}`` when it took nothing (wrong password, no credit). Numbers:
Norwegian ones as their 8 digits, others with ``00`` and the country code.

Delivery report: the gateway calls the URL configured on the account, by GET or by POST
(form), with ``number``, ``status`` (``true``: delivered), ``id`` (its id), ``ref``
(ours), ``errorCode``, ``errorDesc``; it retries while we answer with an error, so the
handler answers 200 once the report is stored. The URL carries a secret token of ours
(``?token=``), since anyone could otherwise mark our messages delivered.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import phonenumbers
from aiohttp import web

from televikar_pbx.delivery.sms import DeliveryReport, SmsError, SmsReceipt

DEFAULT_BASE_URL = "https://sveve.no"
MAX_TEXT = 1071  # characters in one request, as the API documents


@dataclass(frozen=True, slots=True)
class SveveConfig:
    user: str
    password: str
    sender: str  # up to 11 characters, letters and digits (the name the phone shows)
    base_url: str = DEFAULT_BASE_URL
    timeout_s: float = 20.0
    test: bool = False  # the gateway takes the request but sends nothing

    def __post_init__(self) -> None:
        if not self.user or not self.password:
            raise ValueError("Sveve needs a user and an API password")
        if not (3 <= len(self.sender) <= 11) or not self.sender.isascii():
            raise ValueError(f"SMS sender {self.sender!r}: 3 to 11 ASCII letters or digits")
        if not self.sender.replace(" ", "").isalnum():
            raise ValueError(f"SMS sender {self.sender!r}: letters and digits only")


def sveve_number(e164: str) -> str:
    """The gateway's form of a number: 8 digits in Norway, ``00``+country elsewhere."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        raise SmsError(f"not an E.164 number: {e164!r}", permanent=True) from None
    if number.country_code == 47:
        return phonenumbers.national_significant_number(number)
    return f"00{number.country_code}{phonenumbers.national_significant_number(number)}"


class SveveGateway:
    """:class:`~televikar_pbx.delivery.sms.SmsGateway` over Sveve's HTTP API; the
    ``session`` is the service's (one per process), never closed here."""

    def __init__(self, session: aiohttp.ClientSession, config: SveveConfig) -> None:
        self._session = session
        self._config = config

    async def send(self, to: str, text: str, reference: str) -> SmsReceipt:
        if len(text) > MAX_TEXT:
            raise SmsError(
                f"SMS text of {len(text)} characters (at most {MAX_TEXT})", permanent=True
            )
        body: dict[str, Any] = {
            "user": self._config.user,
            "passwd": self._config.password,
            "to": sveve_number(to),
            "msg": text,
            "from": self._config.sender,
            "ref": reference,
            "f": "json",
        }
        if self._config.test:
            body["test"] = True
        url = f"{self._config.base_url.rstrip('/')}/SMS/SendMessage"
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_s)
        try:
            async with self._session.post(url, json=body, timeout=timeout) as response:
                if response.status >= 500 or response.status == 429:
                    raise SmsError(f"Sveve answered HTTP {response.status}")
                if response.status >= 400:
                    raise SmsError(
                        f"Sveve refused the request: HTTP {response.status}", permanent=True
                    )
                payload = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SmsError(f"Sveve {url}: {type(exc).__name__}: {exc}".rstrip(": ")) from exc
        return _receipt(payload, to)


def _receipt(payload: object, to: str) -> SmsReceipt:
    data = payload.get("response") if isinstance(payload, Mapping) else None
    if not isinstance(data, Mapping):
        raise SmsError(f"Sveve answered something unexpected: {str(payload)[:200]}")
    if data.get("fatalError"):
        # Credentials, credit, a sender it refuses: the account, not this SMS. Retried,
        # so messages get through once someone fixes the account within the schedule.
        raise SmsError(f"Sveve refused: {data['fatalError']}")
    errors = data.get("errors") or []
    if errors:
        first = errors[0] if isinstance(errors[0], Mapping) else {}
        raise SmsError(
            f"Sveve refused {first.get('number', to)}: {first.get('message', errors[0])}",
            permanent=True,
        )
    ids = data.get("ids") or []
    if data.get("msgOkCount") != 1 or len(ids) != 1:
        raise SmsError(f"Sveve answered something unexpected: {dict(data)}")
    segments = data.get("stdSMSCount")
    return SmsReceipt(str(ids[0]), segments if isinstance(segments, int) and segments > 0 else 1)


def parse_report(params: Mapping[str, str]) -> DeliveryReport:
    """A delivery report from its parameters; ``ValueError`` when it is not one."""
    gateway_id, number, status = params.get("id"), params.get("number"), params.get("status")
    if not gateway_id or not number or status not in ("true", "false"):
        raise ValueError(
            "a Sveve delivery report needs id, number and status=true|false, got "
            + (", ".join(sorted(params)) or "nothing")
        )
    e164 = _report_number(number)
    delivered = status == "true"
    error = " ".join(p for p in (params.get("errorCode"), params.get("errorDesc")) if p) or None
    return DeliveryReport(
        reference=params.get("ref") or None,
        gateway_id=gateway_id,
        number=e164,
        delivered=delivered,
        error=None if delivered else (error or "not delivered"),
    )


def _report_number(number: str) -> str:
    """E.164 of a report's number: 8 digits (Norwegian), ``00``/``+`` and a country
    code, or the country code and number without either; else as written."""
    text = number.strip()
    if text.isdigit() and not text.startswith("00") and len(text) > 8:
        text = f"+{text}"
    try:
        parsed = phonenumbers.parse(text, "NO")
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


async def read_report(request: web.Request, token: str) -> DeliveryReport:
    """The report in a webhook request (GET query or POST form); ``web.HTTPForbidden``
    without our token, ``web.HTTPBadRequest`` when it is not a report. The route's
    handler stores the report and then answers 200."""
    given = request.query.get("token", "")
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise web.HTTPForbidden(text="wrong token\n")
    params: dict[str, str] = {k: v for k, v in request.query.items() if k != "token"}
    if request.method == "POST":
        form = await asyncio.wait_for(request.post(), timeout=10)
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    try:
        return parse_report(params)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from None

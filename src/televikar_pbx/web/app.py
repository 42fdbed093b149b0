"""The agent desk's web application: log-in, log-out and the (for now) one page behind it.

Handlers stay thin over ``auth.services.DeskAuth``; the rules are ``domain.auth``'s.
Pages to come use ``require_user`` (redirects to /login) and ``require_csrf`` (403) the
same way ``index`` and ``logout`` do. Templates are Jinja2 with autoescaping on.

``serve`` starts it when TELEVIKAR_WEB_SECRET is set (``app._start_desk_web``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.auth.passwords import Passwords
from televikar_pbx.auth.services import Authenticated, AuthPolicy, DeskAuth, LoginOutcome
from televikar_pbx.clock import Clock
from televikar_pbx.db.audit_repo import AuditRepository
from televikar_pbx.db.knowledge_repo import KnowledgeRepository
from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.repo_base import MessageNotFound
from televikar_pbx.domain import ack_links
from televikar_pbx.domain.ack_links import AckStatus
from televikar_pbx.domain.audit import AuditAction, AuditRecord
from televikar_pbx.domain.auth import (
    Role,
    SessionPolicy,
    ThrottlePolicy,
    csrf_ok,
    login_csrf_ok,
    login_csrf_token,
)
from televikar_pbx.errors import ConfigError
from televikar_pbx.settings import Settings
from televikar_pbx.web import knowledge

MIN_SECRET = 32
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class WebConfig:
    secret: bytes = field(repr=False)
    secure_cookies: bool = False
    trust_forwarded_for: bool = False

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET:
            raise ConfigError(
                f"TELEVIKAR_WEB_SECRET must have at least {MIN_SECRET} characters"
                " (generate one: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )

    @property
    def session_cookie(self) -> str:
        # "__Host-": the browser takes the cookie only if Secure, Path=/ and no Domain.
        return "__Host-televikar" if self.secure_cookies else "televikar_session"

    @property
    def login_cookie(self) -> str:
        return "__Host-televikar-login" if self.secure_cookies else "televikar_login"


AUTH = web.AppKey("auth", DeskAuth)
MESSAGES = web.AppKey("messages", MessageRepository)
AUDIT = web.AppKey("audit", AuditRepository)
CUSTOMER_LINK = "customer (link)"  # who acted, in message logs and the audit log
CONFIG = web.AppKey("config", WebConfig)
CLOCK = web.AppKey("clock", Clock)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# What "/" shows: ``index`` until the desk's pages are added (web/desk.py).
INDEX: web.AppKey[Handler] = web.AppKey("index")
KNOWLEDGE = web.AppKey("knowledge", KnowledgeRepository)


def policy_from_settings(settings: Settings) -> AuthPolicy:
    window = dt.timedelta(seconds=settings.web_login_window_s)
    lockout = dt.timedelta(seconds=settings.web_login_lockout_s)
    return AuthPolicy(
        user_throttle=ThrottlePolicy(settings.web_login_max_failures, window, lockout),
        address_throttle=ThrottlePolicy(settings.web_login_address_max_failures, window, lockout),
        sessions=SessionPolicy(
            idle=dt.timedelta(seconds=settings.web_session_idle_s),
            absolute=dt.timedelta(seconds=settings.web_session_absolute_s),
        ),
    )


def app_from_settings(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    passwords: Passwords | None = None,
) -> web.Application:
    config = WebConfig(
        settings.web_secret.get_secret_value().encode(),
        settings.web_secure_cookies,
        settings.web_trust_forwarded_for,
    )
    auth = DeskAuth(sessions, passwords or Passwords(), policy_from_settings(settings))
    return make_app(auth, config, clock, MessageRepository(sessions), KnowledgeRepository(sessions))


def make_app(
    auth: DeskAuth,
    config: WebConfig,
    clock: Clock,
    messages: MessageRepository | None = None,
    knowledge_base: KnowledgeRepository | None = None,
) -> web.Application:
    app = web.Application(middlewares=[_security_headers])
    app[AUTH], app[CONFIG], app[CLOCK] = auth, config, clock
    if messages is not None:
        app[MESSAGES] = messages
        app[AUDIT] = AuditRepository(messages.source)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("televikar_pbx.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
    app[INDEX] = index
    app.router.add_get("/", _home)
    if messages is not None:
        app.router.add_get("/ack/{token}", ack_page)
        app.router.add_post("/ack/{token}", ack_submit)
        app.router.add_get("/ack/{token}/recording", ack_recording)
    if knowledge_base is not None:
        app[KNOWLEDGE] = knowledge_base
        knowledge.add_routes(app)  # web/knowledge.py
    return app


async def start(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on host:port until ``await runner.cleanup()``."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    if not response.prepared:  # a stream (the live feeds) sets its own before it starts
        response.headers.update(SECURITY_HEADERS)
    return response


# --- helpers for every page --------------------------------------------------------


def client_address(request: web.Request) -> str | None:
    if request.app[CONFIG].trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.remote


async def require_user(request: web.Request) -> Authenticated:
    """The logged-in user of the request, else a redirect to /login."""
    config = request.app[CONFIG]
    who = await request.app[AUTH].authenticate(
        request.cookies.get(config.session_cookie), request.app[CLOCK].now()
    )
    if who is None:
        raise web.HTTPSeeOther("/login")
    return who


async def require_csrf(request: web.Request, who: Authenticated) -> None:
    """403 unless the form (or the X-CSRF-Token header) carries the session's token."""
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.post()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not csrf_ok(who.session.csrf_secret, given):
        raise web.HTTPForbidden(text="Ugyldig skjema (CSRF). Last siden på nytt.")


def require_role(who: Authenticated, *roles: Role) -> None:
    """403 unless the user has one of ``roles``."""
    if who.user.role not in roles:
        raise web.HTTPForbidden(text="Ingen tilgang.")


async def require_customer(request: web.Request, who: Authenticated, customer_id: int) -> None:
    """404 unless the user may see ``customer_id``: another customer's page, message or
    recording must look as if it did not exist (issue 14, "Confidentiality")."""
    visible = await request.app[AUTH].customers_of(who.user)
    if visible is not None and customer_id not in visible:
        raise web.HTTPNotFound(text="Finnes ikke.")


def _set_cookie(response: web.StreamResponse, config: WebConfig, name: str, value: str) -> None:
    response.set_cookie(
        name, value, path="/", httponly=True, samesite="Strict", secure=config.secure_cookies
    )


# --- handlers ----------------------------------------------------------------------


async def login_page(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    token = request.cookies.get(config.session_cookie)
    if await request.app[AUTH].authenticate(token, request.app[CLOCK].now()):
        raise web.HTTPSeeOther("/")
    return _login_form(request, status=200)


def _login_form(
    request: web.Request, *, status: int, error: str | None = None, username: str = ""
) -> web.StreamResponse:
    config = request.app[CONFIG]
    nonce = request.cookies.get(config.login_cookie) or secrets.token_urlsafe(32)
    context = {
        "csrf": login_csrf_token(config.secret, nonce),
        "error": error,
        "username": username,
    }
    response = aiohttp_jinja2.render_template("login.html", request, context, status=status)
    _set_cookie(response, config, config.login_cookie, nonce)
    return response


async def _anonymous_form(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | FileField]:
    """A form posted without a session (log-in, acknowledgement): its token must match
    the nonce cookie its page set (double submit), else 403."""
    config = request.app[CONFIG]
    form = await request.post()
    given = form.get(CSRF_FIELD)
    if not login_csrf_ok(
        config.secret,
        request.cookies.get(config.login_cookie),
        given if isinstance(given, str) else None,
    ):
        raise web.HTTPForbidden(text="Ugyldig skjema (CSRF). Last siden på nytt.")
    return form


async def login_submit(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    form = await _anonymous_form(request)
    username, password = form.get("username", ""), form.get("password", "")
    if not isinstance(username, str) or not isinstance(password, str):
        raise web.HTTPBadRequest(text="Ugyldig skjema.")
    now = request.app[CLOCK].now()
    result = await request.app[AUTH].login(
        username,
        password,
        client_address(request),
        now,
        replacing=request.cookies.get(config.session_cookie),
    )
    if result.outcome is LoginOutcome.OK:
        assert result.token is not None
        response = web.HTTPSeeOther("/")
        _set_cookie(response, config, config.session_cookie, result.token)
        response.del_cookie(config.login_cookie, path="/", secure=config.secure_cookies)
        raise response
    if result.outcome is LoginOutcome.LOCKED:
        assert result.retry_at is not None
        wait_s = max(1, math.ceil((result.retry_at - now).total_seconds()))
        minutes = max(1, math.ceil(wait_s / 60))
        locked = _login_form(
            request,
            status=429,
            error=f"For mange mislykkede forsøk. Prøv igjen om {minutes} minutter.",
            username=username,
        )
        locked.headers["Retry-After"] = str(wait_s)
        return locked
    return _login_form(
        request, status=401, error="Feil brukernavn eller passord.", username=username
    )


async def logout(request: web.Request) -> web.StreamResponse:
    who = await require_user(request)
    await require_csrf(request, who)
    await request.app[AUTH].logout(who, request.app[CLOCK].now(), client_address(request))
    response = web.HTTPSeeOther("/login")
    config = request.app[CONFIG]
    response.del_cookie(config.session_cookie, path="/", secure=config.secure_cookies)
    raise response


async def _home(request: web.Request) -> web.StreamResponse:
    return await request.app[INDEX](request)


async def index(request: web.Request) -> web.StreamResponse:
    who = await require_user(request)
    context = {"user": who.user, "csrf": who.csrf}
    return aiohttp_jinja2.render_template("index.html", request, context)


# --- acknowledgement links (no log-in: the signed link is the permission) -------------


def _ack_message(request: web.Request) -> int:
    """The message a link names; 404 for a link we did not sign, 410 for an old one."""
    config, now = request.app[CONFIG], request.app[CLOCK].now()
    checked = ack_links.check(config.secret, request.match_info["token"], now)
    if checked.status is AckStatus.TAMPERED or checked.message_id is None:
        raise web.HTTPNotFound(text="Ukjent lenke.")
    if checked.status is AckStatus.EXPIRED:
        raise web.HTTPGone(text="Lenken er utløpt. Kontakt svartjenesten.")
    return checked.message_id


async def ack_page(request: web.Request) -> web.StreamResponse:
    """What the link in an urgent e-mail opens: a button, so that a mail scanner that
    follows links acknowledges nothing (a GET changes nothing)."""
    message_id = _ack_message(request)
    try:
        message = await request.app[MESSAGES].get_message(message_id)
    except MessageNotFound:
        raise web.HTTPNotFound(text="Ukjent lenke.") from None
    config = request.app[CONFIG]
    nonce = request.cookies.get(config.login_cookie) or secrets.token_urlsafe(32)
    context = {
        "message_id": message.id,
        "voice": message.kind == "voice" and bool(message.file),
        "acknowledged": message.status == "acknowledged",
        "csrf": login_csrf_token(config.secret, nonce),
        "token": request.match_info["token"],
    }
    response = aiohttp_jinja2.render_template("ack.html", request, context)
    _set_cookie(response, config, config.login_cookie, nonce)
    return response


async def ack_recording(request: web.Request) -> web.StreamResponse:
    """A voice message's recording, for customers who get links instead of attachments:
    the signed link is the permission; each play is in the audit log."""
    message_id = _ack_message(request)
    try:
        message = await request.app[MESSAGES].get_message(message_id)
    except MessageNotFound:
        raise web.HTTPNotFound(text="Ukjent lenke.") from None
    path = Path(message.file or "")
    if message.kind != "voice" or not message.file or not await asyncio.to_thread(path.is_file):
        raise web.HTTPNotFound(text="Ingen opptak.")
    await request.app[AUDIT].record(
        AuditRecord(
            at=request.app[CLOCK].now(),
            action=AuditAction.PLAY_RECORDING,
            username=CUSTOMER_LINK,
            customer_id=message.customer_id,
            object_id=str(message.id),
            address=client_address(request),
        )
    )
    return web.FileResponse(path, headers={**SECURITY_HEADERS, "Content-Type": "audio/wav"})


async def ack_submit(request: web.Request) -> web.StreamResponse:
    await _anonymous_form(request)
    message_id = _ack_message(request)
    try:
        await request.app[MESSAGES].acknowledge(message_id, request.app[CLOCK].now(), CUSTOMER_LINK)
    except MessageNotFound:
        raise web.HTTPNotFound(text="Ukjent lenke.") from None
    raise web.HTTPSeeOther(f"/ack/{request.match_info['token']}")

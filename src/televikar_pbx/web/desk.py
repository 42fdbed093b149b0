"""The agent's desk and the supervisor's wallboard (issue 14): pages, their live feeds,
the message and order forms, and the message view.

    GET  /                          the desk (an agent's card, its state buttons, the call)
    GET  /events                    the agent's card as Server-Sent Events
    POST /agent/{action}            login | logout | pause | resume (as *45/*46/*47)
    GET  /calls/{id}/context        last calls and messages from the caller (JSON)
    GET  /calls/{id}/form/{kind}    the customer's message or order form, prefilled
    POST /calls/{id}/form/{kind}    take it (422 with one error per field)
    GET  /messages/{id}             a message with its delivery log (audited)
    GET  /messages/{id}/status      its status, for the page's live display (JSON)
    GET  /messages/{id}/recording   a voice message's WAV (audited)
    GET  /wallboard                 supervisors: waiting callers, agents, today's SLA
    GET  /wallboard/events          its feed

Every customer object is checked on the server (``require_customer``: 404 for a
customer the user does not serve). The live parts exist only inside ``serve`` (the
hub needs the desk); elsewhere the pages say the desk is not running.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.db.audit_repo import AuditRepository
from televikar_pbx.db.calls_repo import CallRepository
from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.repo_base import MessageNotFound, NotFound
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain import acd
from televikar_pbx.domain.audit import AuditAction, AuditRecord
from televikar_pbx.domain.auth import Role
from televikar_pbx.domain.desk_live import WITHHELD, shown_number
from televikar_pbx.domain.knowledge import is_stale
from televikar_pbx.domain.message_forms import FieldType, Form, FormKind, prefill
from televikar_pbx.domain.message_validation import ValidationFailed
from televikar_pbx.messages import services as message_services
from televikar_pbx.reports.message_labels import field_rows, kind_label, shown_value, status_label
from televikar_pbx.reports.sla_figures import sla_figures
from televikar_pbx.web.app import (
    CLOCK,
    INDEX,
    KNOWLEDGE,
    SECURITY_HEADERS,
    client_address,
    require_csrf,
    require_customer,
    require_role,
    require_user,
)
from televikar_pbx.web.live import LiveDesk, Subscription

log = structlog.get_logger("televikar_pbx.web")

HEARTBEAT_S = 15.0
SLA_REFRESH_S = 15.0
RECENT = 5
BOARD_ROLES = (Role.SUPERVISOR, Role.ADMIN)
FINAL_STATUSES = ("delivered", "acknowledged", "failed")
STATE_LABELS = {
    "logged_out": "Logget ut",
    "idle": "Ledig",
    "offered": "Ringer",
    "on_call": "I samtale",
    "wrap_up": "Etterarbeid",
    "paused": "Pause",
}
FIELD_INPUTS = {
    FieldType.TEXT: "text",
    FieldType.PHONE: "tel",
    FieldType.EMAIL: "email",
    FieldType.DATE: "text",  # dd.mm.åååå, as the validation reads it
    FieldType.NUMBER: "text",
}

SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
LIVE = web.AppKey("live", LiveDesk)


class AgentActionsPort(Protocol):
    """``calls.features.AgentActions``: log in or out, pause or resume an agent."""

    async def __call__(self, agent_id: int, action: str) -> None: ...


ACTIONS: web.AppKey[AgentActionsPort] = web.AppKey("agent_actions")
SLA_TASK = web.AppKey("sla_task", asyncio.Task[None])


def add_routes(
    app: web.Application,
    sessions: async_sessionmaker[AsyncSession],
    live: LiveDesk | None = None,
    agent_actions: AgentActionsPort | None = None,
) -> None:
    """The desk's pages on ``app``; ``live`` and ``agent_actions`` (an
    ``calls.features.AgentActions``) when the desk runs in this process."""
    app[SESSIONS] = sessions
    app[INDEX] = desk_page
    if live is not None:
        app[LIVE] = live
        app.on_startup.append(_start_sla_feed)
        app.on_shutdown.append(_close_feeds)
    if agent_actions is not None:
        app[ACTIONS] = agent_actions
    app.router.add_get("/events", agent_events)
    app.router.add_post("/agent/{action}", agent_action)
    app.router.add_get("/calls/{record_id:\\d+}/context", call_context)
    app.router.add_get("/calls/{record_id:\\d+}/form/{kind}", form_page)
    app.router.add_post("/calls/{record_id:\\d+}/form/{kind}", form_submit)
    app.router.add_get("/messages/{message_id:\\d+}", message_page)
    app.router.add_get("/messages/{message_id:\\d+}/status", message_status)
    app.router.add_get("/messages/{message_id:\\d+}/recording", message_recording)
    app.router.add_get("/wallboard", wallboard_page)
    app.router.add_get("/wallboard/events", wallboard_events)
    static = Path(__file__).parent / "static"
    app.router.add_static("/static/", static, append_version=False)


# --- the desk page and its feed ------------------------------------------------------


async def desk_page(request: web.Request) -> web.StreamResponse:
    who = await require_user(request)
    context = {
        "user": who.user,
        "csrf": who.csrf,
        "live": LIVE in request.app,
        "has_agent": who.user.agent_id is not None,
        "board": who.user.role in BOARD_ROLES,
        "state_labels": STATE_LABELS,
    }
    return aiohttp_jinja2.render_template("desk.html", request, context)


async def agent_events(request: web.Request) -> web.StreamResponse:
    who = await require_user(request)
    live = request.app.get(LIVE)
    if live is None or who.user.agent_id is None:
        raise web.HTTPNotFound(text="Ingen agent å følge.")
    return await _stream(request, live, live.subscribe_agent(who.user.agent_id))


async def _stream(request: web.Request, live: LiveDesk, feed: Subscription) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            "Content-Type": "text/event-stream; charset=utf-8",
            "X-Accel-Buffering": "no",  # a proxy must pass each event at once
        }
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n")
        while True:
            try:
                # A timer, not wait_for's task per event: 100 pages wake on every change.
                async with asyncio.timeout(HEARTBEAT_S):
                    item = await feed.queue.get()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if item is None:  # dropped (too slow) or shutting down: the page reconnects
                break
            event, data = item
            await response.write(f"event: {event}\ndata: {data}\n\n".encode())
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        live.unsubscribe(feed)
    return response


async def agent_action(request: web.Request) -> web.StreamResponse:
    who = await require_user(request)
    await require_csrf(request, who)
    action = request.match_info["action"]
    actions = request.app.get(ACTIONS)
    if actions is None or who.user.agent_id is None:
        raise web.HTTPNotFound(text="Ingen agent.")
    if action not in ("login", "logout", "pause", "resume"):
        raise web.HTTPNotFound(text="Ukjent handling.")
    try:
        await actions(who.user.agent_id, action)
    except acd.IllegalEvent:
        raise web.HTTPConflict(text="Ikke mulig nå.") from None
    if request.headers.get("X-Requested-With") == "fetch":
        return web.json_response({"ok": True})
    raise web.HTTPSeeOther("/")


async def _start_sla_feed(app: web.Application) -> None:
    app[SLA_TASK] = asyncio.create_task(_sla_feed(app), name="web-sla")


async def _close_feeds(app: web.Application) -> None:
    if SLA_TASK in app:
        app[SLA_TASK].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app[SLA_TASK]
    app[LIVE].close_all()


async def _sla_feed(app: web.Application) -> None:
    """Today's SL12/SL20/lost per customer, for the wallboards, while any is open."""
    live, sessions = app[LIVE], app[SESSIONS]
    while True:
        if live.watching_boards:
            try:
                live.set_sla(await today_sla(sessions, app[CLOCK].now()))
            except Exception as exc:  # a database hiccup must not end the feed
                log.warning("web.sla_failed", error=str(exc))
        await asyncio.sleep(SLA_REFRESH_S)


async def today_sla(sessions: async_sessionmaker[AsyncSession], now: dt.datetime) -> dict[str, Any]:
    rows = []
    async with sessions() as s:
        repo = DirectoryRepository(s)
        for customer in await repo.list_customers():
            today = now.astimezone(ZoneInfo(customer.timezone)).date()
            report = (await sla_figures(repo, customer, today, today))["day"]
            total = report.total
            rows.append(
                {
                    "id": customer.id,
                    "offered": total.offered,
                    "sl12_pct": total.sl12_pct,
                    "sl20_pct": total.sl20_pct,
                    "lost_pct": total.lost_pct,
                    "sl12_target": report.sl12_target,
                    "sl20_target": report.sl20_target,
                    "lost_target": report.lost_target,
                    "sl12_met": total.sl12_met,
                    "sl20_met": total.sl20_met,
                    "lost_met": total.lost_met,
                }
            )
    return {"at": now.isoformat(), "customers": rows}


# --- the call: context and forms -----------------------------------------------------


async def _call_of(request: web.Request, who: Any) -> Any:
    """The call record in the URL, if the user may see its customer (else 404)."""
    record_id = int(request.match_info["record_id"])
    try:
        call = await CallRepository(request.app[SESSIONS]).get_call(record_id)
    except NotFound:
        raise web.HTTPNotFound(text="Finnes ikke.") from None
    if call.customer_id is None:
        raise web.HTTPNotFound(text="Finnes ikke.")
    await require_customer(request, who, call.customer_id)
    return call


async def call_context(request: web.Request) -> web.StreamResponse:
    """What the screen pop shows beside the greeting: this caller's last calls and
    messages for this customer (none for a withheld number) and the customer's
    knowledge-base pages (titles; opening one is a view, audited there)."""
    who = await require_user(request)
    call = await _call_of(request, who)
    sessions = request.app[SESSIONS]
    calls: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    number = call.caller_number
    if shown_number(number) != WITHHELD:
        assert number is not None
        for c in await CallRepository(sessions).recent_calls_from(
            call.customer_id, number, RECENT, before=call.id
        ):
            calls.append({"id": c.id, "arrived_at": c.arrived_at.isoformat(), "outcome": c.outcome})
        for m in await MessageRepository(sessions).recent_messages_from(
            call.customer_id, number, RECENT
        ):
            messages.append(
                {
                    "id": m.id,
                    "kind": kind_label(m.kind),
                    "status": status_label(m.status),
                    "taken_at": (m.taken_at or m.created_at).isoformat(),
                    "urgent": m.urgent,
                }
            )
    pages: list[dict[str, Any]] = []
    if KNOWLEDGE in request.app:
        now = request.app[CLOCK].now()
        pages = [
            {
                "id": p.id,
                "title": p.title,
                "url": f"/customers/{p.customer_id}/kb/{p.id}",
                "stale": is_stale(p.last_reviewed_at, now),
            }
            for p in await request.app[KNOWLEDGE].list_pages(call.customer_id)
        ]
    return web.json_response({"calls": calls, "messages": messages, "pages": pages})


def _kind(request: web.Request) -> FormKind:
    try:
        return FormKind(request.match_info["kind"])
    except ValueError:
        raise web.HTTPNotFound(text="Ukjent skjema.") from None


def _render_form(
    request: web.Request,
    *,
    who: Any,
    call: Any,
    form: Form,
    values: dict[str, str],
    errors: dict[str, str],
    urgent: bool,
    status: int = 200,
) -> web.StreamResponse:
    context = {
        "csrf": who.csrf,
        "call": call,
        "form": form,
        "kind_label": kind_label(form.kind.value),
        "values": values,
        "errors": errors,
        "urgent": urgent,
        "inputs": FIELD_INPUTS,
        "FieldType": FieldType,
        "fragment": request.headers.get("X-Requested-With") == "fetch",
    }
    return aiohttp_jinja2.render_template("call_form.html", request, context, status=status)


async def form_page(request: web.Request) -> web.StreamResponse:
    who = await require_user(request)
    call = await _call_of(request, who)
    kind = _kind(request)
    async with request.app[SESSIONS].begin() as s:
        form = await message_services.current_form(MessageRepository(s), call.customer_id, kind)
    values = prefill(form, call.caller_number)
    return _render_form(
        request, who=who, call=call, form=form, values=values, errors={}, urgent=False
    )


async def form_submit(request: web.Request) -> web.StreamResponse:
    who = await require_user(request)
    await require_csrf(request, who)
    call = await _call_of(request, who)
    kind = _kind(request)
    posted = await request.post()
    urgent = posted.get("urgent") == "ja"
    now = request.app[CLOCK].now().replace(microsecond=0)
    raw: dict[str, str] = {}
    async with request.app[SESSIONS]() as s:
        repo = MessageRepository(s)
        form = await message_services.current_form(repo, call.customer_id, kind)
        await s.commit()
        for f in form.fields:
            value = posted.get(f.key)
            if isinstance(value, str) and value.strip():
                raw[f.key] = value
    try:
        async with request.app[SESSIONS].begin() as s:
            message_id = await message_services.take_message(
                MessageRepository(s),
                customer_id=call.customer_id,
                kind=kind,
                raw=raw,
                taken_at=now,
                call_id=call.id,
                agent_id=who.user.agent_id,
                caller_number=call.caller_number,
                urgent=urgent,
                actor=who.user.username,
            )
    except ValidationFailed as exc:
        return _render_form(
            request,
            who=who,
            call=call,
            form=form,
            values=raw,
            errors=exc.by_key(),
            urgent=urgent,
            status=422,
        )
    log.info("desk_web.message", message_id=message_id, kind=kind.value, user=who.user.username)
    context = {
        "message_id": message_id,
        "kind_label": kind_label(kind.value),
        "fragment": request.headers.get("X-Requested-With") == "fetch",
    }
    return aiohttp_jinja2.render_template("call_saved.html", request, context, status=201)


# --- messages ------------------------------------------------------------------------


async def _message_of(request: web.Request, who: Any) -> Any:
    message_id = int(request.match_info["message_id"])
    try:
        message = await MessageRepository(request.app[SESSIONS]).get_message(message_id)
    except MessageNotFound:
        raise web.HTTPNotFound(text="Finnes ikke.") from None
    await require_customer(request, who, message.customer_id)
    return message


async def _audit(
    request: web.Request, who: Any, action: AuditAction, customer_id: int, object_id: str
) -> None:
    await AuditRepository(request.app[SESSIONS]).record(
        AuditRecord(
            at=request.app[CLOCK].now(),
            action=action,
            user_id=who.user.id,
            username=who.user.username,
            customer_id=customer_id,
            object_id=object_id,
            address=client_address(request),
        )
    )


async def message_page(request: web.Request) -> web.StreamResponse:
    who = await require_user(request)
    message = await _message_of(request, who)
    sessions = request.app[SESSIONS]
    repo = MessageRepository(sessions)
    form = None
    if message.form_version is not None and message.kind in ("message", "order"):
        form = await message_services.form_version(
            repo, message.customer_id, FormKind(message.kind), message.form_version
        )
    rows = [(label, shown_value(form, k, value)) for k, label, value in field_rows(message, form)]
    await _audit(request, who, AuditAction.VIEW_MESSAGE, message.customer_id, str(message.id))
    context = {
        "user": who.user,
        "csrf": who.csrf,
        "message": message,
        "kind_label": kind_label(message.kind),
        "status_label": status_label(message.status),
        "caller": shown_number(message.caller_number),
        "rows": rows,
        "log": await repo.message_log(message.id),
        "status_labels": status_label,
    }
    return aiohttp_jinja2.render_template("message.html", request, context)


async def message_status(request: web.Request) -> web.StreamResponse:
    """Status only (no content, not audited): what the call page shows live."""
    who = await require_user(request)
    message = await _message_of(request, who)
    log_rows = await MessageRepository(request.app[SESSIONS]).message_log(message.id)
    return web.json_response(
        {
            "id": message.id,
            "status": message.status,
            "label": status_label(message.status),
            "final": message.status in FINAL_STATUSES,
            "log": [
                {
                    "at": e.at.isoformat(),
                    "status": e.status,
                    "channel": e.channel,
                    "result": e.result,
                }
                for e in log_rows[-5:]
            ],
        }
    )


async def message_recording(request: web.Request) -> web.StreamResponse:
    who = await require_user(request)
    message = await _message_of(request, who)
    found = bool(message.file) and await asyncio.to_thread(Path(message.file or "").is_file)
    if message.kind != "voice" or not found:
        raise web.HTTPNotFound(text="Ingen opptak.")
    await _audit(request, who, AuditAction.PLAY_RECORDING, message.customer_id, str(message.id))
    return web.FileResponse(
        message.file or "", headers={**SECURITY_HEADERS, "Content-Type": "audio/wav"}
    )


# --- the wallboard -------------------------------------------------------------------


async def wallboard_page(request: web.Request) -> web.StreamResponse:
    who = await require_user(request)
    require_role(who, *BOARD_ROLES)
    context = {"user": who.user, "csrf": who.csrf, "live": LIVE in request.app}
    return aiohttp_jinja2.render_template("wallboard.html", request, context)


async def wallboard_events(request: web.Request) -> web.StreamResponse:
    who = await require_user(request)
    require_role(who, *BOARD_ROLES)
    live = request.app.get(LIVE)
    if live is None:
        raise web.HTTPNotFound(text="Skrivebordet kjører ikke.")
    feed = live.subscribe_board()
    if not live.has_sla:  # the first board since the start: today's figures now
        task = asyncio.get_running_loop().create_task(_first_sla(request.app))
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)
    return await _stream(request, live, feed)


_BACKGROUND: set[asyncio.Task[None]] = set()


async def _first_sla(app: web.Application) -> None:
    try:
        app[LIVE].set_sla(await today_sla(app[SESSIONS], app[CLOCK].now()))
    except Exception as exc:
        log.warning("web.sla_failed", error=str(exc))

"""The customers' knowledge base in the agent desk: read, search, edit, review, history.

Handlers stay thin over ``db.knowledge_repo.KnowledgeRepository``; the rules (safe
Markdown, Norwegian search terms, who edits, when a page is stale, the diff) are
``domain.knowledge``'s. Every request checks on the server that the user may see the
customer (404 otherwise, as if the page did not exist) and, to write, may edit it (403);
every view of a page's text is written to the audit log. ``make_app`` registers these
routes (``add_routes``) when it has the repository (``web.app.KNOWLEDGE``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup

from televikar_pbx.auth.services import Authenticated
from televikar_pbx.db.knowledge_repo import KbPageNotFound, KnowledgeRepository, PageChanged
from televikar_pbx.db.repo_base import NotFound
from televikar_pbx.domain.audit import AuditAction, AuditRecord
from televikar_pbx.domain.knowledge import (
    STALE_AFTER,
    KbPage,
    PageInvalid,
    diff,
    is_stale,
    may_edit,
    plain_text,
    render,
    search_terms,
    snippet,
)
from televikar_pbx.web import app as desk

# Times are shown in the office's zone.
OFFICE = ZoneInfo("Europe/Oslo")
STALE_TEXT = f"Ikke gjennomgått på over {STALE_AFTER.days} dager"
PAGE = r"/customers/{customer_id:\d+}/kb"
ONE = PAGE + r"/{page_id:\d+}"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/kb/search", search)
    app.router.add_get(PAGE, page_list)
    app.router.add_get(PAGE + "/new", new_form)
    app.router.add_post(PAGE + "/new", new_submit)
    app.router.add_get(ONE, page_view)
    app.router.add_get(ONE + "/edit", edit_form)
    app.router.add_post(ONE + "/edit", edit_submit)
    app.router.add_post(ONE + "/reviewed", reviewed)
    app.router.add_get(ONE + "/history", history)


# --- helpers -------------------------------------------------------------------------


def _repo(request: web.Request) -> KnowledgeRepository:
    return request.app[desk.KNOWLEDGE]


def when(instant: dt.datetime) -> str:
    """``6.12.2026 kl. 09:05`` in Norway's time."""
    local = instant.astimezone(OFFICE)
    return f"{local.day}.{local.month}.{local.year} kl. {local:%H:%M}"


async def _customer(request: web.Request, who: Authenticated) -> tuple[int, str]:
    """The customer of the URL and its name; 404 for one the user may not see, or none."""
    customer_id = int(request.match_info["customer_id"])
    await desk.require_customer(request, who, customer_id)
    name = (await _repo(request).customer_names([customer_id])).get(customer_id)
    if name is None:
        raise web.HTTPNotFound(text="Finnes ikke.")
    return customer_id, name


async def _page(request: web.Request, customer_id: int) -> KbPage:
    """The page of the URL; 404 when it does not exist or is another customer's."""
    try:
        page = await _repo(request).get_page(int(request.match_info["page_id"]))
    except KbPageNotFound:
        raise web.HTTPNotFound(text="Finnes ikke.") from None
    if page.customer_id != customer_id:
        raise web.HTTPNotFound(text="Finnes ikke.")
    return page


def _nav(who: Authenticated) -> dict[str, object]:
    """What the menu bar (nav.html) needs."""
    return {"user": who.user, "csrf": who.csrf}


def _require_editor(who: Authenticated, customer_id: int) -> None:
    if not may_edit(who.user, customer_id):
        raise web.HTTPForbidden(text="Bare kundeansvarlige for kunden kan endre sidene.")


async def _audit(
    request: web.Request, who: Authenticated, page: KbPage, detail: str | None = None
) -> None:
    await request.app[desk.AUTH].audit(
        AuditRecord(
            request.app[desk.CLOCK].now(),
            AuditAction.VIEW_KB_PAGE,
            who.user.id,
            who.user.username,
            page.customer_id,
            str(page.id),
            desk.client_address(request),
            detail,
        )
    )


def _summary(page: KbPage, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": page.id,
        "customer_id": page.customer_id,
        "title": page.title,
        "version": page.version,
        "updated_at": when(page.updated_at),
        "updated_by": page.updated_by or "(ukjent)",
        "last_reviewed_at": when(page.last_reviewed_at),
        "last_reviewed_by": page.last_reviewed_by or "(ukjent)",
        "stale": is_stale(page.last_reviewed_at, now),
    }


async def _form_fields(request: web.Request) -> tuple[str, str]:
    form = await request.post()
    title, body = form.get("title", ""), form.get("body", "")
    if not isinstance(title, str) or not isinstance(body, str):
        raise web.HTTPBadRequest(text="Ugyldig skjema.")
    return title, body


def _render_form(
    request: web.Request,
    who: Authenticated,
    customer: tuple[int, str],
    *,
    title: str,
    body: str,
    page: KbPage | None = None,
    version: int | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.StreamResponse:
    customer_id, name = customer
    action = f"/customers/{customer_id}/kb/" + (f"{page.id}/edit" if page else "new")
    context = {
        "csrf": who.csrf,
        "customer": {"id": customer_id, "name": name},
        "page_id": page.id if page else None,
        "action": action,
        "title": title,
        "body": body,
        "version": version,
        "error": error,
    }
    return aiohttp_jinja2.render_template(
        "kb_form.html", request, context | _nav(who), status=status
    )


# --- reading -------------------------------------------------------------------------


async def page_list(request: web.Request) -> web.StreamResponse:
    who = await desk.require_user(request)
    customer_id, name = await _customer(request, who)
    now = request.app[desk.CLOCK].now()
    pages = await _repo(request).list_pages(customer_id)
    context = {
        "customer": {"id": customer_id, "name": name},
        "pages": [_summary(p, now) for p in pages],
        "can_edit": may_edit(who.user, customer_id),
        "stale_text": STALE_TEXT,
    }
    return aiohttp_jinja2.render_template("kb_list.html", request, context | _nav(who))


async def page_view(request: web.Request) -> web.StreamResponse:
    who = await desk.require_user(request)
    customer_id, name = await _customer(request, who)
    page = await _page(request, customer_id)
    await _audit(request, who, page)
    context = {
        "csrf": who.csrf,
        "customer": {"id": customer_id, "name": name},
        "page": _summary(page, request.app[desk.CLOCK].now()),
        # domain.knowledge.render escapes raw HTML and drops unsafe links.
        "body": Markup(render(page.body)),
        "can_edit": may_edit(who.user, customer_id),
        "stale_text": STALE_TEXT,
    }
    return aiohttp_jinja2.render_template("kb_page.html", request, context | _nav(who))


async def history(request: web.Request) -> web.StreamResponse:
    who = await desk.require_user(request)
    customer_id, name = await _customer(request, who)
    page = await _page(request, customer_id)
    versions = await _repo(request).versions(page.id)
    await _audit(request, who, page, "history")
    shown = []
    for i, version in enumerate(versions):  # newest first
        before = versions[i + 1] if i + 1 < len(versions) else None
        shown.append(
            {
                "version": version.version,
                "title": version.title,
                "saved_at": when(version.saved_at),
                "username": version.username or "(ukjent)",
                "diff": diff(before, version),
            }
        )
    context = {
        "customer": {"id": customer_id, "name": name},
        "page": _summary(page, request.app[desk.CLOCK].now()),
        "versions": shown,
    }
    return aiohttp_jinja2.render_template("kb_history.html", request, context | _nav(who))


async def search(request: web.Request) -> web.StreamResponse:
    """Search the pages of the user's customers (``customer``: of one of them only)."""
    who = await desk.require_user(request)
    repo = _repo(request)
    customers = await repo.customer_names(await request.app[desk.AUTH].customers_of(who.user))
    query = request.query.get("q", "").strip()
    chosen = request.query.get("customer", "")
    customer_id: int | None = None
    if chosen:
        if not chosen.isdigit() or int(chosen) not in customers:
            raise web.HTTPNotFound(text="Finnes ikke.")
        customer_id = int(chosen)
    now = request.app[desk.CLOCK].now()
    terms = search_terms(query)
    hits = (
        await repo.search(query, [customer_id] if customer_id is not None else list(customers))
        if query
        else ()
    )
    context = {
        "query": query,
        "searched": bool(query),
        "has_terms": bool(terms),
        "customer_id": customer_id,
        "customers": [{"id": i, "name": n} for i, n in customers.items()],
        "hits": [
            {
                "page": _summary(hit.page, now),
                "customer_name": hit.customer_name,
                "snippet": snippet(plain_text(hit.page.body), terms),
            }
            for hit in hits
        ],
        "stale_text": STALE_TEXT,
    }
    return aiohttp_jinja2.render_template("kb_search.html", request, context | _nav(who))


# --- writing -------------------------------------------------------------------------


async def new_form(request: web.Request) -> web.StreamResponse:
    who = await desk.require_user(request)
    customer = await _customer(request, who)
    _require_editor(who, customer[0])
    return _render_form(request, who, customer, title="", body="")


async def new_submit(request: web.Request) -> web.StreamResponse:
    who = await desk.require_user(request)
    await desk.require_csrf(request, who)
    customer = await _customer(request, who)
    _require_editor(who, customer[0])
    title, body = await _form_fields(request)
    try:
        page = await _repo(request).create_page(
            customer[0],
            title,
            body,
            user_id=who.user.id,
            username=who.user.username,
            now=request.app[desk.CLOCK].now(),
        )
    except PageInvalid as exc:
        return _render_form(
            request, who, customer, title=title, body=body, error=str(exc), status=400
        )
    except NotFound:
        raise web.HTTPNotFound(text="Finnes ikke.") from None
    raise web.HTTPSeeOther(f"/customers/{customer[0]}/kb/{page.id}")


async def edit_form(request: web.Request) -> web.StreamResponse:
    who = await desk.require_user(request)
    customer = await _customer(request, who)
    _require_editor(who, customer[0])
    page = await _page(request, customer[0])
    await _audit(request, who, page, "edit")
    return _render_form(
        request, who, customer, title=page.title, body=page.body, page=page, version=page.version
    )


async def edit_submit(request: web.Request) -> web.StreamResponse:
    who = await desk.require_user(request)
    await desk.require_csrf(request, who)
    customer = await _customer(request, who)
    _require_editor(who, customer[0])
    page = await _page(request, customer[0])
    title, body = await _form_fields(request)
    base = (await request.post()).get("version", "")
    if not isinstance(base, str) or not base.isdigit():
        raise web.HTTPBadRequest(text="Ugyldig skjema.")
    try:
        saved = await _repo(request).save_page(
            page.id,
            title,
            body,
            base_version=int(base),
            user_id=who.user.id,
            username=who.user.username,
            now=request.app[desk.CLOCK].now(),
        )
    except PageInvalid as exc:
        return _render_form(
            request, who, customer, title=title, body=body, page=page,
            version=int(base), error=str(exc), status=400,
        )  # fmt: skip
    except PageChanged:
        current = await _repo(request).get_page(page.id)
        error = (
            f"Siden ble lagret av {current.updated_by or '(ukjent)'} {when(current.updated_at)}"
            f" (versjon {current.version}) mens du skrev. Se historikken før du lagrer igjen:"
            " lagrer du nå, erstatter teksten din den nye versjonen."
        )
        return _render_form(
            request, who, customer, title=title, body=body, page=current,
            version=current.version, error=error, status=409,
        )  # fmt: skip
    raise web.HTTPSeeOther(f"/customers/{customer[0]}/kb/{saved.id}")


async def reviewed(request: web.Request) -> web.StreamResponse:
    """ "Merk som gjennomgått": the page is reviewed now, by this user."""
    who = await desk.require_user(request)
    await desk.require_csrf(request, who)
    customer = await _customer(request, who)
    _require_editor(who, customer[0])
    page = await _page(request, customer[0])
    await _repo(request).mark_reviewed(
        page.id, username=who.user.username, now=request.app[desk.CLOCK].now()
    )
    raise web.HTTPSeeOther(f"/customers/{customer[0]}/kb/{page.id}")

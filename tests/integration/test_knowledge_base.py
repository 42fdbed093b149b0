"""The knowledge base on a real migrated database (SQLite and PostgreSQL): Norwegian
search, versions, and the desk's pages through the real aiohttp app with aiohttp's test
client; time comes from a clock the test moves (never the time of day)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.auth.passwords import TEST_PARAMS, Passwords
from televikar_pbx.auth.services import DeskAuth
from televikar_pbx.db.audit_repo import AuditRepository
from televikar_pbx.db.demo import load_demo
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.knowledge_repo import KbPageNotFound, KnowledgeRepository, PageChanged
from televikar_pbx.db.repositories import DirectoryRepository, NotFound
from televikar_pbx.db.users_repo import UserRepository
from televikar_pbx.domain.audit import AuditAction
from televikar_pbx.domain.auth import Role
from televikar_pbx.domain.knowledge import PageInvalid, is_stale
from televikar_pbx.web.app import WebConfig, make_app
from tests.helpers import run_async
from tests.integration.test_cli import NORDLYS, Cli
from tests.integration.test_users_cli import cli as cli  # the fixture

Sessionmaker = async_sessionmaker[AsyncSession]
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
SECRET = b"s" * 32
PASSWORD = "correct horse battery"
STALE = "Ikke gjennomgått på over 90 dager"


class MovableClock:
    def __init__(self, now: dt.datetime) -> None:
        self.at = now

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, by: dt.timedelta) -> None:
        self.at += by


@dataclass
class World:
    sm: Sessionmaker
    kb: KnowledgeRepository
    fjord: int
    nordlys: int
    fjord_page: int  # "Bestillinger", by anne at T0
    nordlys_page: int  # "Bestilling av regnskapstime"


@pytest.fixture
async def world(sessionmaker: Sessionmaker) -> World:
    directory = DirectoryRepository(sessionmaker)
    fjord = await directory.add_customer("Fjordbakst AS", "Fjordbakst", ["4721000001"])
    nordlys = await directory.add_customer("Nordlys AS", "Nordlys", ["4721000002"])
    kari_agent = await directory.add_agent("Kari", "agent1", [fjord.id])
    hashed = Passwords(TEST_PARAMS).hash(PASSWORD)
    users = UserRepository(sessionmaker)
    await users.add_user("kari", hashed, Role.AGENT, agent_id=kari_agent.id, now=T0)
    anne = await users.add_user(
        "anne", hashed, Role.ACCOUNT_MANAGER, customer_ids=[fjord.id], now=T0
    )
    await users.add_user("sara", hashed, Role.SUPERVISOR, now=T0)
    kb = KnowledgeRepository(sessionmaker)
    fjord_page = await kb.create_page(
        fjord.id,
        "Bestillinger",
        "Vi tar imot bestillinger av brød og kaker til kl. 14 dagen før.\n\n"
        "Ring bakeren på [tel](tel:+4721000001).",
        user_id=anne.id,
        username="anne",
        now=T0,
    )
    nordlys_page = await kb.create_page(
        nordlys.id,
        "Bestilling av regnskapstime",
        "Timebestilling skjer på telefon. Hemmelig: kundens bestilling av revisjon.",
        user_id=None,
        username="admin",
        now=T0,
    )
    return World(sessionmaker, kb, fjord.id, nordlys.id, fjord_page.id, nordlys_page.id)


# --- the repository -----------------------------------------------------------------


async def test_search_finds_other_inflections_both_ways(world: World) -> None:
    kb = world.kb
    hits = await kb.search("bestilling", [world.fjord])
    assert [h.page.id for h in hits] == [world.fjord_page]  # the text says "bestillinger"
    assert hits[0].customer_name == "Fjordbakst"
    plural = await kb.search("bestillinger", [world.nordlys])
    assert [h.page.id for h in plural] == [world.nordlys_page]  # it says "bestilling"
    assert [h.page.id for h in await kb.search("Bestillingene KAKER", [world.fjord])] == [
        world.fjord_page
    ]
    # Every word must match; stop words are no words.
    assert await kb.search("bestilling sykkel", None) == ()
    assert await kb.search("og i", None) == ()


async def test_search_stays_within_the_customers_given(world: World) -> None:
    kb = world.kb
    both = await kb.search("bestilling", None)
    assert {h.page.id for h in both} == {world.fjord_page, world.nordlys_page}
    for customers in ([world.fjord], frozenset({world.fjord})):
        hits = await kb.search("bestilling", customers)
        assert world.nordlys_page not in {h.page.id for h in hits}
    assert await kb.search("hemmelig revisjon", [world.fjord]) == ()
    assert [h.page.id for h in await kb.search("hemmelig revisjon", None)] == [world.nordlys_page]
    assert await kb.search("bestilling", []) == ()


async def test_search_ranks_a_title_match_first(world: World) -> None:
    kb = world.kb
    other = await kb.create_page(
        world.fjord, "Levering", "Om bestilling: se egen side.", user_id=None, username="x", now=T0
    )
    hits = await kb.search("bestilling", [world.fjord])
    assert [h.page.id for h in hits] == [world.fjord_page, other.id]
    assert hits[0].rank > hits[1].rank


async def test_versions_record_who_when_what_and_search_follows(world: World) -> None:
    kb = world.kb
    later = T0 + 3 * DAY
    saved = await kb.save_page(
        world.fjord_page,
        "Levering",
        "Vi leverer brød til butikker.",
        base_version=1,
        user_id=None,
        username="sara",
        now=later,
    )
    assert (saved.version, saved.updated_by, saved.updated_at) == (2, "sara", later)
    assert (saved.last_reviewed_at, saved.last_reviewed_by) == (later, "sara")
    versions = await kb.versions(world.fjord_page)
    assert [(v.version, v.username, v.saved_at, v.title) for v in versions] == [
        (2, "sara", later, "Levering"),
        (1, "anne", T0, "Bestillinger"),
    ]
    assert versions[1].body.startswith("Vi tar imot bestillinger")
    # The index holds the new text only.
    assert await kb.search("bestilling", [world.fjord]) == ()
    assert [h.page.id for h in await kb.search("leveringer", [world.fjord])] == [world.fjord_page]
    # A save from an old version is refused, not silently overwritten.
    with pytest.raises(PageChanged):
        await kb.save_page(
            world.fjord_page, "X", "y", base_version=1, user_id=None, username="z", now=later
        )
    assert (await kb.get_page(world.fjord_page)).version == 2
    assert len(await kb.versions(world.fjord_page)) == 2


async def test_repository_refusals(world: World) -> None:
    kb = world.kb
    with pytest.raises(PageInvalid):
        await kb.create_page(world.fjord, " ", "x", user_id=None, username=None, now=T0)
    with pytest.raises(NotFound):
        await kb.create_page(999, "T", "x", user_id=None, username=None, now=T0)
    with pytest.raises(KbPageNotFound):
        await kb.get_page(999)
    with pytest.raises(KbPageNotFound):
        await kb.save_page(999, "T", "x", base_version=1, user_id=None, username=None, now=T0)
    reviewed = await kb.mark_reviewed(world.fjord_page, username="anne", now=T0 + DAY)
    assert (reviewed.last_reviewed_at, reviewed.version) == (T0 + DAY, 1)


async def test_search_structures_per_database(world: World) -> None:
    """SQLite: the FTS5 table holds stemmed text and loses a deleted page's row.
    PostgreSQL: the search can use the GIN index."""
    async with world.sm.begin() as s:
        dialect = s.get_bind().dialect.name
        if dialect == "sqlite":
            stored = await s.scalar(
                text("SELECT title FROM kb_search WHERE rowid = :id"), {"id": world.fjord_page}
            )
            assert stored == "bestilling"
            await s.execute(text("DELETE FROM kb_pages WHERE id = :id"), {"id": world.fjord_page})
            left = await s.scalar(text("SELECT count(*) FROM kb_search"))
            assert left == 1
        else:
            await s.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                await s.scalars(
                    text(
                        "EXPLAIN SELECT id FROM kb_pages WHERE to_tsvector('norwegian'::regconfig,"
                        " title || ' ' || body) @@ plainto_tsquery('norwegian', 'bestilling')"
                    )
                )
            )
            assert "ix_kb_pages_search" in plan, plan


# --- the desk's pages ---------------------------------------------------------------


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
async def client(world: World, clock: MovableClock) -> AsyncIterator[TestClient[Any, Any]]:
    auth = DeskAuth(world.sm, Passwords(TEST_PARAMS))
    app = make_app(auth, WebConfig(SECRET), clock, knowledge_base=world.kb)
    async with TestClient(TestServer(app)) as client:
        yield client


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def _login(client: TestClient[Any, Any], username: str) -> str:
    """Log in; the CSRF token of the session's forms."""
    page = await client.get("/login")
    form = {"username": username, "password": PASSWORD, "csrf": _csrf(await page.text())}
    done = await client.post("/login", data=form, allow_redirects=False)
    assert done.status == 303
    return _csrf(await (await client.get("/")).text())


async def test_login_required(client: TestClient[Any, Any], world: World) -> None:
    for url in (f"/customers/{world.fjord}/kb/{world.fjord_page}", "/kb/search?q=x"):
        got = await client.get(url, allow_redirects=False)
        assert (got.status, got.headers["Location"]) == (303, "/login")


async def test_agent_reads_its_customers_page_and_the_view_is_audited(
    client: TestClient[Any, Any], world: World
) -> None:
    await _login(client, "kari")
    listing = await client.get(f"/customers/{world.fjord}/kb")
    assert listing.status == 200
    assert "Bestillinger" in await listing.text()
    page = await client.get(f"/customers/{world.fjord}/kb/{world.fjord_page}")
    html = await page.text()
    assert page.status == 200
    assert '<h1 id="kb-title">Bestillinger</h1>' in html
    assert '<a href="tel:+4721000001" rel="noopener noreferrer nofollow">tel</a>' in html
    assert "Sist gjennomgått 2.3.2026 kl. 10:00 av anne" in html  # Oslo time
    assert 'id="kb-edit"' not in html and 'id="kb-review"' not in html  # reads only
    assert STALE not in html
    entries = await AuditRepository(world.sm).list_entries()
    views = [e for e in entries if e.action is AuditAction.VIEW_KB_PAGE]
    assert [(e.username, e.customer_id, e.object_id, e.at) for e in views] == [
        ("kari", world.fjord, str(world.fjord_page), T0)
    ]


async def test_another_customers_page_is_not_found(
    client: TestClient[Any, Any], world: World
) -> None:
    await _login(client, "kari")
    for url in (
        f"/customers/{world.nordlys}/kb",
        f"/customers/{world.nordlys}/kb/{world.nordlys_page}",
        f"/customers/{world.nordlys}/kb/{world.nordlys_page}/history",
        f"/customers/{world.fjord}/kb/{world.nordlys_page}",  # under a customer she sees
        f"/customers/{world.fjord}/kb/{world.nordlys_page}/history",
        f"/kb/search?q=bestilling&customer={world.nordlys}",
        f"/customers/{world.fjord}/kb/9999",
        "/customers/9999/kb",
    ):
        got = await client.get(url)
        assert got.status == 404, url
        assert "regnskapstime" not in await got.text()
    search = await client.get("/kb/search", params={"q": "bestilling"})
    html = await search.text()
    assert search.status == 200
    assert f'id="kb-hit-{world.fjord_page}"' in html
    assert "regnskapstime" not in html.lower() and "Nordlys" not in html
    assert "<mark>bestillinger</mark>" in html
    assert "Ring bakeren på tel." in html  # the snippet is text, not Markdown
    entries = await AuditRepository(world.sm).list_entries()
    assert not [e for e in entries if e.action is AuditAction.VIEW_KB_PAGE]


async def test_agent_may_not_edit(client: TestClient[Any, Any], world: World) -> None:
    token = await _login(client, "kari")
    base = f"/customers/{world.fjord}/kb"
    assert (await client.get(f"{base}/{world.fjord_page}/edit")).status == 403
    assert (await client.get(f"{base}/new")).status == 403
    form = {"csrf": token, "title": "Hack", "body": "x", "version": "1"}
    assert (await client.post(f"{base}/{world.fjord_page}/edit", data=form)).status == 403
    assert (await client.post(f"{base}/new", data=form)).status == 403
    assert (await client.post(f"{base}/{world.fjord_page}/reviewed", data=form)).status == 403
    assert (await world.kb.get_page(world.fjord_page)).version == 1
    assert len(await world.kb.list_pages(world.fjord)) == 1


async def test_account_manager_edits_and_a_new_version_appears(
    client: TestClient[Any, Any], world: World, clock: MovableClock
) -> None:
    token = await _login(client, "anne")
    base = f"/customers/{world.fjord}/kb/{world.fjord_page}"
    form_page = await client.get(f"{base}/edit")
    form_html = await form_page.text()
    assert form_page.status == 200
    assert '<label for="kb-title-input">Tittel</label>' in form_html
    assert 'for="kb-body-input"' in form_html and 'name="version" value="1"' in form_html
    clock.advance(HOUR)
    form = {
        "csrf": token,
        "version": "1",
        "title": "Bestillinger og levering",
        "body": "Bestill før kl. 13.\n\n<script>alert('x')</script>",
    }
    saved = await client.post(f"{base}/edit", data=form, allow_redirects=False)
    assert (saved.status, saved.headers["Location"]) == (303, base)
    page = await world.kb.get_page(world.fjord_page)
    assert (page.version, page.updated_by, page.updated_at) == (2, "anne", T0 + HOUR)
    view = await (await client.get(base)).text()
    assert "<script>alert" not in view and "&lt;script&gt;alert('x')&lt;/script&gt;" in view
    history = await client.get(f"{base}/history")
    html = await history.text()
    assert history.status == 200
    assert 'id="kb-version-2"' in html and 'id="kb-version-1"' in html
    assert "Lagret 2.3.2026 kl. 11:00 av" in html
    assert "<ins>+Tittel: Bestillinger og levering</ins>" in html
    assert "<del>-Tittel: Bestillinger</del>" in html
    assert "<script>alert" not in html  # the diff is escaped too
    # The same form again, from the version now replaced: refused, nothing lost.
    again = await client.post(f"{base}/edit", data=form, allow_redirects=False)
    assert again.status == 409
    assert "Siden ble lagret av anne" in await again.text()
    assert (await world.kb.get_page(world.fjord_page)).version == 2
    # A new page.
    new = {"csrf": token, "title": "Priser", "body": "Brød: 50 kr"}
    made = await client.post(f"/customers/{world.fjord}/kb/new", data=new, allow_redirects=False)
    assert made.status == 303
    assert [p.title for p in await world.kb.list_pages(world.fjord)] == [
        "Bestillinger og levering",
        "Priser",
    ]
    empty = await client.post(
        f"/customers/{world.fjord}/kb/new", data={**new, "title": " "}, allow_redirects=False
    )
    assert empty.status == 400 and "Tittel må fylles ut." in await empty.text()
    # Not the customer she manages: she does not even see it.
    other = f"/customers/{world.nordlys}/kb/{world.nordlys_page}/edit"
    assert (await client.post(other, data={**form, "version": "1"})).status == 404


async def test_posts_without_the_csrf_token_are_forbidden(
    client: TestClient[Any, Any], world: World
) -> None:
    await _login(client, "anne")
    base = f"/customers/{world.fjord}/kb"
    form = {"title": "Uten token", "body": "x", "version": "1"}
    for url in (
        f"{base}/{world.fjord_page}/edit",
        f"{base}/new",
        f"{base}/{world.fjord_page}/reviewed",
    ):
        assert (await client.post(url, data=form)).status == 403, url
        assert (await client.post(url, data={**form, "csrf": "0" * 64})).status == 403, url
    assert (await world.kb.get_page(world.fjord_page)).version == 1
    assert len(await world.kb.list_pages(world.fjord)) == 1


async def test_stale_flag_follows_the_clock_and_a_review_clears_it(
    client: TestClient[Any, Any], world: World, clock: MovableClock
) -> None:
    token = await _login(client, "anne")
    page_url = f"/customers/{world.fjord}/kb/{world.fjord_page}"
    list_url = f"/customers/{world.fjord}/kb"
    clock.advance(89 * DAY)
    await _login(client, "anne")  # the 12 h session has ended meanwhile
    assert STALE not in await (await client.get(page_url)).text()
    clock.advance(2 * DAY)  # 91 days after the review
    token = await _login(client, "anne")
    html = await (await client.get(page_url)).text()
    assert f'<p role="status" id="kb-stale"><strong>{STALE}</strong></p>' in html
    listing = await (await client.get(list_url)).text()
    assert f'<strong id="kb-stale-{world.fjord_page}">{STALE}</strong>' in listing
    done = await client.post(f"{page_url}/reviewed", data={"csrf": token}, allow_redirects=False)
    assert (done.status, done.headers["Location"]) == (303, page_url)
    html = await (await client.get(page_url)).text()
    assert STALE not in html and "Sist gjennomgått 1.6.2026 kl. 11:00 av anne" in html
    assert (await world.kb.get_page(world.fjord_page)).version == 1  # not a new version


async def test_supervisor_searches_every_customer_but_edits_none(
    client: TestClient[Any, Any], world: World
) -> None:
    await _login(client, "sara")
    html = await (await client.get("/kb/search", params={"q": "bestillinger"})).text()
    assert f'id="kb-hit-{world.fjord_page}"' in html
    assert f'id="kb-hit-{world.nordlys_page}"' in html
    only = await client.get("/kb/search", params={"q": "bestilling", "customer": world.nordlys})
    only_html = await only.text()
    assert f'id="kb-hit-{world.nordlys_page}"' in only_html
    assert f'id="kb-hit-{world.fjord_page}"' not in only_html
    assert (await client.get(f"/customers/{world.nordlys}/kb/new")).status == 403


async def test_demo_has_pages_per_customer(sessionmaker: Sessionmaker) -> None:
    assert await load_demo(sessionmaker, now=T0)
    kb = KnowledgeRepository(sessionmaker)
    names = await kb.customer_names(None)
    pages = {names[c]: [p.title for p in await kb.list_pages(c)] for c in names}
    assert pages == {
        "Fjordbakst": ["Bestillinger", "Åpningstider"],
        "Nordlys Regnskap": ["Timebestilling"],
    }
    hits = await kb.search("åpningstid", None)
    assert [h.page.title for h in hits] == ["Åpningstider"]
    assert is_stale(hits[0].page.last_reviewed_at, T0)  # the demo shows the flag


def test_cli_kb_import(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli: Cli
) -> None:
    cli.ok(*NORDLYS)
    source = tmp_path / "rutiner.md"
    source.write_text("# Rutiner\n\nBestillinger tas på telefon.\n", encoding="utf-8")
    done = cli.ok("kb", "import", "Nordlys AS", str(source), "--title", "Rutiner", "--json")
    assert done.json()["title"] == "Rutiner" and done.json()["version"] == 1

    async def check() -> None:
        engine = make_engine(db_url)
        try:
            kb = KnowledgeRepository(make_sessionmaker(engine))
            hits = await kb.search("bestilling", None)
            assert [(h.page.title, h.page.updated_by) for h in hits] == [("Rutiner", "cli")]
            # TELEVIKAR_NOW (the fixture's) is when the command's clock starts.
            reviewed = hits[0].page.last_reviewed_at
            assert T0 <= reviewed < T0 + dt.timedelta(minutes=1)
        finally:
            await engine.dispose()

    run_async(check)
    cli.fails("kb", "import", "Nordlys AS", str(source), "--title", " ", match="Tittel")
    cli.fails("kb", "import", "Nobody", str(source), "--title", "T", match="Nobody")
    cli.fails(
        "kb", "import", "Nordlys AS", str(tmp_path / "none.md"), "--title", "T", match="none.md"
    )

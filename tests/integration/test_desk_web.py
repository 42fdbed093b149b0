"""The agent desk's log-in, session and CSRF rules through the real aiohttp app
(web.app) on a real migrated database (SQLite and PostgreSQL), with aiohttp's test
client; time comes from a clock the test moves (never the time of day)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.auth.passwords import TEST_PARAMS, Passwords
from televikar_pbx.auth.services import AuthPolicy, DeskAuth
from televikar_pbx.db.audit_repo import AuditRepository
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.db.users_repo import UserRepository
from televikar_pbx.domain.audit import AuditAction
from televikar_pbx.domain.auth import Role
from televikar_pbx.web.app import (
    WebConfig,
    make_app,
    require_customer,
    require_role,
    require_user,
)

Sessionmaker = async_sessionmaker[AsyncSession]
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
SECRET = b"s" * 32
PASSWORD = "correct horse battery"
COOKIE = "televikar_session"


class MovableClock:
    def __init__(self, now: dt.datetime) -> None:
        self.at = now

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, by: dt.timedelta) -> None:
        self.at += by


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


async def _client(
    sm: Sessionmaker, clock: MovableClock, *, secure: bool = False
) -> TestClient[Any, Any]:
    auth = DeskAuth(sm, Passwords(TEST_PARAMS), AuthPolicy())
    client: TestClient[Any, Any] = TestClient(
        TestServer(make_app(auth, WebConfig(SECRET, secure_cookies=secure), clock))
    )
    await client.start_server()
    return client


@pytest.fixture
async def client(
    sessionmaker: Sessionmaker, clock: MovableClock
) -> AsyncIterator[TestClient[Any, Any]]:
    agent = await DirectoryRepository(sessionmaker).add_agent("Kari", "agent1")
    passwords = Passwords(TEST_PARAMS)
    await UserRepository(sessionmaker).add_user(
        "Kari", passwords.hash(PASSWORD), Role.AGENT, agent_id=agent.id, now=T0
    )
    client = await _client(sessionmaker, clock)
    try:
        yield client
    finally:
        await client.close()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def _login(
    client: TestClient[Any, Any], username: str = "kari", password: str = PASSWORD
) -> ClientResponse:
    page = await client.get("/login")
    form = {"username": username, "password": password, "csrf": _csrf(await page.text())}
    return await client.post("/login", data=form, allow_redirects=False)


async def _actions(sm: Sessionmaker) -> list[tuple[AuditAction, str | None]]:
    return [(e.action, e.username) for e in await AuditRepository(sm).list_entries()]


async def test_login_page_is_norwegian_with_labels(client: TestClient[Any, Any]) -> None:
    page = await client.get("/login")
    html = await page.text()
    assert page.status == 200 and '<html lang="nb">' in html
    assert '<label for="username">Brukernavn</label>' in html and 'id="username"' in html
    assert '<label for="password">Passord</label>' in html and 'id="password"' in html
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


async def test_protected_page_redirects_to_login(client: TestClient[Any, Any]) -> None:
    response = await client.get("/", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/login")


async def test_login_ok_shows_the_user_and_sets_a_safe_cookie(
    client: TestClient[Any, Any], sessionmaker: Sessionmaker
) -> None:
    response = await _login(client, "KARI")  # any case
    assert (response.status, response.headers["Location"]) == (303, "/")
    cookie = next(c for c in response.headers.getall("Set-Cookie") if c.startswith(COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # no TLS in this test: web_secure_cookies off
    page = await client.get("/")
    assert page.status == 200 and "Innlogget som Kari" in await page.text()
    assert page.headers["Cache-Control"] == "no-store"
    assert await _actions(sessionmaker) == [(AuditAction.LOGIN, "Kari")]
    user = await UserRepository(sessionmaker).find_user("kari")
    assert user.last_login_at == T0


async def test_secure_cookie_when_tls_is_on(
    sessionmaker: Sessionmaker, clock: MovableClock
) -> None:
    await UserRepository(sessionmaker).add_user(
        "ola", Passwords(TEST_PARAMS).hash(PASSWORD), Role.ADMIN, now=T0
    )
    client = await _client(sessionmaker, clock, secure=True)
    try:
        page = await client.get("/login")
        pre = page.headers["Set-Cookie"]
        assert pre.startswith("__Host-televikar-login=") and "Secure" in pre
        # The test client does not send Secure cookies over http: hand the nonce over.
        nonce = pre.split(";")[0].split("=", 1)[1]
        form = {"username": "ola", "password": PASSWORD, "csrf": _csrf(await page.text())}
        response = await client.post(
            "/login",
            data=form,
            allow_redirects=False,
            headers={"Cookie": f"__Host-televikar-login={nonce}"},
        )
        assert response.status == 303, await response.text()
        cookie = next(
            c for c in response.headers.getall("Set-Cookie") if c.startswith("__Host-televikar=")
        )
        for flag in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/"):
            assert flag in cookie
    finally:
        await client.close()


async def test_wrong_password_and_unknown_user_are_refused_alike(
    client: TestClient[Any, Any], sessionmaker: Sessionmaker
) -> None:
    wrong = await _login(client, "kari", "wrong password!")
    unknown = await _login(client, "per", PASSWORD)
    for response in (wrong, unknown):
        assert response.status == 401
        assert "Feil brukernavn eller passord." in await response.text()
        assert not any(c.startswith(COOKIE) for c in response.headers.getall("Set-Cookie", []))
    assert (await client.get("/", allow_redirects=False)).status == 303
    assert await _actions(sessionmaker) == [
        (AuditAction.LOGIN_FAILED, "kari"),
        (AuditAction.LOGIN_FAILED, "per"),
    ]


async def test_typed_username_is_escaped(client: TestClient[Any, Any]) -> None:
    response = await _login(client, '"><script>alert(1)</script>', "x")
    html = await response.text()
    assert response.status == 401
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


async def test_throttling_locks_and_releases_after_the_window(
    client: TestClient[Any, Any], clock: MovableClock, sessionmaker: Sessionmaker
) -> None:
    for _ in range(5):
        assert (await _login(client, "kari", "wrong password!")).status == 401
        clock.advance(MIN)
    # Locked: even the right password is refused, without being checked.
    locked = await _login(client, "kari", PASSWORD)
    assert locked.status == 429
    assert "For mange mislykkede forsøk" in await locked.text()
    # The 5th failure was at T0+4 min, now is T0+5: locked until T0+19.
    assert int(locked.headers["Retry-After"]) == 14 * 60
    assert (await client.get("/", allow_redirects=False)).status == 303
    # Another username from the same address is not locked (its limit is 20).
    assert (await _login(client, "per", "wrong password!")).status == 401
    clock.advance(14 * MIN - dt.timedelta(seconds=1))
    assert (await _login(client, "kari", PASSWORD)).status == 429
    clock.advance(dt.timedelta(seconds=1))
    ok = await _login(client, "kari", PASSWORD)
    assert ok.status == 303
    actions = [a for a, _ in await _actions(sessionmaker)]
    assert actions.count(AuditAction.LOGIN_LOCKED) == 2 and actions[-1] is AuditAction.LOGIN


async def test_throttling_per_address(client: TestClient[Any, Any], clock: MovableClock) -> None:
    for i in range(20):
        assert (await _login(client, f"user{i}", "wrong password!")).status == 401
    assert (await _login(client, "kari", PASSWORD)).status == 429
    clock.advance(15 * MIN)
    assert (await _login(client, "kari", PASSWORD)).status == 303


async def test_login_without_or_with_a_wrong_csrf_token_is_forbidden(
    client: TestClient[Any, Any],
) -> None:
    await client.get("/login")  # the pre-login cookie is set
    form = {"username": "kari", "password": PASSWORD}
    assert (await client.post("/login", data=form)).status == 403
    bad = await client.post("/login", data={**form, "csrf": "0" * 64})
    assert bad.status == 403
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_logout_needs_the_csrf_token_then_ends_the_session(
    client: TestClient[Any, Any], sessionmaker: Sessionmaker
) -> None:
    assert (await _login(client)).status == 303
    page = await client.get("/")
    token = _csrf(await page.text())
    assert (await client.post("/logout", allow_redirects=False)).status == 403
    wrong = await client.post("/logout", data={"csrf": "0" * 64}, allow_redirects=False)
    assert wrong.status == 403
    assert (await client.get("/")).status == 200  # still logged in
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    out = await client.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert (out.status, out.headers["Location"]) == (303, "/login")
    assert (await client.get("/", allow_redirects=False)).status == 303
    # The old cookie is worthless: its session was deleted on the server.
    replay = await client.get("/", headers={"Cookie": f"{COOKIE}={cookie}"}, allow_redirects=False)
    assert replay.status == 303
    assert [a for a, _ in await _actions(sessionmaker)] == [AuditAction.LOGIN, AuditAction.LOGOUT]


async def test_session_idle_expiry(client: TestClient[Any, Any], clock: MovableClock) -> None:
    assert (await _login(client)).status == 303
    clock.advance(dt.timedelta(hours=8) - MIN)
    assert (await client.get("/")).status == 200  # refreshes the idle time
    clock.advance(dt.timedelta(hours=8) - MIN)
    assert (await client.get("/")).status == 200
    clock.advance(dt.timedelta(hours=8))
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_session_absolute_expiry(client: TestClient[Any, Any], clock: MovableClock) -> None:
    assert (await _login(client)).status == 303
    for _ in range(11):
        clock.advance(dt.timedelta(hours=1))
        assert (await client.get("/")).status == 200
    clock.advance(dt.timedelta(minutes=59))
    assert (await client.get("/")).status == 200
    clock.advance(MIN)  # 12 h after the log-in, active all along
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_disabled_user_cannot_log_in_and_loses_its_session(
    client: TestClient[Any, Any], sessionmaker: Sessionmaker
) -> None:
    assert (await _login(client)).status == 303
    users = UserRepository(sessionmaker)
    kari = await users.find_user("kari")
    await users.set_disabled(kari.id, True)
    assert (await client.get("/", allow_redirects=False)).status == 303
    assert (await _login(client)).status == 401


async def test_login_rehashes_with_new_parameters(
    client: TestClient[Any, Any], sessionmaker: Sessionmaker
) -> None:
    users = UserRepository(sessionmaker)
    kari = await users.find_user("kari")
    weaker = Passwords(type(TEST_PARAMS)(time_cost=1, memory_kib=512, parallelism=1))
    await users.set_password_hash(kari.id, weaker.hash(PASSWORD), T0)
    assert (await _login(client)).status == 303
    found = await users.credentials("kari")
    assert found is not None and "$m=1024,t=1,p=1$" in found[1]


async def test_a_new_login_replaces_the_browsers_session_and_cleans_up(
    sessionmaker: Sessionmaker,
) -> None:
    # A browser with a live session is sent from /login to /, so this is what a
    # planted or forgotten cookie meets: DeskAuth.login(replacing=...) directly.
    passwords = Passwords(TEST_PARAMS)
    users = UserRepository(sessionmaker)
    kari = await users.add_user("kari", passwords.hash(PASSWORD), Role.AGENT, now=T0)
    auth = DeskAuth(sessionmaker, passwords)
    await users.add_failures(["user:someone"], T0)  # old enough to forget by T0+9h
    await users.create_session("c" * 64, kari.id, b"x" * 32, T0)  # idle since T0
    now = T0 + dt.timedelta(hours=9)
    first = await auth.login("kari", PASSWORD, "::1", now)
    assert first.token is not None and await auth.authenticate(first.token, now)
    second = await auth.login("kari", PASSWORD, "::1", now, replacing=first.token)
    assert second.token is not None and second.token != first.token
    assert await auth.authenticate(first.token, now) is None  # ended by the second
    assert await auth.authenticate(second.token, now) is not None
    assert await users.session_by_token("c" * 64) is None  # idle-expired: deleted
    left = await users.failures_since(["user:someone"], T0 - dt.timedelta(days=1))
    assert left == {"user:someone": []}


async def test_role_and_customer_guards(sessionmaker: Sessionmaker, clock: MovableClock) -> None:
    directory = DirectoryRepository(sessionmaker)
    fjord = await directory.add_customer("Fjordbakst AS", "Fjordbakst", ["4721000001"])
    nordlys = await directory.add_customer("Nordlys AS", "Nordlys", ["4721000002"])
    agent = await directory.add_agent("Kari", "agent1", [fjord.id])
    hashed = Passwords(TEST_PARAMS).hash(PASSWORD)
    users = UserRepository(sessionmaker)
    await users.add_user("kari", hashed, Role.AGENT, agent_id=agent.id, now=T0)
    await users.add_user("sara", hashed, Role.SUPERVISOR, now=T0)

    async def customer_page(request: web.Request) -> web.Response:
        who = await require_user(request)
        await require_customer(request, who, int(request.match_info["id"]))
        return web.Response(text="ok")

    async def wallboard(request: web.Request) -> web.Response:
        require_role(await require_user(request), Role.SUPERVISOR, Role.ADMIN)
        return web.Response(text="ok")

    auth = DeskAuth(sessionmaker, Passwords(TEST_PARAMS))
    for username, allowed, wall in (
        ("kari", {fjord.id}, 403),
        ("sara", {fjord.id, nordlys.id}, 200),
    ):
        app = make_app(auth, WebConfig(SECRET), clock)
        app.router.add_get("/customers/{id}", customer_page)
        app.router.add_get("/wallboard", wallboard)
        async with TestClient(TestServer(app)) as client:
            assert (await _login(client, username)).status == 303
            # (Whether customer 999 exists is the page's own look-up: 404 there too.)
            for customer in (fjord.id, nordlys.id):
                got = await client.get(f"/customers/{customer}")
                assert got.status == (200 if customer in allowed else 404), (username, customer)
            assert (await client.get("/wallboard")).status == wall

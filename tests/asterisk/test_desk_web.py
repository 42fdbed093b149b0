"""``serve`` serves the agents' desk in the browser (docs/desk-web.md): the log-in page
answers on TELEVIKAR_WEB_PORT while the service routes calls, and a user made with the
command line logs in. The pages themselves are tested in tests/integration/test_desk_web.py.
"""

from __future__ import annotations

import datetime as dt
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import date

from televikar_pbx.auth.passwords import Passwords
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.db.users_repo import UserRepository
from televikar_pbx.domain.auth import Role
from televikar_pbx.domain.calendar import Agreement
from tests.asterisk.conftest import StartService, free_port, poll
from tests.helpers import run_async

PASSWORD = "riktig hest batteri"


async def seed(directory: DirectoryRepository) -> dict[str, int]:
    c = await directory.add_customer(
        "Fjordbakst AS", "Fjordbakst", ["4721000001"], agreement=Agreement(date(2026, 1, 1))
    )
    a = await directory.add_agent("Kari", "agent1", [c.id], logged_in=True)
    return {"c": c.id, "a": a.id}


def add_user(db_url: str, agent_id: int) -> None:
    async def add() -> None:
        engine = make_engine(db_url)
        try:
            await UserRepository(make_sessionmaker(engine)).add_user(
                "kari", Passwords().hash(PASSWORD), Role.AGENT, agent_id=agent_id,
                now=dt.datetime.now(dt.UTC),
            )  # fmt: skip
        finally:
            await engine.dispose()

    run_async(add)


def get(opener: urllib.request.OpenerDirector, url: str) -> tuple[int, str, str]:
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, response.geturl(), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, url, exc.read().decode()


def test_serve_serves_the_desk_and_a_user_logs_in(start_service: StartService) -> None:
    port = free_port()
    service = start_service(seed, web_port=str(port))
    base = f"http://127.0.0.1:{port}"
    add_user(service.db_url, service.ids["a"])
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def login_page() -> str | None:
        try:
            status, _, html = get(browser, f"{base}/login")
        except OSError:  # not listening yet
            return None
        return html if status == 200 else None

    html = poll(login_page, 30, "the desk's log-in page")
    assert 'name="username"' in html and 'name="password"' in html
    status, landed, _ = get(browser, f"{base}/")  # not logged in: to the log-in page
    assert status == 200 and urllib.parse.urlsplit(landed).path == "/login"

    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    form = {"username": "kari", "password": PASSWORD, "csrf": found.group(1)}
    request = urllib.request.Request(
        f"{base}/login", data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    with browser.open(request, timeout=5) as response:
        assert response.status == 200 and urllib.parse.urlsplit(response.geturl()).path == "/"
        assert "Innlogget som kari" in response.read().decode()
    assert '"web.listening"' in service.log()

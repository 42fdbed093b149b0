"""The agent desk in a real browser on the real lab (issue 14, "Done when").

Debian's Chromium, driven by Playwright's sync API (``executable_path``; no browser is
ever downloaded). Kari logs in; a sipp carrier calls Fjordbakst; her page shows the
customer, the greeting and the caller's number while her sipp phone still rings (it
answers after 2 s); the supervisor's wallboard shows the waiting caller; the phone
answers; she submits the message form with a required field empty and sees the error
by that field; she fixes it; the customer's inbox on a local SMTP server gets it; she
cannot open Nordlys's pages by URL. A screenshot of each step is kept in the test's
tmp_path (pytest keeps the last runs' directories), and the path is printed on failure.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright._repo_version import version as playwright_version
from playwright.sync_api import Browser, Page, expect, sync_playwright

from televikar_pbx.auth.passwords import Passwords
from televikar_pbx.db.calls_repo import CallRepository
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.knowledge_repo import KnowledgeRepository
from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.db.users_repo import UserRepository
from televikar_pbx.domain.auth import Role
from televikar_pbx.domain.message_delivery import Channel
from televikar_pbx.messages.services import add_recipient
from tests.asterisk import sipp
from tests.asterisk.conftest import Service, StartService, poll
from tests.asterisk.test_desk import AGREEMENT, DIDS
from tests.helpers import run_async
from tests.mailserver import Mailbox, Servers

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # we are root
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "riktig hest batteri"
INBOX = "post@fjordbakst.example"
CALLER = "4791234567"
SUBJECT = "Vil bestille tre brødkurver til fredag"
RING_MS = 2000  # Kari's phone answers after this
KB_TITLE = "Bestillinger og levering"


async def seed(directory: DirectoryRepository) -> dict[str, int]:
    f = await directory.add_customer("Fjordbakst AS", "Fjordbakst", [DIDS[0]], agreement=AGREEMENT)
    n = await directory.add_customer(
        "Nordlys Regnskap AS", "Nordlys", [DIDS[1]], agreement=AGREEMENT
    )
    kari = await directory.add_agent("Kari", "agent1", [f.id], logged_in=True)
    await add_recipient(MessageRepository(directory.source), f.id, Channel.EMAIL, INBOX)
    pages = KnowledgeRepository(directory.source)
    now = dt.datetime.now(dt.UTC)
    fjord_page = await pages.create_page(
        f.id, KB_TITLE, "Bestillinger til fredag må inn før kl. 12 torsdag.",
        user_id=None, username="cli", now=now,
    )  # fmt: skip
    nordlys_page = await pages.create_page(
        n.id, "Rutiner", "Regnskapsfrister.", user_id=None, username="cli", now=now
    )
    calls = CallRepository(directory.source)
    # An earlier call of Nordlys's, to try its pages by URL.
    nordlys_call = await calls.create_call(
        "earlier-nordlys", None, n.id, DIDS[1], CALLER, None, dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    )
    return {
        "f": f.id,
        "n": n.id,
        "kari": kari.id,
        "nordlys_call": nordlys_call,
        "fjord_page": fjord_page.id,
        "nordlys_page": nordlys_page.id,
    }


def add_users(service: Service) -> None:
    async def add() -> None:
        engine = make_engine(service.db_url)
        try:
            users, hashed = UserRepository(make_sessionmaker(engine)), Passwords().hash(PASSWORD)
            now = dt.datetime.now(dt.UTC)
            await users.add_user("kari", hashed, Role.AGENT, agent_id=service.ids["kari"], now=now)
            await users.add_user("sjef", hashed, Role.SUPERVISOR, now=now)
        finally:
            await engine.dispose()

    run_async(add)


@pytest.fixture
def browser() -> Iterator[Browser]:
    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=True)
    print(f"Playwright {playwright_version}, {version.stdout.strip()}")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def mail() -> Iterator[Servers]:
    servers = Servers()
    try:
        yield servers
    finally:
        servers.stop_all()


class Steps:
    """A screenshot of every page after each step, numbered, in ``folder``."""

    def __init__(self, folder: Path, pages: dict[str, Page]) -> None:
        self.folder, self.pages, self.count = folder, pages, 0
        folder.mkdir(parents=True, exist_ok=True)

    def shot(self, step: str) -> None:
        self.count += 1
        for name, page in self.pages.items():
            page.screenshot(path=str(self.folder / f"{self.count:02d}-{step}-{name}.png"))


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Brukernavn").fill(username)
    page.get_by_label("Passord").fill(PASSWORD)
    page.get_by_role("button", name="Logg inn").click()
    page.wait_for_url(f"{base}/")


def test_kari_answers_fjordbakst_from_her_desk_page(
    start_service: StartService, mail: Servers, browser: Browser, tmp_path: Path
) -> None:
    inbox = Mailbox()
    port = mail.start(inbox)
    service = start_service(
        seed,
        smtp_host="127.0.0.1",
        smtp_port=str(port),
        smtp_security="none",
        smtp_from="Televikar <meldinger@televikar.example>",
    )
    add_users(service)
    base = f"http://127.0.0.1:{service.env['TELEVIKAR_WEB_PORT']}"
    poll(lambda: '"web.listening"' in service.log(), 20, "the desk to listen")

    kari = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    sjef = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    steps = Steps(tmp_path / "screenshots", {"kari": kari, "sjef": sjef})
    try:
        run(service, base, kari, sjef, steps, inbox, tmp_path)
    except BaseException:
        steps.shot("failed")
        print(f"screenshots of each step: {steps.folder}")
        raise


def run(
    service: Service,
    base: str,
    kari: Page,
    sjef: Page,
    steps: Steps,
    inbox: Mailbox,
    tmp_path: Path,
) -> None:
    log_in(kari, base, "kari")
    expect(kari.locator("#agent-state")).to_have_text("Ledig", timeout=10_000)
    log_in(sjef, base, "sjef")
    sjef.goto(f"{base}/wallboard")
    fjordbakst_row = sjef.locator("#board-customers tr", has_text="Fjordbakst")
    expect(fjordbakst_row.locator("td").first).to_have_text("0", timeout=10_000)
    steps.shot("logged-in")

    with (
        sipp.agent_phone(1, workdir=tmp_path, answer_ms=RING_MS) as phone,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        carrier = pool.submit(
            sipp.carrier_call,
            DIDS[0],
            workdir=tmp_path,
            caller_number=CALLER,
            talk_ms=45_000,
        )
        # The screen pop, while the phone rings: "Ringer nå" is the offered state only.
        expect(kari.locator("#pop-state")).to_have_text("Ringer nå", timeout=RING_MS + 3000)
        expect(kari.locator("#pop-customer")).to_have_text("Fjordbakst")
        expect(kari.locator("#pop-greeting")).to_have_text("Fjordbakst, dette er Kari")
        expect(kari.locator("#pop-caller")).to_have_text("+47 91 23 45 67")
        expect(kari.locator("#pop-pages")).to_contain_text(KB_TITLE)  # the knowledge base
        expect(fjordbakst_row.locator("td").first).to_have_text("1", timeout=RING_MS)
        steps.shot("ringing")
        phone.wait_for_invites(1)

        # Answered: the call and the message form, the caller's number prefilled.
        expect(kari.locator("#pop-state")).to_have_text("I samtale", timeout=RING_MS + 5000)
        form = kari.locator("#call-form")
        expect(form).to_be_visible()
        expect(kari.get_by_label(re.compile("^Telefon"))).to_have_value("+" + CALLER)  # E.164
        expect(fjordbakst_row.locator("td").first).to_have_text("0")
        steps.shot("answered")

        kari.locator("#f-subject").fill(SUBJECT)
        kari.locator("#f-call_back").select_option("ja")
        kari.locator("#form-submit").click()
        error = kari.locator("#e-name")
        expect(error).to_be_visible()
        expect(kari.locator("#f-name")).to_have_attribute("aria-invalid", "true")
        expect(kari.locator("#f-name")).to_be_focused()
        expect(kari.locator("#f-subject")).to_have_value(SUBJECT)  # nothing typed is lost
        steps.shot("required-field-empty")

        kari.locator("#f-name").fill("Per Hansen")
        kari.locator("#form-submit").click()
        expect(kari.locator("#saved")).to_be_visible()
        expect(kari.locator("#delivery-status")).to_have_text("Sendt", timeout=60_000)
        steps.shot("saved-and-sent")

        poll(lambda: inbox.to(INBOX), 60, "the message's e-mail")
        [received] = inbox.to(INBOX)
        body = received.message.get_body(preferencelist=("plain",))
        assert body is not None and SUBJECT in body.get_content()
        assert "Per Hansen" in body.get_content()

        # The customer's knowledge base opens from the call; another customer's pages
        # are not there for her, whatever the URL.
        kb = kari.context.new_page()
        kb.goto(f"{base}/customers/{service.ids['f']}/kb/{service.ids['fjord_page']}")
        expect(kb.locator("#kb-body")).to_contain_text("før kl. 12 torsdag")
        steps.pages["kb"] = kb
        steps.shot("knowledge-base")
        kb.goto(f"{base}/kb/search?q=bestilling")  # finds "Bestillinger" (Norwegian stems)
        expect(kb.locator(f"#kb-hit-{service.ids['fjord_page']}")).to_contain_text(KB_TITLE)
        kb.goto(f"{base}/kb/search?q=regnskapsfrister")  # only in Nordlys's page
        expect(kb.locator("#kb-no-results")).to_be_visible()
        steps.shot("search")
        for url in (
            f"/customers/{service.ids['n']}/kb",
            f"/customers/{service.ids['n']}/kb/{service.ids['nordlys_page']}",
            f"/customers/{service.ids['f']}/kb/{service.ids['nordlys_page']}",
            f"/calls/{service.ids['nordlys_call']}/context",
            f"/calls/{service.ids['nordlys_call']}/form/message",
        ):
            response = kari.request.get(f"{base}{url}")
            assert response.status == 404, url
        result: Any = carrier.result(timeout=120)
        assert result.ok, result.describe()
    expect(kari.locator("#agent-state")).to_have_text(re.compile("Etterarbeid|Ledig"))
    steps.shot("after-the-call")

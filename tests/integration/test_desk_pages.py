"""The agent desk's pages (web/desk.py) on a real migrated database (SQLite and
PostgreSQL) through aiohttp's test client: the call's forms, messages, confidentiality,
the audit log, agent state buttons, the live feeds and the wallboard. The desk behind
the live feed is the real one (domain.acd) without Asterisk; the browser test on the lab
(tests/asterisk/test_desk_browser.py) drives the whole path."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import async_playwright, expect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from televikar_pbx.auth.passwords import TEST_PARAMS, Passwords
from televikar_pbx.auth.services import AuthPolicy, DeskAuth
from televikar_pbx.calls.features import AgentActions
from televikar_pbx.db import models
from televikar_pbx.db.audit_repo import AuditRepository
from televikar_pbx.db.calls_repo import CallRepository
from televikar_pbx.db.messages_repo import MessageRepository
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.db.users_repo import UserRepository
from televikar_pbx.domain import acd
from televikar_pbx.domain.audit import AuditAction
from televikar_pbx.domain.auth import Role
from televikar_pbx.domain.calendar import Agreement
from televikar_pbx.domain.directory import Directory
from televikar_pbx.messages import services as message_services
from televikar_pbx.web import desk
from televikar_pbx.web.app import WebConfig, make_app
from televikar_pbx.web.live import LiveDesk

Sessionmaker = async_sessionmaker[AsyncSession]
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
SECRET = b"s" * 32
PASSWORD = "correct horse battery"
CALLER = "+4791234567"


class MovableClock:
    def __init__(self, now: dt.datetime) -> None:
        self.at = now

    def now(self) -> dt.datetime:
        return self.at


@dataclass
class Call:
    record_id: int
    caller_number: str | None


@dataclass
class Source:
    """What the hub and the buttons read of CallService, around the real desk."""

    desk: acd.Desk
    directory: Directory
    clock: MovableClock
    calls: dict[str, Call] = field(default_factory=dict)

    def view(self) -> acd.DeskView:
        return self.desk.view()

    async def agent_event(self, event: acd.AgentEvent, at: dt.datetime) -> list[acd.Command]:
        commands = self.desk.handle(event, at)
        self.changed()
        return commands

    def changed(self) -> None:
        assert self.hub is not None
        self.hub.changed()

    hub: LiveDesk | None = None


@dataclass
class World:
    client: TestClient[Any, Any]
    source: Source
    fjordbakst: int
    nordlys: int
    kari_agent: int
    fjord_call: int
    nordlys_call: int


async def _login(client: TestClient[Any, Any], username: str) -> str:
    page = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert token
    form = {"username": username, "password": PASSWORD, "csrf": token.group(1)}
    response = await client.post("/login", data=form, allow_redirects=False)
    assert response.status == 303
    home = await client.get("/")
    found = re.search(r'data-csrf="([^"]+)"|name="csrf" value="([^"]+)"', await home.text())
    assert found
    return found.group(1) or found.group(2)


@pytest.fixture
async def world(sessionmaker: Sessionmaker) -> AsyncIterator[World]:
    clock = MovableClock(T0)
    repo = DirectoryRepository(sessionmaker)
    always = Agreement(dt.date(2026, 1, 1))
    fjordbakst = await repo.add_customer(
        "Fjordbakst AS", "Fjordbakst", ["4721000001"], agreement=always
    )
    nordlys = await repo.add_customer(
        "Nordlys AS", "Nordlys Regnskap", ["4721000002"], agreement=always
    )
    kari = await repo.add_agent("Kari", "agent1", [fjordbakst.id], logged_in=True)
    nora = await repo.add_agent("Nora", "agent3", [nordlys.id], logged_in=True)
    users, hashed = UserRepository(sessionmaker), Passwords(TEST_PARAMS).hash(PASSWORD)
    await users.add_user("kari", hashed, Role.AGENT, agent_id=kari.id, now=T0)
    await users.add_user("nora", hashed, Role.AGENT, agent_id=nora.id, now=T0)
    await users.add_user("sjef", hashed, Role.SUPERVISOR, now=T0)
    async with sessionmaker.begin() as s:
        await message_services.add_recipient(
            MessageRepository(s),
            fjordbakst.id,
            message_services.Channel.EMAIL,
            "post@fjordbakst.no",
        )
    calls = CallRepository(sessionmaker)
    fjord_call = await calls.create_call(
        "ch-f", None, fjordbakst.id, "4721000001", CALLER, None, T0
    )
    nordlys_call = await calls.create_call("ch-n", None, nordlys.id, "4721000002", CALLER, None, T0)
    directory = await repo.load()
    source = Source(acd.Desk(directory, T0, ring_timeout_s=15), directory, clock)
    source.hub = hub = LiveDesk(source)
    auth = DeskAuth(sessionmaker, Passwords(TEST_PARAMS), AuthPolicy())
    app = make_app(auth, WebConfig(SECRET), clock)
    desk.add_routes(app, sessionmaker, hub, AgentActions(cast(Any, source), repo))
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield World(client, source, fjordbakst.id, nordlys.id, kari.id, fjord_call, nordlys_call)
    finally:
        await client.close()


FETCH = {"X-Requested-With": "fetch"}


async def _count(sm: Sessionmaker, model: Any) -> int:
    async with sm() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_the_form_is_prefilled_and_an_empty_required_field_is_shown_by_its_label(
    world: World, sessionmaker: Sessionmaker
) -> None:
    csrf = await _login(world.client, "kari")
    url = f"/calls/{world.fjord_call}/form/message"
    page = await world.client.get(url, headers=FETCH)
    html = await page.text()
    assert page.status == 200
    assert f'value="{CALLER}"' in html  # the caller's number, prefilled
    assert "<label" in html and "<html" not in html  # a fragment for the desk page
    fields = dict(re.findall(r'<label for="f-(\w+)">([^<*]+)', html))
    required = re.findall(r'id="f-(\w+)" name="\w+"[^>]*aria-required="true"', html)
    assert required, html
    empty = {key: "" for key in fields} | {"csrf": csrf}
    refused = await world.client.post(url, data=empty, headers=FETCH)
    text = await refused.text()
    assert refused.status == 422
    for key in required:
        if key == "phone":
            continue
        assert f'id="e-{key}"' in text and f'aria-describedby="e-{key}"' in text
    assert await _count(sessionmaker, models.Message) == 0
    assert await _count(sessionmaker, models.OutboxItem) == 0


async def test_a_message_taken_in_the_call_is_saved_and_queued_for_delivery(
    world: World, sessionmaker: Sessionmaker
) -> None:
    csrf = await _login(world.client, "kari")
    url = f"/calls/{world.fjord_call}/form/message"
    data = {
        "name": "Per Hansen",
        "phone": CALLER,
        "subject": "Ring tilbake om bestillingen",
        "call_back": "ja",
        "csrf": csrf,
    }
    saved = await world.client.post(url, data=data, headers=FETCH)
    text = await saved.text()
    assert saved.status == 201, text
    message_id = int(re.search(r'data-message="(\d+)"', text).group(1))  # type: ignore[union-attr]
    message = await MessageRepository(sessionmaker).get_message(message_id)
    assert (message.call_id, message.agent_id, message.kind) == (
        world.fjord_call,
        world.kari_agent,
        "message",
    )
    assert message.caller_number == CALLER
    assert await _count(sessionmaker, models.OutboxItem) == 1
    status = await (await world.client.get(f"/messages/{message_id}/status")).json()
    assert (status["status"], status["label"], status["final"]) == ("new", "Ny", False)


async def test_a_form_without_its_csrf_token_is_refused(
    world: World, sessionmaker: Sessionmaker
) -> None:
    await _login(world.client, "kari")
    response = await world.client.post(
        f"/calls/{world.fjord_call}/form/message", data={"subject": "x"}, headers=FETCH
    )
    assert response.status == 403
    assert await _count(sessionmaker, models.Message) == 0


async def test_another_customers_call_and_message_are_not_found(
    world: World, sessionmaker: Sessionmaker
) -> None:
    voice = await MessageRepository(sessionmaker).add_message(
        world.nordlys_call, world.nordlys, CALLER, "/nonexistent.wav", 3.0, taken_at=T0
    )
    await _login(world.client, "kari")
    for url in (
        f"/calls/{world.nordlys_call}/context",
        f"/calls/{world.nordlys_call}/form/message",
        f"/messages/{voice}",
        f"/messages/{voice}/status",
        f"/messages/{voice}/recording",
        "/calls/999999/context",
    ):
        response = await world.client.get(url)
        assert response.status == 404, url
    assert await AuditRepository(sessionmaker).list_entries(customer_id=world.nordlys) == ()


async def test_viewing_a_message_and_playing_a_recording_are_audited(
    world: World, sessionmaker: Sessionmaker, tmp_path: Path
) -> None:
    wav = tmp_path / "msg.wav"
    wav.write_bytes(b"RIFF----WAVEfmt ")
    voice = await MessageRepository(sessionmaker).add_message(
        world.fjord_call, world.fjordbakst, CALLER, str(wav), 3.0, taken_at=T0
    )
    await _login(world.client, "kari")
    page = await world.client.get(f"/messages/{voice}")
    html = await page.text()
    assert page.status == 200 and f"nr. {voice}" in html
    assert f'src="/messages/{voice}/recording"' in html
    played = await world.client.get(f"/messages/{voice}/recording")
    assert played.status == 200 and played.headers["Content-Type"] == "audio/wav"
    assert await played.read() == wav.read_bytes()
    entries = await AuditRepository(sessionmaker).list_entries(username="kari")
    seen = [(e.action, e.customer_id, e.object_id) for e in entries if e.action != "login"]
    assert seen == [
        (AuditAction.VIEW_MESSAGE, world.fjordbakst, str(voice)),
        (AuditAction.PLAY_RECORDING, world.fjordbakst, str(voice)),
    ]


async def test_the_screen_pop_context_lists_earlier_calls_and_messages(
    world: World, sessionmaker: Sessionmaker
) -> None:
    calls = CallRepository(sessionmaker)
    earlier = await calls.create_call(
        "ch-old", None, world.fjordbakst, "4721000001", CALLER, None, T0 - dt.timedelta(days=2)
    )
    now_call = await calls.create_call(
        "ch-now", None, world.fjordbakst, "4721000001", CALLER, None, T0 + dt.timedelta(hours=1)
    )
    hidden = await calls.create_call("ch-h", None, world.fjordbakst, "4721000001", None, None, T0)
    await _login(world.client, "kari")
    data = await (await world.client.get(f"/calls/{now_call}/context")).json()
    assert [c["id"] for c in data["calls"]] == [world.fjord_call, earlier]
    nothing = await (await world.client.get(f"/calls/{hidden}/context")).json()
    assert nothing == {"calls": [], "messages": [], "pages": []}


async def _events(response: Any) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    event = None
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 5)).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event:
            yield event, json.loads(line[6:])
            event = None


async def test_the_agents_feed_pops_the_ringing_call(world: World) -> None:
    await _login(world.client, "kari")
    response = await world.client.get("/events")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    feed = _events(response)
    event, card = await anext(feed)
    assert (event, card["state"], card["call"]) == ("agent", "idle", None)
    world.source.calls["ch-f"] = Call(world.fjord_call, CALLER)
    world.source.desk.handle(acd.CallerArrived("ch-f", world.fjordbakst), T0)
    world.source.changed()
    event, card = await anext(feed)
    assert card["state"] == "offered"
    assert card["call"]["customer_name"] == "Fjordbakst"
    assert card["call"]["greeting"] == "Fjordbakst, dette er Kari"
    assert card["call"]["caller"] == "+47 91 23 45 67"
    assert card["call"]["record_id"] == world.fjord_call
    response.close()


async def test_the_agents_buttons_change_the_desk_and_what_is_kept(
    world: World, sessionmaker: Sessionmaker
) -> None:
    csrf = await _login(world.client, "kari")
    headers = FETCH | {"X-CSRF-Token": csrf}
    assert (await world.client.post("/agent/pause", headers=FETCH)).status == 403
    assert (await world.client.post("/agent/pause", headers=headers)).status == 200
    assert world.source.view().agent(world.kari_agent).state is acd.AgentState.PAUSED  # type: ignore[union-attr]
    agent = next(
        a for a in (await DirectoryRepository(sessionmaker).load()).agents if a.name == "Kari"
    )
    assert agent.paused
    assert (await world.client.post("/agent/resume", headers=headers)).status == 200
    assert (await world.client.post("/agent/logout", headers=headers)).status == 200
    assert (await world.client.post("/agent/pause", headers=headers)).status == 409
    assert (await world.client.post("/agent/dance", headers=headers)).status == 404
    assert (await world.client.post("/agent/login", headers=headers)).status == 200
    assert world.source.view().agent(world.kari_agent).state is acd.AgentState.IDLE  # type: ignore[union-attr]


async def test_the_wallboard_is_for_supervisors_and_shows_waiting_callers(world: World) -> None:
    await _login(world.client, "kari")
    assert (await world.client.get("/wallboard")).status == 403
    assert (await world.client.get("/wallboard/events")).status == 403
    world.client.session.cookie_jar.clear()
    await _login(world.client, "sjef")
    page = await world.client.get("/wallboard")
    assert page.status == 200 and "Kø per kunde" in await page.text()
    world.source.calls["ch-n"] = Call(world.nordlys_call, CALLER)
    response = await world.client.get("/wallboard/events")
    feed = _events(response)
    seen: dict[str, dict[str, Any]] = {}
    world.source.desk.handle(acd.CallerArrived("ch-n", world.nordlys), T0)
    world.source.changed()
    while "sla" not in seen or seen["board"]["customers"][1]["waiting"] != 1:
        event, data = await anext(feed)
        seen[event] = data
    assert seen["board"]["customers"][1]["name"] == "Nordlys Regnskap"
    assert {c["id"] for c in seen["sla"]["customers"]} == {world.fjordbakst, world.nordlys}
    response.close()


async def test_the_desk_page_in_chromium_pops_the_call_and_reconnects(world: World) -> None:
    """The browser smoke test beside the lab's (tests/asterisk/test_desk_browser.py):
    Debian's Chromium through Playwright's async API, the page's own script, the live
    feed from the real desk; a dropped feed reconnects to the current state."""
    base = str(world.client.make_url("")).rstrip("/")
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 768})
            await page.goto(f"{base}/login")
            await page.get_by_label("Brukernavn").fill("kari")
            await page.get_by_label("Passord").fill(PASSWORD)
            await page.get_by_role("button", name="Logg inn").click()
            await expect(page.locator("#agent-state")).to_have_text("Ledig")
            world.source.calls["ch-f"] = Call(world.fjord_call, None)
            world.source.desk.handle(acd.CallerArrived("ch-f", world.fjordbakst), T0)
            world.source.changed()
            await expect(page.locator("#pop-customer")).to_have_text("Fjordbakst")
            await expect(page.locator("#pop-caller")).to_have_text("skjult nummer")
            await expect(page.locator("#pop-greeting")).to_have_text("Fjordbakst, dette er Kari")
            assert world.source.hub is not None
            world.source.hub.close_all()  # the feed drops (a restart, a proxy)
            world.source.desk.handle(acd.AgentAnswered("ch-f", world.kari_agent), T0)
            await expect(page.locator("#pop-state")).to_have_text("I samtale", timeout=10_000)
            await expect(page.locator("#call-form")).to_be_visible()
        finally:
            await browser.close()

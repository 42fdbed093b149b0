"""The desk's web pages for the load benchmark: desk users, logged-in sessions, and N
"pages" = N aiohttp connections to ``GET /events`` (the agent's Server-Sent Events feed,
web/desk.py), each with its own session, that note when each event arrives.

Screen-pop latency of a call on a page = the time the page received the ``agent`` event
whose card is ``offered`` with that call - the time the agent's phone (the agents' sipp
UAS) received the call's INVITE. Both are this machine's wall clock (CLOCK_REALTIME):
sipp stamps a received message with ``gettimeofday`` when it processes it (its
``-trace_msg`` log, microseconds), the pages with ``time.time()`` when a chunk of the
stream is handed to them. The desk publishes the card ``PUBLISH_DELAY_S`` (5 ms) after
the change that offers the call, close to when the phone is dialled, so a latency can
be negative. The card names the caller as the desk shows it
(``desk_live.shown_number``: "+47 479 01 123"), the INVITE by the number as it came
("47901123"): the match goes through the same function.

The first half is pure (stream chunks and logs in, figures out: tests/unit/
test_bench_pages.py); :class:`Pages` is the I/O, an event loop in a thread of its own so
that the harness's main thread can run sipp steps meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from sqlalchemy import select

from benchmarks.loadbench.stats import percentile
from televikar_pbx.auth.passwords import Passwords
from televikar_pbx.db import models
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.users_repo import UserRepository
from televikar_pbx.domain.auth import Role
from televikar_pbx.domain.desk_live import shown_number

PASSWORD = "benk-passord-for-sidene"
T = TypeVar("T")

# ---------------------------------------------------------------------------
# Pure: Server-Sent Events, latencies, figures
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    at: float  # Unix seconds: when the chunk that completed the event arrived
    name: str
    data: str


def sse_events(chunks: Iterable[tuple[float, bytes]]) -> list[Event]:
    """The events of a text/event-stream given as (arrival time, bytes) chunks, each
    stamped with the arrival of the chunk that completed it (its blank line). Comments
    (``: keep-alive``) and ``retry:`` lines are skipped; ``data`` lines are joined with
    newlines, as EventSource does."""
    events: list[Event] = []
    buffer = b""
    for at, chunk in chunks:
        buffer += chunk.replace(b"\r\n", b"\n")
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            name, data = "message", []
            for line in block.decode("utf-8", errors="replace").split("\n"):
                key, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if key == "event":
                    name = value
                elif key == "data":
                    data.append(value)
            if data:
                events.append(Event(at, name, "\n".join(data)))
    return events


def first_pops(events: Iterable[Event]) -> dict[str, tuple[float, int]]:
    """Caller as shown on the card -> (when this page first got the card ``offered``
    with that call, i.e. the screen pop; the agent id of the card)."""
    pops: dict[str, tuple[float, int]] = {}
    for event in events:
        if event.name != "agent":
            continue
        card = json.loads(event.data)
        call = card.get("call")
        if card.get("state") == "offered" and call:
            pops.setdefault(call["caller"], (event.at, card["agent_id"]))
    return pops


@dataclass(frozen=True, slots=True)
class Spread:
    """Count, min, p50, p99 and max of some latencies (ms); NaN when empty."""

    n: int
    min: float
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan)
        return cls(
            len(values), min(values), percentile(values, 50), percentile(values, 99), max(values)
        )

    def as_dict(self) -> dict[str, float | int | None]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 2)

        return {
            "n": self.n,
            "min": clean(self.min),
            "p50": clean(self.p50),
            "p99": clean(self.p99),
            "max": clean(self.max),
        }


@dataclass(frozen=True, slots=True)
class PopFigures:
    """Screen pops of one step: every (call, page) pair, and per call its last page."""

    calls: int  # calls whose INVITE reached the agents' UAS
    pages: int
    per_page: Spread  # INVITE -> the event on a page, ms, every page of the offered agent
    last_page: Spread  # per call: INVITE -> the event on the last of those pages
    missing: int  # (call, page) pairs where a page of the offered agent never got it
    unpopped: int  # calls that popped on no page at all
    unmatched: int  # pops of calls whose INVITE is not in the UAS log

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "pages": self.pages,
            "per_page_ms": self.per_page.as_dict(),
            "last_page_ms": self.last_page.as_dict(),
            "missing": self.missing,
            "unpopped": self.unpopped,
            "unmatched": self.unmatched,
        }


def pop_figures(
    offers: Mapping[str, float], pages: Sequence[tuple[int, Sequence[Event]]]
) -> PopFigures:
    """``offers``: caller number -> the agent INVITE's arrival (``stats.agent_offers``);
    ``pages``: (the agent id each page follows, its events). A call is expected on
    every page of the agent its card names; a call no page popped counts as missing on
    every page when all pages follow one agent, else as ``unpopped``."""
    by_shown = {shown_number(raw): raw for raw in offers}
    followers = Counter(agent for agent, _ in pages)
    per_page: list[float] = []
    last: dict[str, float] = {}
    got: Counter[str] = Counter()
    agents: dict[str, set[int]] = {}
    unmatched = 0
    for _, events in pages:
        for shown, (at, agent) in first_pops(events).items():
            raw = by_shown.get(shown)
            if raw is None:
                unmatched += 1
                continue
            latency = (at - offers[raw]) * 1000
            per_page.append(latency)
            last[raw] = max(last.get(raw, latency), latency)
            got[raw] += 1
            agents.setdefault(raw, set()).add(agent)
    missing = unpopped = 0
    for raw in offers:
        if raw in agents:
            missing += max(0, sum(followers[a] for a in agents[raw]) - got[raw])
        elif len(followers) == 1:
            missing += len(pages)
        else:
            unpopped += 1
    return PopFigures(
        calls=len(offers),
        pages=len(pages),
        per_page=Spread.of(per_page),
        last_page=Spread.of(list(last.values())),
        missing=missing,
        unpopped=unpopped,
        unmatched=unmatched,
    )


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def login_csrf(html: str) -> str:
    """The hidden ``csrf`` field of the log-in form."""
    found = _CSRF.search(html)
    if found is None:
        raise ValueError("no csrf field in the log-in page")
    return found.group(1)


# ---------------------------------------------------------------------------
# Desk users (in the service's database, before the pages log in)
# ---------------------------------------------------------------------------


async def _add_desk_users(db_url: str) -> dict[str, int]:
    engine = make_engine(db_url)
    try:
        sessions = make_sessionmaker(engine)
        async with sessions() as s:
            agents = list(await s.execute(select(models.Agent.id, models.Agent.endpoint)))
        users = UserRepository(sessions)
        # One hash for all (argon2's default parameters, as a real user's): each user
        # gets the same string, each log-in still verifies it in full.
        hashed = Passwords().hash(PASSWORD)
        now = dt.datetime.now(dt.UTC)
        made = {}
        for agent_id, endpoint in sorted(agents):
            name = f"desk-{endpoint}"
            await users.add_user(name, hashed, Role.AGENT, agent_id=agent_id, now=now)
            made[name] = agent_id
        return made
    finally:
        await engine.dispose()


def add_desk_users(db_url: str) -> dict[str, int]:
    """A desk user (role agent) for every agent: username ``desk-<endpoint>`` -> agent id."""
    return asyncio.run(_add_desk_users(db_url))


# ---------------------------------------------------------------------------
# The pages (I/O)
# ---------------------------------------------------------------------------


@dataclass
class Session:
    username: str
    agent_id: int
    http: aiohttp.ClientSession


@dataclass
class Page:
    session: Session
    response: aiohttp.ClientResponse | None = None
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    first: asyncio.Event = field(default_factory=asyncio.Event)

    def events(self) -> list[Event]:
        return sse_events(self.chunks)


class Pages:
    """Logged-in sessions and open /events feeds, driven from another thread."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="desk-pages")
        self.thread.daemon = True
        self.thread.start()
        self.sessions: list[Session] = []
        self.open: list[Page] = []

    def _run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    # --- log-in ------------------------------------------------------------------

    def log_in(self, users: Sequence[tuple[str, int]], parallel: int = 4) -> None:
        """One session per (username, agent id), each logged in through the form."""
        self._run(self._log_in_all(users, parallel), timeout_s=60 + 5 * len(users))

    async def _log_in_all(self, users: Sequence[tuple[str, int]], parallel: int) -> None:
        gate = asyncio.Semaphore(parallel)

        async def one(username: str, agent_id: int) -> Session:
            async with gate:
                return await self._log_in(username, agent_id)

        self.sessions += await asyncio.gather(*(one(u, a) for u, a in users))

    async def _log_in(self, username: str, agent_id: int) -> Session:
        http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for 127.0.0.1
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None, connect=10),
        )
        try:
            async with http.get(f"{self.base_url}/login") as r:
                r.raise_for_status()
                csrf = login_csrf(await r.text())
            form = {"username": username, "password": PASSWORD, "csrf": csrf}
            async with http.post(f"{self.base_url}/login", data=form, allow_redirects=False) as r:
                if r.status != 303:
                    raise RuntimeError(f"log-in of {username}: HTTP {r.status}")
        except BaseException:
            await http.close()
            raise
        return Session(username, agent_id, http)

    # --- feeds ------------------------------------------------------------------------

    def open_pages(self, sessions: Sequence[Session], timeout_s: float = 30.0) -> None:
        """Open one /events feed per session; return once each got its first event
        (the agent's current card): all are subscribed in the hub."""
        self._run(self._open(sessions, timeout_s), timeout_s + 10)

    async def _open(self, sessions: Sequence[Session], timeout_s: float) -> None:
        pages = [Page(s) for s in sessions]
        for page in pages:
            page.task = asyncio.create_task(self._read(page))
        self.open += pages
        waits = [asyncio.create_task(p.first.wait()) for p in pages]
        _, pending = await asyncio.wait(waits, timeout=timeout_s)
        for w in pending:
            w.cancel()
        if pending:
            raise RuntimeError(f"{len(pending)} of {len(pages)} pages got no first event")

    async def _read(self, page: Page) -> None:
        async with page.session.http.get(f"{self.base_url}/events") as response:
            response.raise_for_status()
            page.response = response
            async for chunk in response.content.iter_any():
                page.chunks.append((time.time(), chunk))  # stamp first, parse later
                if not page.first.is_set() and b"event: agent" in b"".join(
                    c for _, c in page.chunks
                ):
                    page.first.set()

    def close_pages(self) -> list[tuple[int, list[Event]]]:
        """Close the open feeds; (agent id, events) of each, in the order opened."""
        return self._run(self._close_pages())

    async def _close_pages(self) -> list[tuple[int, list[Event]]]:
        pages, self.open = self.open, []
        for page in pages:
            if page.task is not None:
                page.task.cancel()
        for page in pages:
            if page.task is not None:
                with contextlib.suppress(BaseException):
                    await page.task
        return [(p.session.agent_id, p.events()) for p in pages]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.open:
                self.close_pages()
            self._run(self._close_sessions(), 30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()

    async def _close_sessions(self) -> None:
        for session in self.sessions:
            await session.http.close()
        self.sessions = []

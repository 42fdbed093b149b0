"""``televikar-pbx users`` and ``audit list`` in-process (cli.main) on SQLite and
PostgreSQL: passwords from stdin or generated, never from argv; one-line errors."""

from __future__ import annotations

import datetime as dt
import io
import sys

import pytest

from televikar_pbx.auth.passwords import Passwords
from televikar_pbx.db.audit_repo import AuditRepository
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.users_repo import UserRepository
from televikar_pbx.domain.audit import AuditAction, AuditRecord
from tests.helpers import run_async
from tests.integration.test_cli import NORDLYS, Cli, free_port

PASSWORD = "correct horse battery"


@pytest.fixture
def cli(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", "/nonexistent/televikar.env")
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(free_port()))
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", db_url)
    monkeypatch.setenv("TELEVIKAR_NOW", "2026-03-02T10:00:00+01:00")
    return Cli(capsys, db_url)


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def stored_hash(db_url: str, username: str) -> str:
    async def read() -> str:
        engine = make_engine(db_url)
        try:
            found = await UserRepository(make_sessionmaker(engine)).credentials(username)
            assert found is not None
            return found[1]
        finally:
            await engine.dispose()

    return run_async(read)


def test_users_add_list_passwd_disable(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.ok(*NORDLYS)
    cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "Nordlys AS")
    stdin(monkeypatch, PASSWORD + "\n")
    added = cli.ok("users", "add", "Kari", "--role", "agent", "--agent", "agent1")
    assert added.out.startswith("added user 'Kari' (id 1, agent, agent id 1)")
    assert PASSWORD not in added.out
    first = stored_hash(cli.db_url, "kari")
    assert first.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert Passwords().verify(first, PASSWORD).ok

    made = cli.ok("users", "add", "anne", "--role", "account_manager", "--customer", "Nordlys AS",
                  "--generate")  # fmt: skip
    generated = made.out.split("password (shown once): ")[1].strip()
    assert (
        len(generated) == 24 and Passwords().verify(stored_hash(cli.db_url, "anne"), generated).ok
    )

    listed = cli.ok("users", "list", "--json").json()
    assert [(u["username"], u["role"], u["agent_id"], u["customer_ids"], u["disabled"])
            for u in listed] == [("anne", "account_manager", None, [1], False),
                                 ("Kari", "agent", 1, [], False)]  # fmt: skip
    assert listed[1]["created_at"].startswith("2026-03-02T09:00:")  # TELEVIKAR_NOW, UTC
    table = cli.ok("users", "list").out
    assert "username" in table and "Kari" in table and "never" in table
    assert "argon2" not in table + str(listed)

    stdin(monkeypatch, "another long password\n")
    assert "password of 'Kari' changed" in cli.ok("users", "passwd", "KARI").out
    assert Passwords().verify(stored_hash(cli.db_url, "kari"), "another long password").ok
    assert "disabled" in cli.ok("users", "disable", "kari").out
    assert cli.ok("users", "list", "--json").json()[1]["disabled"] is True
    assert "enabled" in cli.ok("users", "enable", "kari").out


@pytest.mark.parametrize(
    ("argv", "given", "match"),
    [
        (["users", "add", "kari", "--role", "agent"], "short\n", "at least 12 characters"),
        (["users", "add", "kari nordmann", "--role", "agent"], PASSWORD, "username"),
        (["users", "add", "kari", "--role", "agent", "--agent", "nobody"], PASSWORD, "no agent"),
        (["users", "add", "kari", "--role", "agent", "--customer", "Nordlys AS"], PASSWORD,
         "account_manager only"),
        (["users", "passwd", "nobody"], PASSWORD, "no user 'nobody'"),
        (["users", "disable", "nobody"], "", "no user 'nobody'"),
    ],
)  # fmt: skip
def test_users_errors_are_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, argv: list[str], given: str, match: str
) -> None:
    stdin(monkeypatch, given)
    result = cli(*argv)
    assert result.code == 1 and result.out == "", result
    assert result.err.startswith("televikar-pbx: ") and match in result.err, result.err
    assert cli.ok("users", "list", "--json").json() == []


def test_users_add_refuses_a_taken_name_any_case(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin(monkeypatch, PASSWORD)
    cli.ok("users", "add", "kari", "--role", "admin")
    stdin(monkeypatch, PASSWORD)
    result = cli("users", "add", "KARI", "--role", "agent")
    assert result.code == 1 and "taken" in result.err


def test_password_is_no_argument(cli: Cli) -> None:
    result = cli("users", "add", "kari", "--role", "agent", "--password", PASSWORD)
    assert result.code == 2 and "unrecognized arguments" in result.err


def test_audit_list(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.ok(*NORDLYS)
    stdin(monkeypatch, PASSWORD)
    cli.ok("users", "add", "kari", "--role", "agent")
    t0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)  # 09:00 in Oslo

    async def write() -> None:
        engine = make_engine(cli.db_url)
        try:
            audit = AuditRepository(make_sessionmaker(engine))
            for entry in (
                AuditRecord(t0, AuditAction.LOGIN, 1, "kari", address="127.0.0.1"),
                AuditRecord(
                    t0 + dt.timedelta(hours=1), AuditAction.VIEW_MESSAGE, 1, "kari", 1, "9"
                ),
                AuditRecord(
                    t0 + dt.timedelta(days=1), AuditAction.PLAY_RECORDING, 1, "kari", 1, "9"
                ),
                AuditRecord(t0, AuditAction.LOGIN_FAILED, None, "per"),
            ):
                await audit.record(entry)
        finally:
            await engine.dispose()

    run_async(write)
    every = cli.ok("audit", "list", "--json").json()
    assert [e["action"] for e in every] == [
        "login",
        "login_failed",
        "view_message",
        "play_recording",
    ]
    by_kari = cli.ok("audit", "list", "--user", "KARI", "--json").json()
    assert len(by_kari) == 3
    assert [e["username"] for e in cli.ok("audit", "list", "--user", "per", "--json").json()] == [
        "per"
    ]
    nordlys = cli.ok("audit", "list", "--customer", "Nordlys AS", "--json").json()
    assert [e["object_id"] for e in nordlys] == ["9", "9"]
    day = cli.ok("audit", "list", "--from", "2026-03-02", "--to", "2026-03-02", "--json").json()
    assert [e["action"] for e in day] == ["login", "login_failed", "view_message"]
    table = cli.ok("audit", "list", "--customer", "1").out
    assert "2026-03-02 10:00:00+01:00" in table and "view_message" in table
    bad = cli("audit", "list", "--from", "2026-03-03", "--to", "2026-03-02")
    assert bad.code == 1 and "not before" in bad.err
    assert cli("audit", "list", "--customer", "Nobody").code == 1


def test_demo_load_makes_a_desk_user_per_agent_and_shows_each_password_once(
    cli: Cli,
) -> None:
    loaded = cli.ok("demo", "load").out
    lines = loaded.splitlines()
    assert lines[0] == "demo data loaded"
    assert lines[1].startswith("desk users for http://127.0.0.1:")
    shown = {}
    for line in lines[2:]:
        username, password, *rest = line.split()
        shown[username] = password
        assert " ".join(rest).startswith("(agent on agent")
    assert set(shown) == {"kari", "ola", "nora"}
    assert len(set(shown.values())) == 3 and all(len(p) >= 12 for p in shown.values())
    for username, password in shown.items():
        assert Passwords().verify(stored_hash(cli.db_url, username), password).ok
    users = {line.split()[0]: line for line in cli.ok("users", "list").out.splitlines()[1:]}
    assert users["kari"].split()[1:3] == ["agent", "1"]  # role, agent id
    again = cli.ok("demo", "load").out  # nothing new, and no password shown again
    assert again == "database already has customers; demo not loaded\n"

"""``televikar-pbx status`` against a control API (the real one is tested on the lab)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from televikar_pbx.cli import main
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.leases_repo import acquire
from televikar_pbx.db.outbox_repo import OutboxRepository
from televikar_pbx.status_cli import render
from tests.helpers import run_async

STATUS = {
    "at": "2026-11-27T09:00:00+00:00",
    "customers": [
        {"id": 1, "name": "Acme AS", "waiting": [
            {"call_id": "c1", "caller": None, "wait_s": 4.2, "state": "queued"}
        ]}
    ],
    "agents": [{"id": 1, "name": "Kari", "endpoint": "kari", "state": "on_call",
                "call_id": "c0", "missed_in_a_row": 0}],
}  # fmt: skip


@pytest.fixture
def control_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(STATUS).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(server.server_port))
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_status_table_and_json(control_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 0
    table = capsys.readouterr().out
    assert "Acme AS: 1 waiting" in table
    assert "skjult nummer" in table  # withheld caller number
    assert "Kari" in table and "on_call" in table
    assert main(["status", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "outbox" in shown  # read from the database (tests below)
    assert {k: v for k, v in shown.items() if k != "outbox"} == STATUS


def test_status_without_a_running_service_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(port))
    assert main(["status"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "is `televikar-pbx serve` running?" in err


# --- the outbox, read from the database by the command line -------------------------------


def test_status_shows_the_outbox_from_the_database(
    control_port: int,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", db_url)
    monkeypatch.setenv("TELEVIKAR_NOW", "2026-12-03T10:15:00+01:00")
    assert main(["status", "--json"]) == 0
    empty = json.loads(capsys.readouterr().out)["outbox"]
    assert empty == {"pending": 0, "sending": 0, "sent": 0, "delivered": 0, "failed": 0,
                     "last_failure": None}  # fmt: skip
    for argv in (
        ["customers", "add", "Fjordbakst AS", "--display-name", "F", "--number", "4721000001"],
        ["customers", "recipients", "add", "1", "--email", "post@fjordbakst.example"],
        ["customers", "recipients", "add", "1", "--sms", "91200001"],
        ["messages", "take", "--customer", "1", "--kind", "message", "--field", "name=Per",
         "--field", "phone=22334455", "--field", "subject=Hei", "--field", "call_back=ja"],
    ):  # fmt: skip
        assert main(argv) == 0
    give_up_on_the_sms(db_url)
    capsys.readouterr()

    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in status.items() if k != "outbox"} == STATUS
    outbox = status["outbox"]
    assert {k: outbox[k] for k in ("pending", "sending", "failed")} == {
        "pending": 1, "sending": 0, "failed": 1,
    }  # fmt: skip
    assert outbox["last_failure"] == {
        "message_id": 1,
        "at": "2026-12-03T09:20:00+00:00",
        "final": True,
        "channel": "sms",
        "recipient": "+4791200001",
        "reason": "gave up after 1 attempts: gateway refused the number",
    }
    assert main(["status"]) == 0
    table = capsys.readouterr().out
    assert "Outbox (message deliveries)\n  1 pending, 0 sending, 1 failed" in table
    assert "message 1 sms +4791200001 (gave up): gave up after 1 attempts" in table


def give_up_on_the_sms(db_url: str) -> None:
    async def work() -> None:
        engine = make_engine(db_url)
        try:
            repo = OutboxRepository(make_sessionmaker(engine))
            at = dt.datetime(2026, 12, 3, 9, 20, tzinfo=dt.UTC)
            jobs = await repo.claim_due(at, 10, 60)
            (sms,) = [job for job in jobs if job.channel == "sms"]
            for job in jobs:
                if job is not sms:
                    await repo.retry(job, at, "SMTP down", at + dt.timedelta(seconds=10))
            await repo.failed(sms, at, "gateway refused the number")
        finally:
            await engine.dispose()

    run_async(work)


def test_status_without_a_database_still_shows_the_desk(
    control_port: int,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "none.sqlite3"
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", f"sqlite+aiosqlite:///{missing}")
    assert main(["status", "--json"]) == 0
    outbox = json.loads(capsys.readouterr().out)["outbox"]
    assert outbox == {"error": f"no database file {missing} (run: televikar-pbx db upgrade)"}
    assert not missing.exists()


# --- leader-standby: who leads, from the lease ---------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("empty_db_url", ["postgres"], indirect=True)
def test_status_on_a_standby_shows_the_leader_from_the_database(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A standby's ``serve`` has no desk to show: ``status`` says who leads (the lease
    in the database) and the outbox instead of failing; where the desk answers, it is
    the leader's."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens: this machine's serve stands by
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", db_url)
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(port))
    monkeypatch.setenv("TELEVIKAR_CLUSTER_MODE", "leader-standby")
    assert main(["status"]) == 0
    assert capsys.readouterr().out.startswith("Leader: none (last None")

    async def lead() -> None:
        engine = make_engine(db_url)
        try:
            async with make_sessionmaker(engine).begin() as session:
                assert await acquire(session, "desk", "desk-1", 60) is not None
        finally:
            await engine.dispose()

    run_async(lead)
    assert main(["status"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[:2] == [
        "Leader: desk-1 (generation 1); this machine: standby or stopped",
        "Standby: NONE (nobody would take over)",
    ]
    assert "Outbox (message deliveries)" in table

    async def stand_by() -> None:  # what a standby's elector does every retry_s
        engine = make_engine(db_url)
        try:
            async with make_sessionmaker(engine).begin() as session:
                assert await acquire(session, "desk", "desk-2", 60) is None
        finally:
            await engine.dispose()

    run_async(stand_by)
    assert main(["status", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["role"] == "standby or stopped"
    assert shown["cluster"]["leader"] == "desk-1" and shown["cluster"]["generation"] == 1
    [standby] = shown["cluster"]["standbys"]
    assert standby["holder"] == "desk-2" and 0 <= standby["seen_s_ago"] < 1
    assert main(["status"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("Standby: desk-2 (seen ")


def test_status_shows_each_node_with_several_nodes() -> None:
    """With TELEVIKAR_NODES the service adds its nodes (cluster/nodes.py Nodes.status)."""
    nodes = [{"name": "a", "up": True, "calls": 3}, {"name": "b", "up": False, "calls": 1}]
    text = render({**STATUS, "nodes": nodes})
    assert text.splitlines()[:3] == [
        "Nodes",
        "  a                up    3 calls",
        "  b                DOWN  1 calls",
    ]
    assert "Nodes" not in render(STATUS)

"""``televikar-pbx status`` against a control API (the real one is tested on the lab)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from televikar_pbx.cli import main

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
    assert json.loads(capsys.readouterr().out) == STATUS


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

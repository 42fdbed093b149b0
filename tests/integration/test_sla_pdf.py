"""``televikar-pbx sla report --format pdf``, run in-process (and once as a subprocess)
against a migrated database on SQLite and PostgreSQL (``db_url``), with the day of
test_sla_cli: Fjordbakst's seven calls on 2026-11-28 and one of Nordlys AS in the same
hour, which must not appear in Fjordbakst's PDF.
"""

# The PDF prints en dashes (U+2013) for "no value" and in hours: so does the expected text.
# ruff: noqa: RUF001

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.integration.test_calls_list import add_calls
from tests.integration.test_cli import Cli, free_port
from tests.integration.test_sla_cli import DAY_CALLS, REPORT

PDF = (*REPORT, "--format", "pdf")
ROWS = [
    "2026-11-28 09:00:00 4790000001 5,0 Besvart Kari 120,0",
    "2026-11-28 09:10:00 4790000002 15,0 Besvart Kari 60,0",
    "2026-11-28 09:20:00 4790000003 8,0 Avbrutt",
    "2026-11-28 10:00:00 4790000004 30,0 Avbrutt",
    "2026-11-28 10:30:00 4790000005 45,0 Beskjed m.wav",
    "2026-11-28 11:00:00 4790000006 12,0 Besvart Kari 30,0",
    "2026-11-28 23:59:59 4790000007 Ikke avsluttet",
]


@pytest.fixture
def day(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(free_port()))  # nothing listens
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", db_url)
    cli = Cli(capsys, db_url)
    cli.ok("customers", "add", "Fjordbakst AS", "--display-name", "Fjordbakst",
           "--number", "4721000001")  # fmt: skip
    cli.ok("customers", "add", "Nordlys AS", "--display-name", "Nordlys", "--number", "4721000002")
    cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "1", "--customer", "2",
           "--secret", "s3cret-s3cret-s3cret")  # fmt: skip
    add_calls(db_url, DAY_CALLS)
    return cli


def text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def test_pdf_by_hour_to_a_file(day: Cli, tmp_path: Path) -> None:
    out = tmp_path / "fjordbakst.pdf"
    assert day.ok(*PDF, "--by", "hour", "--output", str(out)).out == ""
    assert out.stat().st_mode & 0o777 == 0o600  # the customer's data: service user only
    pages = text(out.read_bytes())
    lines = "\n".join(pages).splitlines()
    assert lines[:2] == ["SLA-rapport: Fjordbakst", "Periode: 2026-11-28, per time"]
    for line in (
        "SL12: besvart innen 12 s 40,0 % (2 av 5) ≥ 70 % ikke oppfylt",
        "SL20: besvart innen 20 s 60,0 % (3 av 5) ≥ 90 % ikke oppfylt",
        "Tapte anrop (la på etter mer enn 12 s) 16,7 % (1 av 6) ≤ 5 % ikke oppfylt",
        "Snitt ventetid 19,2 s –",
        "09:00–10:00 3 2 50,0 ✗ 100,0 ✓ 0,0 ✓ 1 0 9,3 15,0 90,0",
        "Totalt 6 3 40,0 ✗ 60,0 ✗ 16,7 ✗ 1 1 19,2 45,0 70,0",
        "7 anrop. Tider i lokal tid (Europe/Oslo); sekunder rundet opp til tidel.",
        *ROWS,
    ):
        assert line in lines, line
    # Nordlys's call in the same hour is neither counted nor listed.
    assert not [line for line in lines if "4799999999" in line or "Nordlys" in line]
    assert pages[-1].endswith(f"Side {len(pages)} av {len(pages)}")


def test_pdf_by_day_in_english(day: Cli, tmp_path: Path) -> None:
    out = tmp_path / "fjordbakst.pdf"
    day.ok(*PDF, "--language", "en", "--output", str(out))
    lines = "\n".join(text(out.read_bytes())).splitlines()
    assert lines[:2] == ["SLA report: Fjordbakst", "Period: 2026-11-28, by day"]
    assert "Sat 2026-11-28 6 3 40.0 ✗ 60.0 ✗ 16.7 ✗ 1 1 19.2 45.0 70.0" in lines
    assert "2026-11-28 10:30:00 4790000005 45.0 Message m.wav" in lines
    nordlys = tmp_path / "nordlys.pdf"
    day.ok("sla", "report", "--customer", "Nordlys AS", "--from", "2026-11-28", "--to",
           "2026-11-28", "--format", "pdf", "--output", str(nordlys))  # fmt: skip
    lines = "\n".join(text(nordlys.read_bytes())).splitlines()
    assert "2026-11-28 09:05:00 4799999999 60,0 Besvart Kari 30,0" in lines
    assert not [line for line in lines if "4790000" in line]


def test_pdf_to_stdout_when_it_is_not_a_terminal(day: Cli) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "televikar_pbx.cli", *PDF],
        env=dict(os.environ), capture_output=True, check=False, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.startswith(b"%PDF-") and done.stdout.rstrip().endswith(b"%%EOF")
    assert "2026-11-28 09:00:00 4790000001 5,0 Besvart Kari 120,0" in "\n".join(text(done.stdout))


def test_pdf_is_not_written_to_a_terminal(day: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    day.fails(*PDF, match="--format pdf: give --output FILE, or redirect to a file")


def test_pdf_option_errors(day: Cli, tmp_path: Path) -> None:
    day.fails(*REPORT, "--output", str(tmp_path / "x.pdf"), match="--output is for --format pdf")
    day.fails(*REPORT, "--format", "csv", "--language", "en", match="--language is for --format")
    day.fails(*PDF, "--language", "de", match="invalid choice: 'de'", code=2)
    missing = tmp_path / "no" / "such" / "dir.pdf"
    day.fails(*PDF, "--output", str(missing), match=f"--output {missing}: No such file")
    assert not (tmp_path / "x.pdf").exists() and not (tmp_path / "no").exists()


def test_pdf_is_dated_by_the_command_lines_clock(
    day: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Laget" is the instant the command starts (TELEVIKAR_NOW), in the customer's time.
    monkeypatch.setenv("TELEVIKAR_NOW", "2026-11-29T07:30:00+01:00")
    out = tmp_path / "dated.pdf"
    day.ok(*PDF, "--output", str(out))
    assert "Laget 2026-11-29 07:30" in "\n".join(text(out.read_bytes()))


def test_pdf_call_log_names_messages_and_orders(day: Cli, tmp_path: Path) -> None:
    # An order taken on the first call (answered at 09:00, call 1).
    day.ok("messages", "take", "--customer", "1", "--kind", "order", "--call", "1",
           "--field", "name=Ola", "--field", "product=Kake", "--field", "quantity=1",
           "--field", "call_back=nei")  # fmt: skip
    taken = day.ok("messages", "list", "--customer", "1", "--from", "2000-01-01", "--to",
                   "2100-01-01", "--format", "json").json()  # fmt: skip
    (order_id,) = [m["id"] for m in taken if m["kind"] == "order"]
    out = tmp_path / "r.pdf"
    day.ok(*PDF, "--output", str(out))
    lines = "\n".join(text(out.read_bytes())).splitlines()
    assert f"{ROWS[0]} Bestilling {order_id}" in lines
    assert ROWS[4] in lines  # the voice message keeps its file name
    day.ok(*PDF, "--language", "en", "--output", str(out))
    english = "\n".join(text(out.read_bytes())).splitlines()
    assert any(line.endswith(f"Answered Kari 120.0 Order {order_id}") for line in english)

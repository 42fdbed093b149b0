"""The shipped systemd units (deploy/systemd) run commands that exist, on a schedule
systemd accepts: they are checked here so that a renamed command cannot strand them."""

from __future__ import annotations

import configparser
import shlex
import subprocess
from pathlib import Path

import pytest

from televikar_pbx.cli import build_parser

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def _unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=True, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / name).read_text())
    return parser


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("televikar-pbx.service", ["serve"]),
        ("televikar-pbx-nightly.service", ["sla", "nightly"]),
    ],
)
def test_service_units_run_a_command_of_ours(name: str, command: list[str]) -> None:
    unit = _unit(name)
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert Path(argv[0]).name == "televikar-pbx"
    assert argv[1:] == command
    build_parser().parse_args(argv[1:])  # exits on a command the CLI does not know
    assert unit["Service"]["User"] == "televikar"
    assert unit["Service"]["UMask"] == "0077"  # recordings and reports: service user only
    assert unit["Service"]["Environment"] == "TELEVIKAR_ENV_FILE=/etc/televikar-pbx/televikar.env"


def test_nightly_timer_fires_after_local_midnight_and_catches_up() -> None:
    timer = _unit("televikar-pbx-nightly.timer")["Timer"]
    assert timer["Persistent"] == "true"
    calendar = timer["OnCalendar"]
    assert calendar.endswith(" Europe/Oslo")
    done = subprocess.run(
        ["systemd-analyze", "calendar", calendar], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert f"Normalized form: {calendar}" in done.stdout

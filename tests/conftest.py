"""Fixtures for every suite."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import time_machine

ASTERISK_SUITE = Path(__file__).parent / "asterisk"
# tests/setup/shifted-clock.sh runs the fast suite again with the clock moved here (an
# ISO 8601 instant with its offset): every wall-clock read of this process (datetime,
# date.today, time.time) starts there and runs on; monotonic clocks stay real.
SHIFT_ENV = "TELEVIKAR_TEST_CLOCK"
LAB_GROUP = "asterisk-lab"


def pytest_configure(config: pytest.Config) -> None:
    target = os.environ.get(SHIFT_ENV)
    if target:
        traveller = time_machine.travel(dt.datetime.fromisoformat(target), tick=True)
        traveller.start()
        config.add_cleanup(traveller.stop)


def pytest_report_header(config: pytest.Config) -> str | None:
    target = os.environ.get(SHIFT_ENV)
    return f"clock shifted to {target} ({SHIFT_ENV})" if target else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under ``tests/asterisk`` needs the lab: mark it, so that
    ``pytest -m "not asterisk and not postgres"`` is the fast inner-loop suite.
    (The PostgreSQL halves are marked where the database fixture is parametrised.)

    pytest runs on several processes (pytest-xdist, ``addopts`` in pyproject.toml); the
    lab is one Asterisk with one set of numbers, agents and ports, so its tests are one
    xdist group: one process runs them all, one after the other."""
    for item in items:
        if ASTERISK_SUITE in Path(item.path).parents:
            item.add_marker(pytest.mark.asterisk)
            item.add_marker(pytest.mark.xdist_group(LAB_GROUP))


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``cli.main`` configures structlog and the root logger for the stderr it sees, which
    is pytest's capture, closed after the test: put back what was there before."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        structlog.configure(**config)
        root.handlers[:] = handlers
        root.setLevel(level)

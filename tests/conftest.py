"""Fixtures for every suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

ASTERISK_SUITE = Path(__file__).parent / "asterisk"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under ``tests/asterisk`` needs the lab: mark it, so that
    ``pytest -m "not asterisk and not postgres"`` is the fast inner-loop suite.
    (The PostgreSQL halves are marked where the database fixture is parametrised.)"""
    for item in items:
        if ASTERISK_SUITE in Path(item.path).parents:
            item.add_marker(pytest.mark.asterisk)


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

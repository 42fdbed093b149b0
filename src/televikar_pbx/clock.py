"""Where the service and the command line read the time: one injectable place.

The pure core (``domain/``) never reads a clock: time is an argument. The shell around it
(the call service, the command line) takes a :class:`Clock` when it is built, so a test
gives it a clock it controls and nothing depends on the day the test runs.

Production uses :class:`SystemClock`. ``TELEVIKAR_NOW`` (an ISO 8601 instant with its UTC
offset, e.g. ``2026-12-05T23:59:58+01:00``) starts a :class:`ShiftedClock` there instead:
time runs on from that instant at the normal pace. It is for tests and for operators who
re-run a command "as of" another moment (``docs/operations.md``); a naive instant is
refused, since a wall-clock time without its offset is ambiguous once a year.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

NOW_ENV = "TELEVIKAR_NOW"


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The machine's real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ShiftedClock:
    """The real clock moved by a fixed offset: time passes at the normal pace from
    ``start``. Timers computed from it (deadline minus now) stay right."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"{NOW_ENV} needs a UTC offset: {start.isoformat()}")
        self._offset: timedelta = start - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant with its offset (``Z`` accepted), as aware UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{NOW_ENV}: not an ISO 8601 instant: {text!r}") from None
    if value.tzinfo is None:
        raise ValueError(f"{NOW_ENV} needs a UTC offset, e.g. {text.strip()}+01:00")
    return value.astimezone(UTC)


def clock_from_env(environ: Mapping[str, str] | None = None) -> Clock:
    """The system clock, or a shifted one when ``TELEVIKAR_NOW`` is set."""
    raw = (os.environ if environ is None else environ).get(NOW_ENV, "").strip()
    if not raw:
        return SystemClock()
    return ShiftedClock(parse_instant(raw))

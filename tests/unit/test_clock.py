"""The one injectable clock (televikar_pbx/clock.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from televikar_pbx.clock import ShiftedClock, SystemClock, clock_from_env, parse_instant


def test_without_televikar_now_the_clock_is_the_systems() -> None:
    clock = clock_from_env({})
    assert isinstance(clock, SystemClock)
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=1)


def test_televikar_now_starts_a_clock_that_runs_on_from_that_instant() -> None:
    clock = clock_from_env({"TELEVIKAR_NOW": "2027-03-28T01:59:59+01:00"})
    first = clock.now()
    assert first.tzinfo is UTC
    assert timedelta(0) <= first - datetime(2027, 3, 28, 0, 59, 59, tzinfo=UTC) < timedelta(1)
    assert clock.now() >= first


def test_an_instant_needs_its_offset_and_z_is_utc() -> None:
    assert parse_instant("2026-12-05T23:00:00Z") == datetime(2026, 12, 5, 23, tzinfo=UTC)
    with pytest.raises(ValueError, match="UTC offset"):
        parse_instant("2026-10-25T02:30:00")
    with pytest.raises(ValueError, match="not an ISO 8601"):
        parse_instant("tomorrow")
    with pytest.raises(ValueError, match="UTC offset"):
        ShiftedClock(datetime(2026, 1, 1))

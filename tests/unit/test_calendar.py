"""Agreements, bookings and service hours in Oslo local time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from televikar_pbx.domain.calendar import Agreement, Booking, Calendar, DateException, OpeningHours

WEEKDAYS_8_16 = tuple(OpeningHours(d, time(8), time(16)) for d in range(5))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_hours_are_local_wall_clock_across_daylight_saving() -> None:
    cal = Calendar(hours=WEEKDAYS_8_16)
    # Summer (UTC+2): 08:00 local is 06:00 UTC. Winter (UTC+1): 07:00 UTC.
    assert cal.is_open(utc(2026, 6, 1, 6, 0))
    assert not cal.is_open(utc(2026, 6, 1, 5, 59))
    assert cal.is_open(utc(2026, 11, 30, 7, 0))
    assert not cal.is_open(utc(2026, 11, 30, 6, 59))
    assert not cal.is_open(utc(2026, 11, 30, 15, 0))  # 16:00 local: closed
    assert not cal.is_open(utc(2026, 11, 28, 10, 0))  # Saturday


def test_no_weekly_hours_means_always_open() -> None:
    assert Calendar().is_open(utc(2026, 11, 28, 3, 0))


def test_date_exceptions_close_or_shorten_a_day() -> None:
    cal = Calendar(
        hours=WEEKDAYS_8_16,
        exceptions=(
            DateException(date(2026, 12, 24), time(9), time(12)),
            DateException(date(2026, 12, 25)),
        ),
    )
    assert cal.is_open(utc(2026, 12, 24, 9, 0))  # 10:00 local
    assert not cal.is_open(utc(2026, 12, 24, 11, 0))  # 12:00 local
    assert not cal.is_open(utc(2026, 12, 25, 10, 0))


def test_agreement_dates_are_local_and_inclusive() -> None:
    cal = Calendar(agreement=Agreement(date(2026, 1, 1), date(2026, 6, 30)))
    assert cal.under_agreement(utc(2025, 12, 31, 23, 30))  # 00:30 on 1 January in Oslo
    assert cal.under_agreement(utc(2026, 6, 30, 21, 59))  # 23:59 local
    assert not cal.under_agreement(utc(2026, 6, 30, 22, 0))  # 1 July local
    assert Calendar(agreement=Agreement(date(2026, 1, 1))).under_agreement(utc(2030, 1, 1))


def test_bookings_cover_half_open_ranges_and_detect_overlaps() -> None:
    week = Booking(utc(2026, 7, 6, 6), utc(2026, 7, 13, 6))
    cal = Calendar(bookings=(week,))
    assert cal.under_agreement(utc(2026, 7, 6, 6))
    assert not cal.under_agreement(utc(2026, 7, 13, 6))
    assert not Calendar().under_agreement(utc(2026, 7, 8))
    assert week.overlaps(Booking(utc(2026, 7, 12), utc(2026, 7, 14)))
    assert not week.overlaps(Booking(utc(2026, 7, 13, 6), utc(2026, 7, 14)))


def test_bad_calendar_values_are_refused() -> None:
    with pytest.raises(ValueError):
        OpeningHours(7, time(8), time(16))
    with pytest.raises(ValueError):
        OpeningHours(0, time(16), time(8))
    with pytest.raises(ValueError):
        Booking(utc(2026, 1, 2), utc(2026, 1, 1))
    with pytest.raises(ValueError):
        Booking(datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError):
        Calendar().is_open(datetime(2026, 1, 1))


def test_metric_classification_version_1() -> None:
    from televikar_pbx.domain.metrics import classify

    assert classify("answered", 30) == "answered"
    assert classify("abandoned", 12.0) == "short_abandon"
    assert classify("abandoned", 12.01) == "lost"
    assert classify("message", 50) == "not_answered"
    assert classify("unknown_number", 0) == "not_offered"

"""The operator's notations for hours, days and moments (``admin.parse``)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from televikar_pbx.admin import parse
from televikar_pbx.domain.calendar import DateException, OpeningHours

OSLO = ZoneInfo("Europe/Oslo")


def test_parse_hours() -> None:
    assert parse.parse_hours("mon-wed 08:00-16:00") == tuple(
        OpeningHours(d, dt.time(8), dt.time(16)) for d in range(3)
    )
    assert parse.parse_hours(" Saturday , sun  9:30 - 12:00, 13:00-24:00 ") == (
        OpeningHours(5, dt.time(9, 30), dt.time(12)),
        OpeningHours(5, dt.time(13), dt.time(0)),
        OpeningHours(6, dt.time(9, 30), dt.time(12)),
        OpeningHours(6, dt.time(13), dt.time(0)),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mon-fri", "is not DAYS HH:MM-HH:MM"),
        ("mon-fri 8-16", "'8' is not a time"),
        ("fri-mon 08:00-16:00", "runs backwards"),
        ("mo 08:00-16:00", "'mo' is not a day"),
        ("mon 25:00-26:00", "not a time of day"),
        ("mon 24:00-08:00", "not a time of day"),
        ("mon 16:00-08:00", "closes before it opens"),
        ("mon 08:00", "not an interval"),
    ],
)
def test_parse_hours_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse.parse_hours(text)


def test_format_hours_reads_back() -> None:
    given = [
        "mon-wed 08:00-16:00",
        "thu 08:00-11:30,12:30-24:00",
        "fri 08:00-16:00",
        "sun 10:00-14:00",
    ]
    hours = [h for text in given for h in parse.parse_hours(text)]
    assert parse.format_hours(hours) == given
    assert parse.format_hours([]) == []


def test_overlapping_hours() -> None:
    parse.check_no_overlap(parse.parse_hours("mon 08:00-12:00,12:00-24:00"))  # touching
    with pytest.raises(ValueError, match="overlap on tue: 08:00-24:00 and 09:00-10:00"):
        parse.check_no_overlap(parse.parse_hours("tue 08:00-24:00,09:00-10:00"))


def test_special_day() -> None:
    assert parse.parse_special_day("2026-12-31 09:00-12:00") == DateException(
        dt.date(2026, 12, 31), dt.time(9), dt.time(12)
    )
    assert parse.format_exception(DateException(dt.date(2026, 12, 24))) == "2026-12-24"
    with pytest.raises(ValueError, match="is not 'YYYY-MM-DD HH:MM-HH:MM'"):
        parse.parse_special_day("2026-12-31")


def test_moments_in_local_time() -> None:
    assert parse.parse_moment("2026-12-24 08:00", OSLO) == dt.datetime(2026, 12, 24, 8, tzinfo=OSLO)
    assert parse.parse_moment("2026-07-01", OSLO).utcoffset() == dt.timedelta(hours=2)
    end = parse.parse_moment("2026-07-01", OSLO, end=True)
    assert end == dt.datetime(2026, 7, 2, tzinfo=OSLO)
    explicit = parse.parse_moment("2026-12-24T08:00+00:00", OSLO)
    assert explicit == dt.datetime(2026, 12, 24, 9, tzinfo=OSLO)
    with pytest.raises(ValueError, match="does not exist in Europe/Oslo"):
        parse.parse_moment("2026-03-29 02:30", OSLO)
    with pytest.raises(ValueError, match="not a date or"):
        parse.parse_moment("soon", OSLO)

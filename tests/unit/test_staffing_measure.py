"""Arrival rates and handle times per hour of the week (domain.staffing.measure), on
fixed dates, DST weeks included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts
from televikar_pbx.domain.staffing.measure import (
    HOURS_PER_WEEK,
    arrival_rates,
    handle_times,
    hour_of_week,
    local_hours,
    mean_by_hour_of_week,
)

OSLO = ZoneInfo("Europe/Oslo")
S = timedelta(seconds=1)
H = timedelta(hours=1)


def oslo(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=OSLO, fold=fold)


def test_hour_of_week_numbers_local_hours_from_monday() -> None:
    assert hour_of_week(oslo(2026, 3, 9, 0, 0), OSLO) == 0  # Monday 00:00
    assert hour_of_week(oslo(2026, 3, 9, 0, 59, 59), OSLO) == 0
    assert hour_of_week(oslo(2026, 3, 10, 9, 30), OSLO) == 24 + 9  # Tuesday 09:30
    assert hour_of_week(oslo(2026, 3, 15, 23, 59), OSLO) == 167  # Sunday 23:59
    # The same instant in UTC: Monday 00:30 Oslo is Sunday 23:30 UTC.
    assert hour_of_week(datetime(2026, 3, 8, 23, 30, tzinfo=UTC), OSLO) == 0
    assert hour_of_week(datetime(2026, 3, 8, 23, 30, tzinfo=UTC), UTC) == 167


def test_hour_of_week_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        hour_of_week(datetime(2026, 3, 9, 10), OSLO)


def test_local_hours_of_dst_sundays() -> None:
    spring = local_hours(oslo(2026, 3, 29), oslo(2026, 3, 30), OSLO)
    assert len(spring) == 23
    assert [h.hour for h in spring[:3]] == [0, 1, 3]
    autumn = local_hours(oslo(2026, 10, 25), oslo(2026, 10, 26), OSLO)
    assert len(autumn) == 25
    assert [(h.hour, h.utcoffset()) for h in autumn[2:4]] == [(2, 2 * H), (2, 1 * H)]


def test_rates_count_real_local_hours_over_dst() -> None:
    # Four Sundays: 22 March, 29 March (no 02:00), 5 and 12 April. One call at 02:30
    # each Sunday that had the hour: the rate of Sunday 02:00 is 3 calls / 3 hours.
    start, end = oslo(2026, 3, 16), oslo(2026, 4, 13)
    sundays = [oslo(2026, 3, 22, 2, 30), oslo(2026, 4, 5, 2, 30), oslo(2026, 4, 12, 2, 30)]
    rates = arrival_rates(sundays, start=start, end=end, tz=OSLO)
    assert len(rates) == HOURS_PER_WEEK
    assert rates[6 * 24 + 2] == pytest.approx(1.0)
    assert sum(rates) == pytest.approx(1.0)
    # The autumn Sunday's 02:00 happens twice: 2 hours with number 146 that week.
    autumn = [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30+02:00
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 02:30+01:00
        datetime(2026, 10, 25, 1, 40, tzinfo=UTC),
    ]
    rates = arrival_rates(autumn, start=oslo(2026, 10, 19), end=oslo(2026, 10, 26), tz=OSLO)
    assert rates[146] == pytest.approx(3 / 2)


def test_rates_divide_by_the_number_of_such_hours_and_ignore_outside_arrivals() -> None:
    start, end = oslo(2026, 3, 2), oslo(2026, 3, 16)  # two whole weeks
    tuesdays_nine = [oslo(2026, 3, 3, 9, m) for m in range(0, 60, 10)]  # 6 in week 1
    tuesdays_nine += [oslo(2026, 3, 10, 9, m) for m in range(0, 60, 30)]  # 2 in week 2
    outside = [oslo(2026, 3, 1, 9, 5), oslo(2026, 3, 16, 0, 0), oslo(2026, 3, 17, 9, 5)]
    rates = arrival_rates(tuesdays_nine + outside, start=start, end=end, tz=OSLO)
    assert rates[24 + 9] == pytest.approx(4.0)
    assert sum(rates) == pytest.approx(4.0)


def test_rates_with_opening_hours_count_open_hours_only() -> None:
    start, end = oslo(2026, 3, 2), oslo(2026, 3, 16)

    # Open 08-16 on weekdays, and Tuesday 10 March closed altogether (a holiday).
    def is_open(hour: datetime) -> bool:
        return (
            hour.weekday() < 5 and 8 <= hour.hour < 16 and hour.date() != oslo(2026, 3, 10).date()
        )

    calls = [oslo(2026, 3, 3, 9, 1), oslo(2026, 3, 3, 9, 2), oslo(2026, 3, 10, 9, 3)]
    calls += [oslo(2026, 3, 3, 20, 0)]  # closed: not counted
    rates = arrival_rates(calls, start=start, end=end, tz=OSLO, is_open=is_open)
    assert rates[24 + 9] == pytest.approx(2.0)  # 2 calls in the one open Tuesday 09:00
    assert rates[24 + 20] == 0.0
    assert rates[0] == 0.0  # Monday 00:00 never open: no such hour, 0.0


def test_rates_of_an_empty_history() -> None:
    assert arrival_rates([], start=oslo(2026, 3, 2), end=oslo(2026, 3, 2), tz=OSLO) == [0.0] * 168


def test_handle_time_is_talk_plus_wrap_up_of_answered_calls_by_arrival_hour() -> None:
    at = datetime(2026, 3, 3, 8, 59, 50, tzinfo=UTC)  # Tuesday 09:59:50 Oslo
    calls = [
        CallFacts(at, at + 20 * S, at + 140 * S, Outcome.ANSWERED, 1),  # answered at 10:00
        CallFacts(at, at + 5 * S, at + 65 * S, Outcome.ANSWERED, 1),
        CallFacts(at, None, at + 30 * S, Outcome.ABANDONED),
    ]
    means, counts = mean_by_hour_of_week(
        handle_times(calls, wrap_up_s=10.0), start=oslo(2026, 3, 2), end=oslo(2026, 3, 9), tz=OSLO
    )
    assert counts[24 + 9] == 2 and sum(counts) == 2
    assert means[24 + 9] == pytest.approx((120 + 10 + 60 + 10) / 2)
    assert means[24 + 10] is None

"""The forwarding watch's pure logic (domain/forwarding.py) with fixed dates: the open
time integral (hours, minutes, exceptions, bookings, daylight saving), the threshold,
and the episodes of silence."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from televikar_pbx.domain.calendar import (
    Agreement,
    Booking,
    Calendar,
    DateException,
    OpeningHours,
)
from televikar_pbx.domain.forwarding import (
    ForwardingWatch,
    SilenceBegan,
    SilenceEnded,
    Traffic,
    expected_arrivals,
    open_hours,
    rate_now,
    threshold_for,
)

OSLO = ZoneInfo("Europe/Oslo")
AGREEMENT = Agreement(date(2026, 1, 1))
ALWAYS = Calendar(agreement=AGREEMENT)
WEEKDAYS = Calendar(
    agreement=AGREEMENT,
    hours=tuple(OpeningHours(d, time(8, 0), time(16, 0)) for d in range(5)),
)
FLAT = tuple([10.0] * 168)  # ten calls an hour, every hour of the week


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)  # type: ignore[misc]


def test_the_threshold_is_the_expected_count_whose_silence_is_that_unlikely() -> None:
    assert threshold_for(0.01) == pytest.approx(math.log(100))
    assert math.exp(-threshold_for(0.05)) == pytest.approx(0.05)
    for p in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError):
            threshold_for(p)


def test_closed_time_counts_nothing() -> None:
    # Friday 2026-12-04 15:00 to Monday 09:00: Friday 15-16 and Monday 08-09 are open.
    friday, monday = oslo(2026, 12, 4, 15), oslo(2026, 12, 7, 9)
    assert expected_arrivals(FLAT, WEEKDAYS, friday, monday) == pytest.approx(20.0)
    assert expected_arrivals(FLAT, WEEKDAYS, oslo(2026, 12, 5, 0), oslo(2026, 12, 7, 0)) == 0.0
    assert expected_arrivals(FLAT, ALWAYS, friday, monday) == pytest.approx(66 * 10.0)
    assert expected_arrivals((), WEEKDAYS, friday, monday) == 0.0  # no history
    with pytest.raises(ValueError, match="168"):
        expected_arrivals((1.0,) * 24, WEEKDAYS, friday, monday)


def test_each_hour_has_its_own_rate_and_minutes_count() -> None:
    rates = [0.0] * 168
    rates[0 * 24 + 8] = 6.0  # Monday 08-09
    rates[0 * 24 + 9] = 12.0  # Monday 09-10
    late_opening = Calendar(agreement=AGREEMENT, hours=(OpeningHours(0, time(8, 30), time(9, 15)),))
    start, end = oslo(2026, 12, 7, 7), oslo(2026, 12, 7, 12)
    assert expected_arrivals(rates, late_opening, start, end) == pytest.approx(3.0 + 3.0)
    # From a quarter to nine: 15 minutes of the first hour.
    assert expected_arrivals(rates, late_opening, oslo(2026, 12, 7, 8, 45), end) == (
        pytest.approx(1.5 + 3.0)
    )
    assert rate_now(rates, late_opening, oslo(2026, 12, 7, 9, 0)) == 12.0
    assert rate_now(rates, late_opening, oslo(2026, 12, 7, 9, 30)) == 0.0  # closed
    assert rate_now((), ALWAYS, oslo(2026, 12, 7, 9, 0)) == 0.0


def test_date_exceptions_and_bookings_and_the_agreement() -> None:
    monday = date(2026, 12, 7)
    closed_today = Calendar(
        agreement=AGREEMENT, hours=WEEKDAYS.hours, exceptions=(DateException(monday),)
    )
    start, end = oslo(2026, 12, 7, 0), oslo(2026, 12, 8, 0)
    assert expected_arrivals(FLAT, closed_today, start, end) == 0.0
    short_day = Calendar(
        agreement=AGREEMENT,
        hours=WEEKDAYS.hours,
        exceptions=(DateException(monday, time(10, 0), time(12, 30)),),
    )
    assert expected_arrivals(FLAT, short_day, start, end) == pytest.approx(25.0)
    # No agreement: only a booking's 20 minutes count (hours around the clock).
    booked = Calendar(
        bookings=(Booking(oslo(2026, 12, 7, 10, 0), oslo(2026, 12, 7, 10, 20)),),
    )
    assert expected_arrivals(FLAT, booked, start, end) == pytest.approx(10.0 / 3)
    ended = Calendar(agreement=Agreement(date(2026, 1, 1), date(2026, 12, 6)))
    assert expected_arrivals(FLAT, ended, start, end) == 0.0


def test_daylight_saving_days_have_23_and_25_hours() -> None:
    rates = [1.0] * 168
    rates[6 * 24 + 2] = 100.0  # Sunday 02-03: skipped in spring, twice in autumn
    spring = (oslo(2026, 3, 29, 0), oslo(2026, 3, 30, 0))
    autumn = (oslo(2026, 10, 25, 0), oslo(2026, 10, 26, 0))
    assert expected_arrivals(rates, ALWAYS, *spring) == pytest.approx(23.0)
    assert expected_arrivals(rates, ALWAYS, *autumn) == pytest.approx(23.0 + 2 * 100.0)
    assert sum(h for _, h in open_hours(ALWAYS, *autumn)) == pytest.approx(25.0)
    # Opening hours in wall-clock time: 08-16 is eight hours on both days.
    sundays = Calendar(agreement=AGREEMENT, hours=(OpeningHours(6, time(8), time(16)),))
    for day in (spring, autumn):
        assert expected_arrivals(FLAT, sundays, *day) == pytest.approx(80.0)


def traffic(customer: int, last_call: datetime | None, calendar: Calendar = WEEKDAYS,
            rates: tuple[float, ...] = FLAT) -> Traffic:  # fmt: skip
    return Traffic(customer, calendar, rates, last_call)


def test_one_episode_per_silence_from_the_first_check_past_the_threshold() -> None:
    watch = ForwardingWatch(threshold_for(0.01))  # 4.6 calls at 10 an hour: ~28 minutes
    last = oslo(2026, 12, 7, 9, 0)
    assert watch.check([traffic(1, last)], last + timedelta(minutes=20)) == []
    assert not watch.readings[1].flagged and watch.readings[1].open_now
    at = last + timedelta(minutes=28)
    [began] = watch.check([traffic(1, last)], at)
    assert began == SilenceBegan(1, last, pytest.approx(28 / 6), at)  # type: ignore[arg-type]
    assert watch.readings[1].chance < 0.01
    # Still silent, closed for the night, and the next morning: no second warning.
    for hours in (1, 8, 24):
        assert watch.check([traffic(1, last)], at + timedelta(hours=hours)) == []
    assert [r.customer_id for r in watch.flagged()] == [1]
    # A call: the episode ends, once.
    call = at + timedelta(hours=24, minutes=5)
    [ended] = watch.check([traffic(1, call)], call + timedelta(seconds=30))
    assert ended == SilenceEnded(1, last, call, call + timedelta(seconds=30))
    assert watch.flagged() == []
    assert watch.check([traffic(1, call)], call + timedelta(minutes=1)) == []
    # And a new silence is a new episode.
    assert len(watch.check([traffic(1, call)], call + timedelta(hours=1))) == 1


def test_no_history_and_closed_customers_are_never_flagged() -> None:
    watch = ForwardingWatch(threshold_for(0.01))
    last = oslo(2026, 12, 7, 9, 0)
    closed_all_week = Calendar(
        agreement=AGREEMENT,
        exceptions=tuple(DateException(date(2026, 12, d)) for d in range(7, 14)),
    )
    week_later = last + timedelta(days=6)
    notices = watch.check(
        [
            traffic(1, None),  # new: never a call
            traffic(2, last, rates=()),  # no calls in the weeks looked at
            traffic(3, last, calendar=closed_all_week),
        ],
        week_later,
    )
    assert notices == []
    assert [watch.readings[c].expected for c in (1, 2, 3)] == [0.0, 0.0, 0.0]
    assert not watch.readings[3].open_now and watch.readings[3].rate_now == 0.0


def test_the_running_integral_is_the_whole_one() -> None:
    watch = ForwardingWatch(threshold_for(0.01))
    last = oslo(2026, 12, 4, 15, 17)
    rates = tuple(float(n % 13) for n in range(168))
    at = last
    for step in range(40):
        at += timedelta(minutes=37 * step)
        watch.check([traffic(1, last, rates=rates)], at)
        whole = expected_arrivals(rates, WEEKDAYS, last, at)
        assert watch.readings[1].expected == pytest.approx(whole)
    # New rates (the hourly reload) or another calendar: computed afresh.
    other = tuple(r + 1 for r in rates)
    watch.check([traffic(1, last, rates=other)], at)
    assert watch.readings[1].expected == pytest.approx(expected_arrivals(other, WEEKDAYS, last, at))


def test_a_customer_that_leaves_the_directory_leaves_the_watch() -> None:
    watch = ForwardingWatch(threshold_for(0.01))
    last = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    assert len(watch.check([traffic(1, last), traffic(2, last)], last + timedelta(hours=2))) == 2
    assert watch.check([traffic(2, last)], last + timedelta(hours=3)) == []
    assert [r.customer_id for r in watch.flagged()] == [2] and 1 not in watch.readings

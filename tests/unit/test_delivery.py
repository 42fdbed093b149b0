"""Which report periods are due (``domain.delivery``): periods, catch-up, retries."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from televikar_pbx.domain.delivery import (
    CATCH_UP,
    ReportPeriod,
    latest_complete,
    period_containing,
    periods_due,
)
from televikar_pbx.domain.reporting import ReportInterval

DAILY, WEEKLY, MONTHLY, NONE = (
    ReportInterval.DAILY,
    ReportInterval.WEEKLY,
    ReportInterval.MONTHLY,
    ReportInterval.NONE,
)
D = dt.date


def day(text: str) -> ReportPeriod:
    return ReportPeriod(D.fromisoformat(text), D.fromisoformat(text))


def span(first: str, last: str) -> ReportPeriod:
    return ReportPeriod(D.fromisoformat(first), D.fromisoformat(last))


# --- periods ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "today", "expected"),
    [
        (DAILY, "2026-03-01", span("2026-02-28", "2026-02-28")),
        (DAILY, "2028-03-01", span("2028-02-29", "2028-02-29")),  # leap year
        (DAILY, "2027-01-01", span("2026-12-31", "2026-12-31")),
        # The DST changes are just dates.
        (DAILY, "2026-03-30", span("2026-03-29", "2026-03-29")),
        (DAILY, "2026-10-26", span("2026-10-25", "2026-10-25")),
        # Weekly: the ISO week before today's, Monday to Sunday.
        (WEEKLY, "2026-11-30", span("2026-11-23", "2026-11-29")),  # a Monday
        (WEEKLY, "2026-12-06", span("2026-11-23", "2026-11-29")),  # a Sunday: week not over
        # ISO week 53 of 2026 runs Mon 2026-12-28 .. Sun 2027-01-03.
        (WEEKLY, "2027-01-04", span("2026-12-28", "2027-01-03")),
        (WEEKLY, "2027-01-01", span("2026-12-21", "2026-12-27")),
        # Week 1 of 2025 starts on Mon 2024-12-30.
        (WEEKLY, "2025-01-06", span("2024-12-30", "2025-01-05")),
        # Monthly: the calendar month before today's.
        (MONTHLY, "2026-03-01", span("2026-02-01", "2026-02-28")),
        (MONTHLY, "2028-03-31", span("2028-02-01", "2028-02-29")),
        (MONTHLY, "2027-01-15", span("2026-12-01", "2026-12-31")),
        (MONTHLY, "2026-05-01", span("2026-04-01", "2026-04-30")),
        (MONTHLY, "2026-08-31", span("2026-07-01", "2026-07-31")),
    ],
)
def test_latest_complete(interval: ReportInterval, today: str, expected: ReportPeriod) -> None:
    assert latest_complete(interval, D.fromisoformat(today)) == expected
    assert expected.shape is interval


def test_period_containing_and_shape() -> None:
    assert period_containing(WEEKLY, D(2027, 1, 3)) == span("2026-12-28", "2027-01-03")
    assert period_containing(MONTHLY, D(2026, 12, 31)) == span("2026-12-01", "2026-12-31")
    assert span("2026-11-01", "2026-11-15").shape is NONE
    assert span("2026-11-24", "2026-11-30").shape is NONE  # Tuesday to Monday
    assert str(day("2026-11-28")) == "2026-11-28"
    assert str(span("2026-11-23", "2026-11-29")) == "2026-11-23..2026-11-29"
    with pytest.raises(ValueError, match="no periods"):
        period_containing(NONE, D(2026, 11, 28))
    with pytest.raises(ValueError, match="ends"):
        span("2026-11-29", "2026-11-28")


# --- due -------------------------------------------------------------------------------

TODAY = D(2026, 11, 28)  # a Saturday


def test_nothing_recorded_only_the_latest() -> None:
    assert periods_due(DAILY, TODAY, []) == [day("2026-11-27")]
    assert periods_due(WEEKLY, TODAY, []) == [span("2026-11-16", "2026-11-22")]
    assert periods_due(MONTHLY, TODAY, []) == [span("2026-10-01", "2026-10-31")]
    assert periods_due(NONE, TODAY, []) == []


def test_sent_is_never_due_again() -> None:
    assert periods_due(DAILY, TODAY, [day("2026-11-27")]) == []
    latest = span("2026-10-01", "2026-10-31")
    assert periods_due(MONTHLY, TODAY, [latest], [latest]) == []


def test_catch_up_since_the_last_sent() -> None:
    sent = [day("2026-11-20"), day("2026-11-24")]
    assert periods_due(DAILY, TODAY, sent) == [
        day("2026-11-25"),
        day("2026-11-26"),
        day("2026-11-27"),
    ]
    weekly = periods_due(WEEKLY, D(2027, 1, 12), [span("2026-12-21", "2026-12-27")])
    assert weekly == [span("2026-12-28", "2027-01-03"), span("2027-01-04", "2027-01-10")]
    monthly = periods_due(MONTHLY, D(2027, 2, 1), [span("2026-11-01", "2026-11-30")])
    assert monthly == [span("2026-12-01", "2026-12-31"), span("2027-01-01", "2027-01-31")]


@pytest.mark.parametrize("interval", [DAILY, WEEKLY, MONTHLY])
def test_catch_up_is_bounded(interval: ReportInterval) -> None:
    long_ago = period_containing(interval, D(2024, 1, 10))
    due = periods_due(interval, TODAY, [long_ago])
    assert len(due) == CATCH_UP[interval]
    assert due[-1] == latest_complete(interval, TODAY)
    assert all(
        later.first_day == earlier.last_day + dt.timedelta(days=1)
        for earlier, later in itertools.pairwise(due)
    )
    assert periods_due(interval, TODAY, [long_ago], limit=2) == due[-2:]
    with pytest.raises(ValueError, match="at least 1"):
        periods_due(interval, TODAY, [], limit=0)


def test_failed_is_due_again_within_the_window() -> None:
    # The first run failed; nothing was ever sent: the failed day and the latest.
    assert periods_due(DAILY, TODAY, [], [day("2026-11-25")]) == [
        day("2026-11-25"),
        day("2026-11-27"),
    ]
    # A failure before the last sent period is retried too.
    due = periods_due(DAILY, TODAY, [day("2026-11-26"), day("2026-11-27")], [day("2026-11-20")])
    assert due == [day("2026-11-20")]
    # Out of the window: given up.
    assert periods_due(DAILY, TODAY, [day("2026-11-27")], [day("2026-10-01")]) == []
    assert periods_due(MONTHLY, TODAY, [], [span("2026-08-01", "2026-08-31")]) == [
        span("2026-08-01", "2026-08-31"),
        span("2026-10-01", "2026-10-31"),
    ]


def test_records_of_other_shapes_are_ignored() -> None:
    # An explicit resend of any range, or weeks sent before the customer went daily.
    other = [span("2026-11-01", "2026-11-26"), span("2026-11-16", "2026-11-22")]
    assert periods_due(DAILY, TODAY, other, other) == [day("2026-11-27")]
    # A month sent does not count as its weeks, nor the other way round.
    assert periods_due(WEEKLY, TODAY, [span("2026-11-01", "2026-11-30")]) == [
        span("2026-11-16", "2026-11-22")
    ]

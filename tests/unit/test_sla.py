"""SLA figures, definitions version 1: the worked examples of docs/metrics.md, by hand."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.reporting import ReportSettings
from televikar_pbx.domain.sla import (
    CallFacts,
    PeriodFigures,
    SlaReport,
    periods,
    sla_report,
    sla_reports,
)

S = timedelta(seconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def answered(at: datetime, wait_s: float, talk_s: float = 60, agent: int = 1) -> CallFacts:
    answer = at + wait_s * S
    return CallFacts(at, answer, answer + talk_s * S, Outcome.ANSWERED, agent)


def abandoned(at: datetime, wait_s: float) -> CallFacts:
    return CallFacts(at, None, at + wait_s * S, Outcome.ABANDONED)


def message(at: datetime, wait_s: float, record_s: float, outcome: str = "message") -> CallFacts:
    overflow = at + wait_s * S
    return CallFacts(at, None, overflow + record_s * S, Outcome(outcome), overflowed_at=overflow)


def not_offered(at: datetime, outcome: str) -> CallFacts:
    return CallFacts(at, None, at + 5 * S, Outcome(outcome))


def one_hour(calls: list[CallFacts], day: date, label: str) -> PeriodFigures:
    report = sla_report(calls, first_day=day, last_day=day, by="hour")
    (figures,) = (p for p in report.periods if p.period.label == label)
    return figures


# Example 1 of docs/metrics.md: Tuesday 10 March 2026, 09:00-10:00 in Oslo (UTC+1).
def ten_calls() -> list[CallFacts]:
    return [
        answered(utc(2026, 3, 10, 8, 2), 5, talk_s=120),
        answered(utc(2026, 3, 10, 8, 7, 30), 12.0, talk_s=60),  # at the limit: within
        answered(utc(2026, 3, 10, 8, 11), 15, talk_s=180),
        answered(utc(2026, 3, 10, 8, 18), 20.0, talk_s=90),  # at the limit: within 20 s
        answered(utc(2026, 3, 10, 8, 25), 25, talk_s=30),
        abandoned(utc(2026, 3, 10, 8, 31), 8),  # short abandon
        abandoned(utc(2026, 3, 10, 8, 40), 30),  # lost
        message(utc(2026, 3, 10, 8, 46), 45, record_s=40),  # maximum wait, then a message
        message(utc(2026, 3, 10, 8, 52), 0, record_s=0.4, outcome="no_message"),  # no agent
        not_offered(utc(2026, 3, 10, 8, 58), "unknown_number"),
    ]


def test_example_1_an_hour_of_ten_calls() -> None:
    h = one_hour(ten_calls(), date(2026, 3, 10), "2026-03-10T09:00+01:00")
    assert h.period.start == utc(2026, 3, 10, 8) and h.period.end == utc(2026, 3, 10, 9)
    assert (h.offered, h.answered, h.answered_within_12s, h.answered_within_20s) == (9, 5, 2, 4)
    assert (h.short_abandons, h.lost, h.messages) == (1, 1, 2)
    # SL denominators: offered 9 - short abandons 1 = 8.
    assert h.sl12_pct == 100 * 2 / 8 == 25.0
    assert h.sl20_pct == 100 * 4 / 8 == 50.0
    assert h.lost_pct == 100 * 1 / 9
    assert round(h.lost_pct, 2) == 11.11
    # Waits of the nine offered calls: 5 + 12 + 15 + 20 + 25 + 8 + 30 + 45 + 0 = 160 s.
    assert h.avg_wait_s == 160 / 9
    assert h.longest_wait_s == 45.0
    assert h.avg_talk_s == (120 + 60 + 180 + 90 + 30) / 5 == 96.0
    assert (h.sl12_met, h.sl20_met, h.lost_met) == (False, False, False)


def test_example_2_exactly_on_the_targets_is_met() -> None:
    day = date(2026, 3, 11)
    t0 = utc(2026, 3, 11, 7)  # 08:00 in Oslo
    calls = (
        [answered(t0 + n * 60 * S, 6, talk_s=100) for n in range(14)]
        + [answered(t0 + (20 + n) * 60 * S, 18, talk_s=100) for n in range(4)]
        + [answered(t0 + 30 * 60 * S, 40, talk_s=100), abandoned(t0 + 40 * 60 * S, 30)]
    )
    report = sla_report(calls, first_day=day, last_day=day, by="day")
    (d,) = report.periods
    assert d.period.label == "2026-03-11"
    assert (d.offered, d.answered, d.answered_within_12s, d.answered_within_20s) == (20, 19, 14, 18)
    assert (d.short_abandons, d.lost, d.messages) == (0, 1, 0)
    assert (d.sl12_pct, d.sl20_pct, d.lost_pct) == (70.0, 90.0, 5.0)
    assert (d.sl12_met, d.sl20_met, d.lost_met) == (True, True, True)
    # (14 x 6 + 4 x 18 + 40 + 30) / 20 = 226 / 20
    assert (d.avg_wait_s, d.longest_wait_s, d.avg_talk_s) == (11.3, 40.0, 100.0)
    # One call fewer within 12 s, or one more lost call, and the target is missed.
    worse = sla_report([*calls[1:], answered(t0, 13)], first_day=day, last_day=day, by="day")
    assert worse.periods[0].sl12_pct == 65.0 and worse.periods[0].sl12_met is False
    lossy = sla_report([*calls, abandoned(t0, 13)], first_day=day, last_day=day, by="day")
    assert lossy.periods[0].lost_met is False  # 2 of 21 = 9.5 %


def test_example_3_autumn_day_has_25_hours_and_the_repeated_hour_twice() -> None:
    day = date(2026, 10, 25)
    hours = periods(day, day, "hour")
    assert len(hours) == 25
    assert [p.label[11:] for p in hours[:5]] == [
        "00:00+02:00",
        "01:00+02:00",
        "02:00+02:00",
        "02:00+01:00",
        "03:00+01:00",
    ]
    assert hours[-1].label == "2026-10-25T23:00+01:00"
    assert len({p.label for p in hours}) == 25
    assert all(p.end - p.start == timedelta(hours=1) for p in hours)
    assert all(a.end == b.start for a, b in pairwise(hours))
    assert (hours[0].start, hours[-1].end) == (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))
    # 02:30 local happens twice: at 00:30 UTC (summer time) and at 01:30 UTC (winter time).
    calls = [answered(utc(2026, 10, 25, 0, 30), 5), abandoned(utc(2026, 10, 25, 1, 30), 20)]
    report = sla_report(calls, first_day=day, last_day=day, by="hour")
    first, second = report.periods[2], report.periods[3]
    assert (first.period.label, first.answered, first.lost) == ("2026-10-25T02:00+02:00", 1, 0)
    assert (second.period.label, second.answered, second.lost) == ("2026-10-25T02:00+01:00", 0, 1)
    (whole,) = periods(day, day, "day")
    assert whole.end - whole.start == timedelta(hours=25)


def test_spring_day_has_23_hours_and_no_0200() -> None:
    day = date(2026, 3, 29)
    hours = periods(day, day, "hour")
    assert len(hours) == 23
    labels = [p.label[11:] for p in hours]
    assert labels[:4] == ["00:00+01:00", "01:00+01:00", "03:00+02:00", "04:00+02:00"]
    assert not any(label.startswith("02:") for label in labels)
    assert all(p.end - p.start == timedelta(hours=1) for p in hours)
    (whole,) = periods(day, day, "day")
    assert (whole.start, whole.end) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    # 01:30 UTC is 03:30 summer time.
    report = sla_report(
        [answered(utc(2026, 3, 29, 1, 30), 3)], first_day=day, last_day=day, by="hour"
    )
    assert [p.period.label for p in report.periods if p.offered] == ["2026-03-29T03:00+02:00"]


def test_a_week_across_the_autumn_change_by_hour_and_by_day() -> None:
    hours = periods(date(2026, 10, 19), date(2026, 10, 25), "hour")
    days = periods(date(2026, 10, 19), date(2026, 10, 25), "day")
    assert len(hours) == 6 * 24 + 25 and len(days) == 7
    assert hours[0].start == days[0].start and hours[-1].end == days[-1].end


@pytest.mark.parametrize(
    ("call", "within_12s", "within_20s"),
    [
        (answered(utc(2026, 3, 10, 8), 12.0), 1, 1),
        (answered(utc(2026, 3, 10, 8), 12.000001), 0, 1),
        (answered(utc(2026, 3, 10, 8), 20.0), 0, 1),
        (answered(utc(2026, 3, 10, 8), 20.000001), 0, 0),
    ],
)
def test_answer_limits_include_the_limit(call: CallFacts, within_12s: int, within_20s: int) -> None:
    h = one_hour([call], date(2026, 3, 10), "2026-03-10T09:00+01:00")
    assert (h.answered_within_12s, h.answered_within_20s) == (within_12s, within_20s)


@pytest.mark.parametrize(
    ("wait_s", "short", "lost"), [(0, 1, 0), (12.0, 1, 0), (12.01, 0, 1), (12.1, 0, 1)]
)
def test_abandon_at_12_s_is_short_and_after_it_lost(wait_s: float, short: int, lost: int) -> None:
    calls = [abandoned(utc(2026, 3, 10, 8), wait_s), answered(utc(2026, 3, 10, 8, 30), 4)]
    h = one_hour(calls, date(2026, 3, 10), "2026-03-10T09:00+01:00")
    assert (h.offered, h.short_abandons, h.lost) == (2, short, lost)
    # A short abandon leaves the SL denominators; a lost call stays in them.
    assert h.sl12_pct == 100 * 1 / (2 - short)
    assert h.lost_pct == 100 * lost / 2


def test_message_capture_is_offered_and_not_answered_waiting_until_overflow() -> None:
    h = one_hour(
        [message(utc(2026, 3, 10, 8), 45, record_s=60)], date(2026, 3, 10), "2026-03-10T09:00+01:00"
    )
    assert (h.offered, h.answered, h.messages, h.short_abandons, h.lost) == (1, 0, 1, 0, 0)
    assert (h.sl12_pct, h.sl20_pct, h.lost_pct) == (0.0, 0.0, 0.0)
    assert (h.avg_wait_s, h.longest_wait_s, h.avg_talk_s) == (45.0, 45.0, None)


@pytest.mark.parametrize("outcome", ["unknown_number", "rejected", "failed"])
def test_calls_that_never_reached_a_queue_are_not_offered(outcome: str) -> None:
    h = one_hour(
        [not_offered(utc(2026, 3, 10, 8), outcome)], date(2026, 3, 10), "2026-03-10T09:00+01:00"
    )
    assert (h.offered, h.answered, h.messages) == (0, 0, 0)
    assert (h.sl12_pct, h.lost_pct, h.sl12_met, h.lost_met) == (None, None, None, None)


def test_a_customer_without_calls_gets_every_period_with_zeros() -> None:
    report = sla_report([], first_day=date(2026, 3, 9), last_day=date(2026, 3, 11), by="day")
    assert [p.period.label for p in report.periods] == ["2026-03-09", "2026-03-10", "2026-03-11"]
    for figures in (*report.periods, report.total):
        assert (figures.offered, figures.answered, figures.lost, figures.messages) == (0, 0, 0, 0)
        assert (figures.sl12_pct, figures.sl20_pct, figures.lost_pct) == (None, None, None)
        assert (figures.avg_wait_s, figures.longest_wait_s, figures.avg_talk_s) == (None,) * 3
        assert (figures.sl12_met, figures.sl20_met, figures.lost_met) == (None, None, None)
    by_hour = sla_report([], first_day=date(2026, 3, 10), last_day=date(2026, 3, 10), by="hour")
    assert [p.period.label[11:13] for p in by_hour.periods] == [f"{h:02}" for h in range(24)]


def test_a_call_counts_in_the_period_of_its_arrival_and_only_inside_the_range() -> None:
    day = date(2026, 3, 10)
    calls = [
        answered(utc(2026, 3, 10, 8, 59, 55), 10),  # 09:59:55, answered 10:00:05
        answered(utc(2026, 3, 10, 9), 1),  # exactly 10:00: the next hour
        answered(utc(2026, 3, 9, 22, 59, 59), 1),  # 23:59:59 the day before
        answered(utc(2026, 3, 10, 23), 1),  # 00:00 the day after
    ]
    report = sla_report(calls, first_day=day, last_day=day, by="hour")
    assert {p.period.label[11:16]: p.offered for p in report.periods if p.offered} == {
        "09:00": 1,
        "10:00": 1,
    }
    assert report.total.offered == 2


def test_the_total_adds_up_the_periods() -> None:
    day = date(2026, 3, 10)
    calls = [
        *ten_calls(),
        answered(utc(2026, 3, 10, 12), 50, talk_s=10),
        abandoned(utc(2026, 3, 10, 13), 3),
    ]
    report = sla_report(calls, first_day=day, last_day=day, by="hour")
    total = report.total
    assert total.period.label == "2026-03-10/2026-03-10"
    assert (total.offered, total.answered, total.short_abandons, total.lost) == (11, 6, 2, 1)
    assert total.sl12_pct == 100 * 2 / 9
    assert total.longest_wait_s == 50.0
    assert total.avg_wait_s == (160 + 50 + 3) / 11
    assert total.avg_talk_s == (480 + 10) / 6
    by_day = sla_report(calls, first_day=day, last_day=day, by="day")
    assert by_day.periods[0].to_dict() | {"period": None} == total.to_dict() | {"period": None}


def test_targets_come_from_the_customer_and_the_report_names_its_definitions() -> None:
    settings = ReportSettings(sl12_target=25.0, sl20_target=60.0, lost_target=12.0)
    report = sla_report(
        ten_calls(),
        first_day=date(2026, 3, 10),
        last_day=date(2026, 3, 10),
        by="hour",
        settings=settings,
    )
    h = next(p for p in report.periods if p.offered)
    assert (h.sl12_met, h.sl20_met, h.lost_met) == (True, False, True)
    out = report.to_dict()
    assert out["definition_version"] == 1 and report.definition_version == 1
    assert out["targets"] == {"sl12_pct": 25.0, "sl20_pct": 60.0, "lost_pct": 12.0}
    assert (out["timezone"], out["by"], out["from"], out["to"]) == (
        "Europe/Oslo",
        "hour",
        "2026-03-10",
        "2026-03-10",
    )
    assert out["periods"][9]["period"] == "2026-03-10T09:00+01:00"
    assert out["periods"][9]["start"] == "2026-03-10T08:00:00+00:00"


def test_same_calls_in_any_order_give_the_identical_report() -> None:
    rng = random.Random(5)
    t0 = utc(2026, 10, 24, 20)
    calls = [
        answered(t0 + rng.randrange(36_000_000) * S / 1000, rng.random() * 40) for _ in range(300)
    ]
    calls += [abandoned(t0 + rng.randrange(36_000) * S, rng.random() * 30) for _ in range(50)]
    shuffled = calls[:]
    rng.shuffle(shuffled)

    def report(calls: Iterable[CallFacts]) -> SlaReport:
        return sla_report(
            calls, first_day=date(2026, 10, 24), last_day=date(2026, 10, 26), by="hour"
        )

    first, again = report(calls), report(reversed(shuffled))
    assert first == again
    assert json.dumps(first.to_dict()) == json.dumps(again.to_dict())
    assert first.total.offered == 350


def test_call_facts_refuse_what_cannot_be_measured() -> None:
    at = utc(2026, 3, 10, 8)
    with pytest.raises(ValueError, match="timezone-aware"):
        CallFacts(datetime(2026, 3, 10, 8), None, None, Outcome.REJECTED)
    with pytest.raises(ValueError, match="needs answered_at"):
        CallFacts(at, None, at + S, Outcome.ANSWERED)
    with pytest.raises(ValueError, match="needs ended_at"):
        CallFacts(at, None, None, Outcome.ABANDONED)
    with pytest.raises(ValueError, match="needs overflowed_at"):
        CallFacts(at, None, at + S, Outcome.MESSAGE)
    with pytest.raises(ValueError, match="before arrived_at"):
        CallFacts(at, at - S, at + S, Outcome.ANSWERED)
    with pytest.raises(ValueError, match=r"ended_at .* is before answered_at"):
        CallFacts(at, at + 2 * S, at + S, Outcome.ANSWERED)
    with pytest.raises(ValueError, match="has no answered_at"):
        CallFacts(at, at + S, at + 2 * S, Outcome.ABANDONED)
    with pytest.raises(ValueError):
        CallFacts(at, None, at + S, "hung_up")  # type: ignore[arg-type]
    assert CallFacts(at, None, at + S, "abandoned").outcome is Outcome.ABANDONED  # type: ignore[arg-type]


def test_bad_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        periods(date(2026, 3, 2), date(2026, 3, 1), "day")
    with pytest.raises(ValueError, match="'hour' or 'day'"):
        periods(date(2026, 3, 1), date(2026, 3, 1), "week")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown time zone"):
        periods(date(2026, 3, 1), date(2026, 3, 1), "day", "Europe/Atlantis")


def test_another_time_zone_cuts_other_days() -> None:
    (day,) = periods(date(2026, 3, 10), date(2026, 3, 10), "day", "America/New_York")
    assert (day.start, day.end) == (utc(2026, 3, 10, 4), utc(2026, 3, 11, 4))
    report = sla_report(
        [answered(utc(2026, 3, 10, 3), 5)],
        first_day=date(2026, 3, 10),
        last_day=date(2026, 3, 10),
        by="day",
        timezone="America/New_York",
    )
    assert report.total.offered == 0  # 23:00 the day before in New York


def test_one_pass_gives_both_reports_and_each_day_is_the_sum_of_its_hours() -> None:
    # Three days across the autumn change (24 + 25 + 24 hours), and calls the day before.
    rng = random.Random(11)
    first, last = date(2026, 10, 24), date(2026, 10, 26)
    t0 = utc(2026, 10, 22, 22)
    at = [t0 + rng.randrange(4 * 24 * 3600 * 10**6) * S / 10**6 for _ in range(800)]
    calls = [answered(a, rng.random() * 40, talk_s=rng.random() * 300) for a in at[:500]]
    calls += [abandoned(a, rng.choice([12.0, 12.000001, rng.random() * 60])) for a in at[500:650]]
    calls += [message(a, rng.choice([0, 45]), record_s=20) for a in at[650:750]]
    calls += [not_offered(a, "rejected") for a in at[750:]]
    both = sla_reports(calls, first_day=first, last_day=last)
    hourly, daily = both["hour"], both["day"]
    assert hourly == sla_report(calls, first_day=first, last_day=last, by="hour")
    assert daily == sla_report(calls, first_day=first, last_day=last, by="day")
    assert (len(hourly.periods), len(daily.periods)) == (24 + 25 + 24, 3)
    assert hourly.total == daily.total
    counts = ("offered", "answered", "answered_within_12s", "answered_within_20s")
    counts += ("short_abandons", "lost", "messages")
    oslo = ZoneInfo("Europe/Oslo")
    for d in daily.periods:
        hours = [h for h in hourly.periods if d.period.start <= h.period.start < d.period.end]
        assert (hours[0].period.start, hours[-1].period.end) == (d.period.start, d.period.end)
        for name in counts:
            assert getattr(d, name) == sum(getattr(h, name) for h in hours), name
        assert d.longest_wait_s == max(h.longest_wait_s or 0.0 for h in hours)
        arrived = [c.arrived_at.astimezone(oslo).date().isoformat() for c in calls[:750]]
        assert d.offered == arrived.count(d.period.label)

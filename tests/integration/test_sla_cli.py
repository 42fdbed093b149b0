"""``televikar-pbx sla report`` and ``sla nightly``, run in-process against a migrated
database on SQLite and PostgreSQL (``db_url``), with calls written through the real
repositories (``add_calls`` of test_calls_list).

Fjordbakst AS (Europe/Oslo, UTC+1 in November) has this Saturday 2026-11-28, in local
time; every figure below is worked out by hand from it:

    #  arrived   outcome     wait   talk   counts as
    1  09:00:00  answered     5 s  120 s   within 12 s and 20 s
    2  09:10:00  answered    15 s   60 s   within 20 s
    3  09:20:00  abandoned    8 s          short abandon
    4  10:00:00  abandoned   30 s          lost
    5  10:30:00  message     45 s          message (capture 45 s..75 s)
    6  11:00:00  answered    12 s   30 s   within 12 s (on the limit) and 20 s
    7  23:59:59  (going on)                not ended: left out

Day: offered 6, answered 3, within 12 s 2, within 20 s 3, short abandons 1, lost 1,
messages 1; SL denominator 6 - 1 = 5: SL12 2/5 = 40 %, SL20 3/5 = 60 %, lost 1/6 =
16.7 %; waits 5+15+8+30+45+12 = 115 s, average 19.2 s, longest 45 s; talk
(120+60+30)/3 = 70 s. Nordlys AS has a call in the same hour, which must not count.

Every command runs at ``NOW`` (``TELEVIKAR_NOW``), 00:15 in Oslo on the night after that
Saturday, when the nightly job runs; a test that needs another instant sets it. What the
tests expect is computed from the same instant, never from the real clock.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from televikar_pbx.cli import main
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import SlaAggregateRecord, SlaRepository
from televikar_pbx.reports.sla_figures import CATCH_UP_DAYS, days_due
from tests.helpers import run_async
from tests.integration.test_calls_list import add_calls, at
from tests.integration.test_cli import Cli, free_port

OSLO = ZoneInfo("Europe/Oslo")
# The nightly job's usual time. Still 2026-11-28 in UTC: the previous local day is the
# 28th, where a job reading the UTC date would take the 27th.
NOW = dt.datetime(2026, 11, 29, 0, 15, tzinfo=OSLO)
FJORD, NORDLYS = 1, 2
DAY_CALLS: list[dict[str, Any]] = [
    {"customer": FJORD, "arrived": at("2026-11-28 08:00:00"), "caller": "4790000001",
     "agent": 1, "answered": 5, "ended": 125, "outcome": "answered"},
    {"customer": FJORD, "arrived": at("2026-11-28 08:10:00"), "caller": "4790000002",
     "agent": 1, "answered": 15, "ended": 75, "outcome": "answered"},
    {"customer": FJORD, "arrived": at("2026-11-28 08:20:00"), "caller": "4790000003",
     "ended": 8, "outcome": "abandoned"},
    {"customer": FJORD, "arrived": at("2026-11-28 09:00:00"), "caller": "4790000004",
     "ended": 30, "outcome": "abandoned"},
    {"customer": FJORD, "arrived": at("2026-11-28 09:30:00"), "caller": "4790000005",
     "queue_left": 45, "message": "/msgs/1/m.wav", "ended": 75, "outcome": "message"},
    {"customer": FJORD, "arrived": at("2026-11-28 10:00:00"), "caller": "4790000006",
     "agent": 1, "answered": 12, "ended": 42, "outcome": "answered"},
    {"customer": FJORD, "arrived": at("2026-11-28 22:59:59"), "caller": "4790000007"},
    {"customer": NORDLYS, "arrived": at("2026-11-28 08:05:00"), "caller": "4799999999",
     "agent": 1, "answered": 60, "ended": 90, "outcome": "answered"},
]  # fmt: skip
DAY = ("--from", "2026-11-28", "--to", "2026-11-28")
REPORT = ("sla", "report", "--customer", "Fjordbakst AS", *DAY)
CSV_HEADER = (
    "Periode;Tilbudt;Besvart;SL12 %;SL12 oppfylt;SL20 %;SL20 oppfylt;Tapt %;Tapt oppfylt;"
    "Korte avbrudd;Beskjeder;Snitt ventetid (s);Lengste ventetid (s);Snitt samtaletid (s);"
    "Definisjonsversjon"
)


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: Any) -> Cli:
    monkeypatch.setenv("TELEVIKAR_NOW", NOW.isoformat())
    monkeypatch.setenv("TELEVIKAR_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("TELEVIKAR_CONTROL_PORT", str(free_port()))  # nothing listens
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", db_url)
    cli = Cli(capsys, db_url)
    cli.ok("customers", "add", "Fjordbakst AS", "--display-name", "Fjordbakst",
           "--number", "4721000001")  # fmt: skip
    cli.ok("customers", "add", "Nordlys AS", "--display-name", "Nordlys", "--number", "4721000002")
    cli.ok("agents", "add", "Kari", "--endpoint", "agent1", "--customer", "1", "--customer", "2",
           "--secret", "s3cret-s3cret-s3cret")  # fmt: skip
    return cli


@pytest.fixture
def day(cli: Cli) -> Cli:
    add_calls(cli.db_url, DAY_CALLS)
    return cli


def stored(db_url: str, customer_id: int, by: str, first: dt.date, last: dt.date) -> list[Any]:
    async def read() -> list[SlaAggregateRecord]:
        engine = make_engine(db_url)
        try:
            repo = SlaRepository(make_sessionmaker(engine))
            return await repo.aggregates(customer_id, by, first, last)
        finally:
            await engine.dispose()

    return run_async(read)


def figures(records: list[SlaAggregateRecord]) -> list[tuple[Any, ...]]:
    """What must not change when a day is stored again (all but computed_at)."""
    return [
        (r.customer_id, r.by, r.period, r.period_start, r.period_end, r.local_date,
         r.definition_version, r.figures)
        for r in records
    ]  # fmt: skip


def oslo_yesterday(now: dt.datetime = NOW) -> dt.date:
    return now.astimezone(OSLO).date() - dt.timedelta(days=1)


# --- sla report --------------------------------------------------------------------------


def test_report_table_by_day(day: Cli) -> None:
    lines = day.ok(*REPORT).out.splitlines()
    assert lines[0] == "Fjordbakst AS: 2026-11-28 til 2026-11-28, per dag (Europe/Oslo)"
    assert lines[1].startswith("Mål: SL12 ≥ 70 %, SL20 ≥ 90 %, tapt ≤ 5 %")
    assert lines[3].split()[:4] == ["Periode", "Tilbudt", "Besvart", "SL12"]
    row = ["6", "3", "40,0", "nei", "60,0", "nei", "16,7", "nei", "1", "1", "19,2", "45,0",
           "70,0"]  # fmt: skip
    assert lines[4].split() == ["2026-11-28", *row]
    assert lines[5].split() == ["Totalt", *row]
    assert lines[-1] == "SLA-definisjoner versjon 1 (docs/metrics.md)."


def test_report_table_by_hour(day: Cli) -> None:
    lines = day.ok(*REPORT, "--by", "hour").out.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[4:-2]}
    assert len(rows) == 24 + 1
    assert rows["2026-11-28T09:00+01:00"] == [
        "3", "2", "50,0", "nei", "100,0", "ja", "0,0", "ja", "1", "0", "9,3", "15,0", "90,0",
    ]  # fmt: skip
    assert rows["2026-11-28T10:00+01:00"] == [
        "2", "0", "0,0", "nei", "0,0", "nei", "50,0", "nei", "0", "1", "37,5", "45,0", "-",
    ]  # fmt: skip
    assert rows["2026-11-28T11:00+01:00"] == [
        "1", "1", "100,0", "ja", "100,0", "ja", "0,0", "ja", "0", "0", "12,0", "12,0", "30,0",
    ]  # fmt: skip
    # The call still going on at 23:59:59 is not counted; an empty hour is not judged.
    assert rows["2026-11-28T23:00+01:00"] == ["0", "0", "-", "-", "-", "0", "0", "-", "-", "-"]
    assert rows["Totalt"][:2] == ["6", "3"]


def test_report_json(day: Cli) -> None:
    report = day.ok(*REPORT, "--format", "json").json()
    assert report["definition_version"] == 1 and report["customer_id"] == FJORD
    assert (report["timezone"], report["by"], report["from"], report["to"]) == (
        "Europe/Oslo", "day", "2026-11-28", "2026-11-28",
    )  # fmt: skip
    assert report["targets"] == {"sl12_pct": 70.0, "sl20_pct": 90.0, "lost_pct": 5.0}
    [period] = report["periods"]
    assert period == {
        "period": "2026-11-28",
        "start": "2026-11-27T23:00:00+00:00",
        "end": "2026-11-28T23:00:00+00:00",
        "offered": 6,
        "answered": 3,
        "answered_within_12s": 2,
        "answered_within_20s": 3,
        "short_abandons": 1,
        "lost": 1,
        "messages": 1,
        "sl12_pct": 40.0,
        "sl20_pct": 60.0,
        "lost_pct": 100 / 6,
        "avg_wait_s": 115 / 6,
        "longest_wait_s": 45.0,
        "avg_talk_s": 70.0,
        "sl12_met": False,
        "sl20_met": False,
        "lost_met": False,
    }
    assert report["total"] == {**period, "period": "2026-11-28/2026-11-28"}
    nordlys = day.ok("sla", "report", "--customer", "2", *DAY, "--format", "json").json()
    assert nordlys["total"]["offered"] == 1 and nordlys["total"]["longest_wait_s"] == 60.0


def test_report_csv(day: Cli) -> None:
    out = day.ok(*REPORT, "--format", "csv").out
    assert out.startswith("\ufeff" + CSV_HEADER + "\r\n")
    rows = list(csv.reader(io.StringIO(out.removeprefix("\ufeff"), newline=""), delimiter=";"))
    figures = ["6", "3", "40,0", "nei", "60,0", "nei", "16,7", "nei", "1", "1", "19,2",
               "45,0", "70,0", "1"]  # fmt: skip
    assert rows == [CSV_HEADER.split(";"), ["2026-11-28", *figures], ["Totalt", *figures]]


def test_report_targets_of_the_customer(day: Cli) -> None:
    day.ok("customers", "edit", "Fjordbakst AS", "--sl12", "40", "--sl20", "60", "--lost", "20")
    total = day.ok(*REPORT, "--format", "json").json()["total"]
    assert (total["sl12_met"], total["sl20_met"], total["lost_met"]) == (True, True, True)


def test_report_dst_day_has_25_hours(cli: Cli) -> None:
    argv = ("sla", "report", "--customer", "1", "--from", "2026-10-25", "--to", "2026-10-25")
    labels = [
        p["period"] for p in cli.ok(*argv, "--by", "hour", "--format", "json").json()["periods"]
    ]
    assert len(labels) == 25
    assert labels[2:4] == ["2026-10-25T02:00+02:00", "2026-10-25T02:00+01:00"]


def test_report_errors(cli: Cli) -> None:
    cli.fails("sla", "report", "--customer", "Ingen AS", *DAY, match="no customer 'Ingen AS'")
    cli.fails("sla", "report", "--customer", "1", "--from", "2026-13-01", "--to", "2026-12-01",
              match="--from: '2026-13-01' is not a date")  # fmt: skip
    cli.fails("sla", "report", "--customer", "1", "--from", "2026-12-02", "--to", "2026-12-01",
              match="--from 2026-12-02 is after --to 2026-12-01")  # fmt: skip
    cli.fails(*REPORT, "--by", "week", match="invalid choice: 'week'", code=2)


# --- sla nightly -------------------------------------------------------------------------


def test_nightly_stores_the_day_and_is_idempotent(
    day: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = day.ok("sla", "nightly", "--date", "2026-11-28").out
    assert out == "Fjordbakst AS: stored 2026-11-28\nNordlys AS: stored 2026-11-28\n"
    one = dt.date(2026, 11, 28)
    days = stored(day.db_url, FJORD, "day", one, one)
    hours = stored(day.db_url, FJORD, "hour", one, one)
    assert len(days) == 1 and len(hours) == 24
    assert days[0].definition_version == 1 and days[0].period == "2026-11-28"
    report = day.ok(*REPORT, "--format", "json").json()
    assert days[0].figures == report["periods"][0]
    by_hour = day.ok(*REPORT, "--by", "hour", "--format", "json").json()["periods"]
    assert [r.figures for r in hours] == by_hour
    assert days[0].period_start == dt.datetime(2026, 11, 27, 23, tzinfo=dt.UTC)
    assert stored(day.db_url, NORDLYS, "day", one, one)[0].figures["offered"] == 1

    # Re-run an hour later (each command's clock starts at TELEVIKAR_NOW).
    monkeypatch.setenv("TELEVIKAR_NOW", (NOW + dt.timedelta(hours=1)).isoformat())
    day.ok("sla", "nightly", "--date", "2026-11-28")
    again_days = stored(day.db_url, FJORD, "day", one, one)
    again_hours = stored(day.db_url, FJORD, "hour", one, one)
    assert figures(again_days) == figures(days) and figures(again_hours) == figures(hours)
    assert again_days[0].computed_at >= days[0].computed_at


def test_nightly_dst_day(cli: Cli) -> None:
    cli.ok("sla", "nightly", "--date", "2026-03-29")
    spring = dt.date(2026, 3, 29)
    assert len(stored(cli.db_url, FJORD, "hour", spring, spring)) == 23


def test_nightly_first_run_stores_the_previous_day(cli: Cli) -> None:
    yesterday = oslo_yesterday()
    out = cli.ok("sla", "nightly").out
    assert out == f"Fjordbakst AS: stored {yesterday}\nNordlys AS: stored {yesterday}\n"
    week = stored(cli.db_url, FJORD, "day", yesterday - dt.timedelta(days=7), yesterday)
    assert [r.local_date for r in week] == [yesterday]
    assert week[0].figures["offered"] == 0 and week[0].figures["sl12_pct"] is None


def test_nightly_catch_up_from_the_last_stored_day(cli: Cli) -> None:
    yesterday = oslo_yesterday()
    start = yesterday - dt.timedelta(days=3)
    noon = dt.datetime.combine(start + dt.timedelta(days=1), dt.time(12), tzinfo=OSLO)
    add_calls(cli.db_url, [{"customer": FJORD, "arrived": noon.astimezone(dt.UTC),
                            "caller": "4790000001", "agent": 1, "answered": 3, "ended": 63,
                            "outcome": "answered"}])  # fmt: skip
    cli.ok("sla", "nightly", "--date", str(start))
    out = cli.ok("sla", "nightly").out.splitlines()
    assert out[0] == (f"Fjordbakst AS: stored {start + dt.timedelta(days=1)}..{yesterday} (3 days)")
    rows = stored(cli.db_url, FJORD, "day", start, yesterday)
    assert [r.local_date for r in rows] == [start + dt.timedelta(days=n) for n in range(4)]
    assert [r.figures["offered"] for r in rows] == [0, 1, 0, 0]
    assert len(stored(cli.db_url, FJORD, "hour", start, yesterday)) == 4 * 24  # no DST change
    # Up to date: the previous day again (its calls may have ended late), nothing else.
    assert cli.ok("sla", "nightly").out.splitlines()[0] == f"Fjordbakst AS: stored {yesterday}"


def test_nightly_catch_up_is_capped(cli: Cli) -> None:
    yesterday = oslo_yesterday()
    cli.ok("sla", "nightly", "--date", str(yesterday - dt.timedelta(days=100)))
    first = yesterday - dt.timedelta(days=CATCH_UP_DAYS - 1)
    out = cli.ok("sla", "nightly").out.splitlines()[0]
    assert out == f"Fjordbakst AS: stored {first}..{yesterday} ({CATCH_UP_DAYS} days)"
    rows = stored(cli.db_url, FJORD, "day", yesterday - dt.timedelta(days=99), yesterday)
    assert len(rows) == CATCH_UP_DAYS


def test_nightly_just_before_and_at_local_midnight(
    day: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One second before midnight the 28th is still going on: the 27th is closed.
    monkeypatch.setenv("TELEVIKAR_NOW", "2026-11-28T23:59:59+01:00")
    assert day.ok("sla", "nightly").out.splitlines()[0] == "Fjordbakst AS: stored 2026-11-27"
    # At midnight the 28th is over, and is stored with its calls.
    monkeypatch.setenv("TELEVIKAR_NOW", "2026-11-29T00:00:00+01:00")
    assert day.ok("sla", "nightly").out.splitlines()[0] == "Fjordbakst AS: stored 2026-11-28"
    one = dt.date(2026, 11, 28)
    assert stored(day.db_url, FJORD, "day", one, one)[0].figures["offered"] == 6


def test_nightly_across_the_dst_changes(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    # The night the clocks go back: at 00:15 (+02:00) it closes the 24-hour Saturday ...
    monkeypatch.setenv("TELEVIKAR_NOW", "2026-10-25T00:15:00+02:00")
    assert cli.ok("sla", "nightly").out.splitlines()[0] == "Fjordbakst AS: stored 2026-10-24"
    # ... and the next night (+01:00 now) the 25-hour Sunday.
    monkeypatch.setenv("TELEVIKAR_NOW", "2026-10-26T00:15:00+01:00")
    assert cli.ok("sla", "nightly").out.splitlines()[0] == "Fjordbakst AS: stored 2026-10-25"
    autumn = dt.date(2026, 10, 25)
    hours = stored(cli.db_url, FJORD, "hour", autumn, autumn)
    assert len(hours) == 25
    assert [h.period for h in hours[2:4]] == ["2026-10-25T02:00+02:00", "2026-10-25T02:00+01:00"]
    # After the spring change (+02:00 again), the 23-hour Sunday.
    monkeypatch.setenv("TELEVIKAR_NOW", "2027-03-29T00:15:00+02:00")
    cli.ok("sla", "nightly", "--no-send")
    spring = dt.date(2027, 3, 28)
    assert len(stored(cli.db_url, FJORD, "hour", spring, spring)) == 23


def test_a_bad_now_is_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEVIKAR_NOW", "2026-11-29 00:15")
    result = cli("sla", "nightly")
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "televikar-pbx: TELEVIKAR_NOW needs a UTC offset, e.g. 2026-11-29 00:15+01:00\n"
    )
    monkeypatch.delenv("TELEVIKAR_NOW")
    assert stored(cli.db_url, FJORD, "day", NOW.date() - dt.timedelta(days=99), NOW.date()) == []


def test_days_due() -> None:
    d = dt.date(2026, 11, 28)
    assert days_due(None, d) == [d]
    assert days_due(d, d) == [d]
    assert days_due(d + dt.timedelta(days=5), d) == [d]  # stored ahead (--date): still d
    assert days_due(d - dt.timedelta(days=3), d) == [d - dt.timedelta(days=n) for n in (2, 1, 0)]
    assert len(days_due(d - dt.timedelta(days=400), d)) == CATCH_UP_DAYS
    assert days_due(d - dt.timedelta(days=400), d, limit=2) == [d - dt.timedelta(days=1), d]


def test_nightly_errors(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.fails("sla", "nightly", "--date", "28.11.2026", match="--date: '28.11.2026' is not a date")
    closed = f"postgresql+asyncpg://televikar:secret@127.0.0.1:{free_port()}/televikar"
    monkeypatch.setenv("TELEVIKAR_DATABASE_URL", closed)
    for argv in (("sla", "nightly"), REPORT):
        result = cli(*argv)
        assert (result.code, result.out) == (1, "")
        assert result.err.startswith("televikar-pbx: database postgresql+asyncpg://televikar:***@")
        assert result.err.count("\n") == 1 and "secret" not in result.err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sla", "nightly", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: televikar-pbx sla nightly")

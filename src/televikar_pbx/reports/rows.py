"""The rows of the report's tables, as text with a style, in the report's language.

Numbers are formatted by the functions of ``sla report`` and ``calls list`` (one decimal,
half to even for shares and averages; waits and talk rounded up to the tenth, so that
``12,0`` is within 12 s), then given the language's decimal point.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from televikar_pbx.db.calls_repo import CallLogEntry
from televikar_pbx.domain.outcomes import Outcome
from televikar_pbx.domain.sla import PeriodFigures, SlaReport
from televikar_pbx.reports.call_log import (
    caller_number,
    cells,
    local_time,
    message_cell,
    outcome_label,
)
from televikar_pbx.reports.labels import Texts
from televikar_pbx.reports.sla_table import decimal, longest

EMPTY = "\N{EN DASH}"
INK = (30, 30, 30)
MUTED = (100, 100, 100)
MET = (22, 110, 50)
NOT_MET = (176, 30, 30)
_OUTCOMES = frozenset(o.value for o in Outcome)


@dataclass(frozen=True, slots=True)
class Style:
    bold: bool = False
    colour: tuple[int, int, int] = INK


PLAIN = Style()
BOLD = Style(bold=True)
Cell = tuple[str, Style]


def _secs(text: str | None, words: Texts) -> str:
    return EMPTY if text is None else f"{words.number(text)} s"


def _share(pct: float | None, part: int, whole: int, words: Texts) -> str:
    shown = decimal(pct)
    if shown is None:
        return EMPTY
    return f"{words.percent(words.number(shown))} ({words.of.format(part=part, whole=whole)})"


def _judgement(met: bool | None, words: Texts) -> Cell:
    if met is None:
        return words.not_judged, Style(colour=MUTED)
    return (words.met, Style(colour=MET)) if met else (words.not_met, Style(True, NOT_MET))


def summary_rows(report: SlaReport, words: Texts) -> list[list[Cell]]:
    """The whole period: figure, result, target, met or not."""
    t = report.total
    in_sl = t.offered - t.short_abandons

    def row(name: str, value: str) -> list[Cell]:
        return [(name, PLAIN), (value, PLAIN), (EMPTY, Style(colour=MUTED)), ("", PLAIN)]

    def judged(name: str, value: str, target: str, met: bool | None) -> list[Cell]:
        return [(name, PLAIN), (value, PLAIN), (target, PLAIN), _judgement(met, words)]

    return [
        row(words.offered, str(t.offered)),
        row(words.answered, str(t.answered)),
        judged(
            words.sl12,
            _share(t.sl12_pct, t.answered_within_12s, in_sl, words),
            f"≥ {words.target(report.sl12_target)}",
            t.sl12_met,
        ),
        judged(
            words.sl20,
            _share(t.sl20_pct, t.answered_within_20s, in_sl, words),
            f"≥ {words.target(report.sl20_target)}",
            t.sl20_met,
        ),
        judged(
            words.lost,
            _share(t.lost_pct, t.lost, t.offered, words),
            f"≤ {words.target(report.lost_target)}",
            t.lost_met,
        ),
        row(words.short_abandons, str(t.short_abandons)),
        row(words.messages, str(t.messages)),
        row(words.avg_wait, _secs(decimal(t.avg_wait_s), words)),
        row(words.longest_wait, _secs(longest(t.longest_wait_s), words)),
        row(words.avg_talk, _secs(decimal(t.avg_talk_s), words)),
    ]


def period_label(figures: PeriodFigures, report: SlaReport, words: Texts) -> str:
    """``09:00\N{EN DASH}10:00`` (one day), ``2026-11-28 09:00`` or ``lør 2026-11-28``; the
    hour repeated in autumn carries its offset (``02:00\N{EN DASH}03:00 +02:00``)."""
    if figures is report.total:
        return words.total
    zone = ZoneInfo(report.timezone)
    if report.by == "day":
        start = figures.period.start.astimezone(zone)
        return f"{words.weekdays[start.weekday()]} {start:%Y-%m-%d}"
    date, time = local_time(figures.period.start, zone)
    hour, offset = time[:5], time[8:]  # "02:00", " +02:00" in the repeated hour only
    if report.first_day != report.last_day:
        return f"{date} {hour}{offset}"
    # The end on the start's clock: the first 02:00 hour in autumn ends at 03:00 +02:00.
    clock = figures.period.start.astimezone(zone).utcoffset()
    assert clock is not None  # a ZoneInfo always has an offset
    end = figures.period.end.astimezone(dt.timezone(clock))
    return f"{hour}\N{EN DASH}{end:%H:%M}{offset}"


def period_row(figures: PeriodFigures, report: SlaReport, words: Texts) -> list[Cell]:
    """One period (or the total, in bold): each share marked ✓ met or ✗ not met."""
    total = figures is report.total
    style = BOLD if total else PLAIN

    def plain(text: str | None) -> Cell:
        return (EMPTY, Style(total, MUTED)) if text is None else (words.number(text), style)

    def judged(pct: float | None, met: bool | None) -> Cell:
        shown = decimal(pct)
        if shown is None or met is None:
            return EMPTY, Style(total, MUTED)
        mark, colour = ("✓", MET) if met else ("✗", NOT_MET)
        return f"{words.number(shown)} {mark}", Style(total, colour)

    return [
        (period_label(figures, report, words), style),
        plain(str(figures.offered)),
        plain(str(figures.answered)),
        judged(figures.sl12_pct, figures.sl12_met),
        judged(figures.sl20_pct, figures.sl20_met),
        judged(figures.lost_pct, figures.lost_met),
        plain(str(figures.short_abandons)),
        plain(str(figures.messages)),
        plain(decimal(figures.avg_wait_s)),
        plain(longest(figures.longest_wait_s)),
        plain(decimal(figures.avg_talk_s)),
    ]


def call_row(entry: CallLogEntry, zone: ZoneInfo, words: Texts) -> list[Cell]:
    """The row of ``calls list`` (``cells``), its labels and numbers in ``words``."""
    row = [cell or "" for cell in cells(entry, zone)]
    if caller_number(entry) is None:
        row[2] = words.withheld
    outcome = entry.call.outcome
    if outcome is None:
        row[5] = words.not_ended
    elif outcome in _OUTCOMES:
        row[5] = words.outcomes[Outcome(outcome)]
    else:  # a value newer than the labels: shown as stored
        row[5] = outcome_label(entry)
    row[4], row[7] = words.number(row[4]), words.number(row[7])
    row[8] = message_cell(entry, words.message_kinds) or ""
    row[8] = message_cell(entry, words.message_kinds) or ""
    return [(cell, PLAIN) for cell in row]

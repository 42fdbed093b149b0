"""``sla report`` as the customer reads it: a Norwegian table and CSV of the figures.

Percentages and seconds with one decimal and a decimal comma, each service level and the
lost share marked ``ja``/``nei`` against its target. The JSON is ``SlaReport.to_dict()``:
English keys, exact figures. The PDF (``reports.pdf``) uses the same number formats.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.sla import PeriodFigures, SlaReport
from televikar_pbx.reports import table
from televikar_pbx.reports.call_log import seconds

TOTAL = "Totalt"
HEADERS = (
    "Periode",
    "Tilbudt",
    "Besvart",
    "SL12 %",
    "SL20 %",
    "Tapt %",
    "Korte avbrudd",
    "Beskjeder",
    "Snitt ventetid (s)",
    "Lengste ventetid (s)",
    "Snitt samtaletid (s)",
)
CSV_HEADERS = (
    "Periode",
    "Tilbudt",
    "Besvart",
    "SL12 %",
    "SL12 oppfylt",
    "SL20 %",
    "SL20 oppfylt",
    "Tapt %",
    "Tapt oppfylt",
    "Korte avbrudd",
    "Beskjeder",
    "Snitt ventetid (s)",
    "Lengste ventetid (s)",
    "Snitt samtaletid (s)",
    "Definisjonsversjon",
)


def decimal(value: float | None) -> str | None:
    """One decimal with a decimal comma (rounded half to even); None stays empty."""
    return None if value is None else f"{value:.1f}".replace(".", ",")


def longest(value: float | None) -> str | None:
    """The longest wait rounded up to the tenth, as in the call log (12,0 is within 12 s)."""
    return None if value is None else seconds(dt.timedelta(seconds=value))


def judged(value: float | None, met: bool | None) -> str:
    shown = decimal(value)
    if shown is None:
        return "-"
    return f"{shown} {'ja' if met else 'nei'}"


def _yes_no(met: bool | None) -> str | None:
    return None if met is None else ("ja" if met else "nei")


def _label(figures: PeriodFigures, report: SlaReport) -> str:
    return TOTAL if figures is report.total else figures.period.label


def _table_row(figures: PeriodFigures, report: SlaReport) -> list[str]:
    return [
        _label(figures, report),
        str(figures.offered),
        str(figures.answered),
        judged(figures.sl12_pct, figures.sl12_met),
        judged(figures.sl20_pct, figures.sl20_met),
        judged(figures.lost_pct, figures.lost_met),
        str(figures.short_abandons),
        str(figures.messages),
        decimal(figures.avg_wait_s) or "-",
        longest(figures.longest_wait_s) or "-",
        decimal(figures.avg_talk_s) or "-",
    ]


def report_text(customer: Customer, report: SlaReport) -> str:
    def target(value: float) -> str:
        return f"{value:g}".replace(".", ",")

    periods: Iterable[PeriodFigures] = (*report.periods, report.total)
    lines = [
        f"{customer.name}: {report.first_day} til {report.last_day}, per "
        f"{'time' if report.by == 'hour' else 'dag'} ({report.timezone})",
        f"Mål: SL12 ≥ {target(report.sl12_target)} %, SL20 ≥ {target(report.sl20_target)} %, "
        f"tapt ≤ {target(report.lost_target)} % (ja: oppfylt, nei: ikke oppfylt)",
        "",
        table.table(HEADERS, (_table_row(f, report) for f in periods)),
        "",
        f"SLA-definisjoner versjon {report.definition_version} (docs/metrics.md).",
    ]
    return "\n".join(lines)


def csv_rows(report: SlaReport) -> list[Sequence[str | None]]:
    return [
        (
            _label(f, report),
            str(f.offered),
            str(f.answered),
            decimal(f.sl12_pct),
            _yes_no(f.sl12_met),
            decimal(f.sl20_pct),
            _yes_no(f.sl20_met),
            decimal(f.lost_pct),
            _yes_no(f.lost_met),
            str(f.short_abandons),
            str(f.messages),
            decimal(f.avg_wait_s),
            longest(f.longest_wait_s),
            decimal(f.avg_talk_s),
            str(report.definition_version),
        )
        for f in (*report.periods, report.total)
    ]

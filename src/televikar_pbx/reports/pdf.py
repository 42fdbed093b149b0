"""A customer's SLA report as a PDF (fpdf2): the figures of ``sla report`` and the call
log of ``calls list``, for reading and printing.

Page 1 (A4 portrait) has the title, the whole period against the targets and the
SL12/SL20 chart; then comes the hour-by-hour or day-by-day table (on page 1 too if it
fits), then the call log, in landscape so that names have room. Tables repeat their
header on every page; every page has "Side X av Y". Text is set in matplotlib's DejaVu
Sans (æøå and most scripts): a character the font lacks, or that cannot be printed,
becomes U+FFFD, and a cell too long for its column is cut with "…", so no caller name
can break the layout.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Container, Sequence
from typing import cast
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.fonts import TTFFont

from televikar_pbx.db.calls_repo import CallLogEntry
from televikar_pbx.domain.directory import Customer
from televikar_pbx.domain.sla import SlaReport
from televikar_pbx.reports.chart import font_path, sl_chart_png
from televikar_pbx.reports.labels import Texts, texts
from televikar_pbx.reports.rows import (
    INK,
    MUTED,
    Cell,
    call_row,
    period_row,
    summary_rows,
)

FONT = "dejavu"
SIZE = 7.5  # pt, table text
HEADING_FILL = (222, 230, 242)
STRIPE = (244, 246, 249)
RULE = (190, 196, 204)
PADDING = 1.2  # mm left and right of a cell's text
ROW = 5.0  # mm, one table row
CHART_HEIGHT = 78.0  # mm

# Column widths in mm: A4 portrait has 180 mm between the margins, landscape 267 mm.
SUMMARY_WIDTHS = (80.0, 42.0, 22.0, 36.0)
CALL_WIDTHS = (19.0, 25.0, 31.0, 48.0, 20.0, 23.0, 32.0, 23.0, 46.0)
CALL_RIGHT = (4, 7)  # wait and talk


class Document(FPDF):
    """A4 with the report's running title above and the page number below each page."""

    def __init__(self, words: Texts, running_title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.words = words
        self.set_margins(15, 18, 15)
        self.set_auto_page_break(True, margin=16)
        self.add_font(FONT, "", font_path())
        self.add_font(FONT, "B", font_path(bold=True))
        font = self.fonts[FONT]
        self.glyphs = frozenset(font.cmap) if isinstance(font, TTFFont) else frozenset()
        self.running_title = self.clean(running_title)

    def header(self) -> None:
        if self.page_no() > 1:
            self.set_xy(self.l_margin, 8)
            self._small(self.running_title)
        self.set_xy(self.l_margin, self.t_margin)

    def footer(self) -> None:
        self.set_xy(self.l_margin, -11)
        self._small(self.running_title)
        self.set_xy(self.l_margin, -11)
        self.cell(self.epw, 4, self.words.page.format(page=self.page_no(), pages="{nb}"), align="R")

    def _small(self, text: str) -> None:
        self.set_font(FONT, "", 7)
        self.set_text_color(*MUTED)
        self.cell(self.epw * 0.8, 4, self.fit(text, self.epw * 0.8))
        self.set_text_color(*INK)

    def clean(self, text: str) -> str:
        """``text`` with every character the font cannot draw (or that does not print,
        such as a lone surrogate from undecodable bytes) replaced by U+FFFD."""
        glyphs = self.glyphs
        return "".join(
            c if c.isprintable() and ord(c) in glyphs else "\N{REPLACEMENT CHARACTER}" for c in text
        )

    def fit(self, text: str, width: float) -> str:
        """``text`` cleaned and cut with "…" to fit ``width`` mm in the current font."""
        text = self.clean(text)
        if self.get_string_width(text) <= width:
            return text
        low, high = 0, len(text)  # the longest prefix that fits with the ellipsis
        while low < high:
            middle = (low + high + 1) // 2
            if self.get_string_width(text[:middle] + "…") <= width:
                low = middle
            else:
                high = middle - 1
        return text[:low].rstrip() + "…"

    def heading(self, text: str, size: float = 11.5) -> None:
        self.set_font(FONT, "B", size)
        self.cell(self.epw, 7, self.fit(text, self.epw), new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def note(self, text: str) -> None:
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*MUTED)
        self.multi_cell(self.epw, 3.6, self.clean(text), align="L", new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(*INK)

    def grid(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[Cell]],
        widths: Sequence[float],
        right: Container[int] = (),
    ) -> None:
        """A table with its header on each page it runs onto; a cell is one line, cut to
        fit its column. (fpdf2's ``table()`` wraps every cell: ten times slower.)"""
        aligns = ["R" if i in right else "L" for i in range(len(widths))]
        self.set_draw_color(*RULE)
        self.set_line_width(0.2)
        self.c_margin = PADDING
        if self.will_page_break(self._heading(headers, widths, aligns, dry_run=True) + 2 * ROW):
            self.add_page(same=True)
        self._heading(headers, widths, aligns)
        for n, row in enumerate(rows):
            if self.will_page_break(ROW):
                self.add_page(same=True)
                self._heading(headers, widths, aligns)
            x, y = self.l_margin, self.y
            if n % 2:
                self.set_fill_color(*STRIPE)
                self.rect(x, y, sum(widths), ROW, style="F")
            for (text, style), width, align in zip(row, widths, aligns, strict=True):
                self.set_font(FONT, "B" if style.bold else "", SIZE)
                self.set_text_color(*style.colour)
                self.set_xy(x, y)
                self.cell(width, ROW, self.fit(text, width - 2 * PADDING), align=align)
                x += width
            self.line(self.l_margin, y + ROW, x, y + ROW)
            self.set_xy(self.l_margin, y + ROW)
        self.set_text_color(*INK)

    def _heading(
        self,
        headers: Sequence[str],
        widths: Sequence[float],
        aligns: Sequence[str],
        *,
        dry_run: bool = False,
    ) -> float:
        """The header row, its words wrapped within their column, at the bottom; its height."""
        self.set_font(FONT, "B", SIZE - 0.5)
        line = 3.2
        lines = [
            cast(
                list[str],
                self.multi_cell(width, line, self.clean(text), dry_run=True, output="LINES"),
            )
            for text, width in zip(headers, widths, strict=True)
        ]
        height = max(len(cell) for cell in lines) * line + 2.4
        if dry_run:
            return height
        x, y = self.l_margin, self.y
        self.set_fill_color(*HEADING_FILL)
        self.rect(x, y, sum(widths), height, style="F")
        for cell, width, align in zip(lines, widths, aligns, strict=True):
            self.set_xy(x, y + height - 1.2 - len(cell) * line)
            self.multi_cell(width, line, "\n".join(cell), align=align)
            x += width
        self.line(self.l_margin, y + height, x, y + height)
        self.set_xy(self.l_margin, y + height)
        return height

    def widths_for(
        self, headers: Sequence[str], rows: Sequence[Sequence[Cell]], first_max: float
    ) -> list[float]:
        """Widths that fit every header word and cell; the first column takes at most
        ``first_max`` mm, the other columns share what is left over."""
        pad = 2 * PADDING + 0.6
        self.set_font(FONT, "B", SIZE - 0.5)
        need = [max(self.get_string_width(w) for w in self.clean(h).split()) + pad for h in headers]
        self.set_font(FONT, "B", SIZE)  # the widest a cell can be: bold
        for row in rows:
            for i, (text, _) in enumerate(row):
                need[i] = max(need[i], self.get_string_width(self.clean(text)) + pad)
        need[0] = min(need[0], first_max)
        spare = max(0.0, self.epw - sum(need)) / (len(need) - 1)
        widths = [need[0], *(n + spare for n in need[1:])]
        scale = min(1.0, self.epw / sum(widths))
        return [w * scale for w in widths]


def render_sla_pdf(
    customer: Customer,
    report: SlaReport,
    calls: Sequence[CallLogEntry],
    *,
    language: str = "nb",
    generated_at: dt.datetime,
) -> bytes:
    """The PDF of ``report`` for ``customer`` with its call log ``calls`` (as
    ``CallRepository.calls_between`` returns them), in ``language`` ``nb`` or ``en``.

    ``generated_at`` (timezone-aware) is printed in the customer's time zone and is the
    PDF's creation date, so the same arguments give the same bytes.
    """
    words = texts(language)
    if generated_at.utcoffset() is None:
        raise ValueError(f"generated_at must be timezone-aware, got {generated_at!r}")
    zone = ZoneInfo(customer.timezone)
    dates = str(report.first_day)
    if report.last_day != report.first_day:
        dates += f" \N{EN DASH} {report.last_day}"
    pdf = Document(words, f"{words.title} · {customer.display_name} · {dates}")
    pdf.set_creation_date(generated_at)
    pdf.set_title(pdf.clean(f"{words.title}: {customer.display_name}, {dates}"))
    pdf.set_lang("nb-NO" if language == "nb" else "en")
    pdf.set_creator("televikar-pbx")
    pdf.add_page()

    pdf.set_font(FONT, "B", 17)
    pdf.cell(pdf.epw, 9, pdf.fit(f"{words.title}: {customer.display_name}", pdf.epw))
    pdf.ln(9)
    pdf.set_font(FONT, "", 10.5)
    by = words.by_hour if report.by == "hour" else words.by_day
    pdf.cell(pdf.epw, 6, f"{words.period.format(dates=dates)}, {by}", new_x="LMARGIN", new_y="NEXT")
    when = f"{generated_at.astimezone(zone):%Y-%m-%d %H:%M}"
    about = (
        words.zone.format(zone=report.timezone),
        words.definitions.format(version=report.definition_version),
        words.generated.format(when=when),
    )
    pdf.note(" · ".join(about))
    pdf.ln(5)

    pdf.heading(words.summary)
    pdf.grid(words.summary_headers, summary_rows(report, words), SUMMARY_WIDTHS, right=(1,))
    pdf.ln(2)
    pdf.note(words.notes)
    pdf.ln(5)

    if pdf.will_page_break(CHART_HEIGHT + 16):
        pdf.add_page()
    pdf.heading(words.chart[report.by == "day"])
    png = sl_chart_png(report, words, width_mm=pdf.epw, height_mm=CHART_HEIGHT)
    pdf.image(io.BytesIO(png), x=pdf.l_margin, w=pdf.epw, h=CHART_HEIGHT)
    pdf.note(words.chart_note)

    rows = [period_row(f, report, words) for f in (*report.periods, report.total)]
    # A table that fits in what is left of the page stays with the chart.
    if pdf.will_page_break(ROW * (len(rows) + 3) + 20):
        pdf.add_page()
    else:
        pdf.ln(6)
    pdf.heading(words.table[report.by == "day"])
    widths = pdf.widths_for(words.table_headers, rows, first_max=40)
    pdf.grid(words.table_headers, rows, widths, right=range(1, len(widths)))
    pdf.ln(2)
    pdf.note(words.table_note)

    pdf.add_page(orientation="L")
    pdf.heading(words.call_log)
    pdf.note(words.call_log_note.format(count=len(calls), zone=customer.timezone))
    pdf.ln(2)
    if calls:
        call_rows = [call_row(entry, zone, words) for entry in calls]
        pdf.grid(words.call_headers, call_rows, CALL_WIDTHS, right=CALL_RIGHT)
    else:
        pdf.set_font(FONT, "", 9)
        pdf.cell(pdf.epw, 6, words.no_calls)
    return bytes(pdf.output())

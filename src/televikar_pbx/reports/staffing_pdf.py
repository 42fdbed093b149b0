"""``staffing plan --format pdf``: the plan as a document for whoever makes the rota.

Page 1 (A4 portrait): the range, the history it was learnt from, agent hours and the
peak, and the chart of agents per hour of the range (:func:`agents_chart_png`); then the
table of every hour, its header repeated on each page. Same document frame and fonts as
the SLA report (``reports.pdf``), in English: the plan is the operator's, not a customer's.
"""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

from televikar_pbx.domain.staffing.plan import HourPlan
from televikar_pbx.reports.chart import GRID_COLOUR, SL12_COLOUR, font_path, matplotlib_home
from televikar_pbx.reports.labels import texts
from televikar_pbx.reports.pdf import CHART_HEIGHT, FONT, Document
from televikar_pbx.reports.rows import BOLD, MUTED, PLAIN, Cell, Style
from televikar_pbx.reports.staffing import (
    MEASURE_HEADERS,
    PLAN_HEADERS,
    StaffingPlan,
    measured,
    plan_rows,
)

TITLE = "Staffing plan"


def agents_chart_png(
    hours: tuple[HourPlan, ...], timezone: str, *, width_mm: float, height_mm: float, dpi: int = 200
) -> bytes:
    """Agents needed per hour as steps, the expected calls per hour as a thin line on a
    second axis; a tick at each local midnight (the weekday and date)."""
    matplotlib_home()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    font = FontProperties(fname=font_path(), size=7)
    bold = FontProperties(fname=font_path(bold=True), size=7)
    figure = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    xs = list(range(len(hours)))
    agents = [h.agents for h in hours]
    axes.fill_between(xs, agents, step="post", color=SL12_COLOUR, alpha=0.25, linewidth=0)
    axes.step(xs, agents, where="post", color=SL12_COLOUR, linewidth=1.3, label="Agents needed")
    calls = axes.twinx()
    calls.plot([x + 0.5 for x in xs], [h.offered for h in hours], color="#808080",
               linewidth=0.8, label="Calls per hour (right)")  # fmt: skip
    zone = ZoneInfo(timezone)
    starts = [h.period.start.astimezone(zone) for h in hours]
    midnights = [i for i, s in enumerate(starts) if s.hour == 0 and not s.fold]
    every = max(1, len(midnights) // 14 + 1)
    ticks = (
        midnights[::every]
        if len(midnights) > 1
        else [i for i, s in enumerate(starts) if s.hour % 3 == 0]
    )
    labels = [f"{starts[i]:%a %d.%m}" if len(midnights) > 1 else f"{starts[i]:%H}" for i in ticks]
    axes.set_xticks(ticks, labels)
    axes.set_xlim(0, max(len(xs), 1))
    axes.set_ylim(0, max(agents, default=0) * 1.15 + 1)
    calls.set_ylim(0, max((h.offered for h in hours), default=0) * 1.15 + 1)
    for label in (*axes.get_xticklabels(), *axes.get_yticklabels(), *calls.get_yticklabels()):
        label.set_fontproperties(font)
    axes.set_ylabel("agents", fontproperties=font)
    calls.set_ylabel("calls per hour", fontproperties=font, color="#606060")
    axes.grid(axis="y", color=GRID_COLOUR, linewidth=0.6)
    axes.grid(axis="x", color=GRID_COLOUR, linewidth=0.4)
    for side in ("top",):
        axes.spines[side].set_visible(False)
        calls.spines[side].set_visible(False)
    handles = axes.get_legend_handles_labels()[0] + calls.get_legend_handles_labels()[0]
    axes.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2,
                frameon=False, prop=bold, borderaxespad=0.0)  # fmt: skip
    figure.subplots_adjust(left=0.07, right=0.92, top=0.88, bottom=0.12)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=dpi, metadata={"Software": None})
    return out.getvalue()


def render_staffing_pdf(result: StaffingPlan, *, generated_at: dt.datetime) -> bytes:
    """The plan as a PDF; ``generated_at`` (aware) is printed and is the creation date,
    so the same plan gives the same bytes."""
    if generated_at.utcoffset() is None:
        raise ValueError(f"generated_at must be timezone-aware, got {generated_at!r}")
    dates = str(result.first_day)
    if result.last_day != result.first_day:
        dates += f" \N{EN DASH} {result.last_day}"
    pdf = Document(texts("en"), f"{TITLE} · {dates}")
    pdf.set_creation_date(generated_at)
    pdf.set_title(f"{TITLE}, {dates}")
    pdf.set_lang("en")
    pdf.set_creator("televikar-pbx")
    pdf.add_page()
    pdf.set_font(FONT, "B", 17)
    pdf.cell(pdf.epw, 9, f"{TITLE}: {dates}")
    pdf.ln(10)
    zone = ZoneInfo(result.timezone)
    hours = result.hours
    agent_hours = sum(h.agents for h in hours)
    peak = max((h.agents for h in hours), default=0)
    pdf.note(
        f"Local hours of {result.timezone}. Learnt from the calls of "
        f"{result.history_start:%Y-%m-%d} to {result.history_end - dt.timedelta(days=1):%Y-%m-%d}. "
        f"Generated {generated_at.astimezone(zone):%Y-%m-%d %H:%M}."
    )
    pdf.ln(3)
    pdf.set_font(FONT, "", 10.5)
    pdf.cell(pdf.epw, 6, f"Agent hours: {agent_hours} · most agents at once: {peak}",
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    if result.unserved:
        pdf.note("No agent serves " + ", ".join(result.unserved) + ": planned as served by all.")
    pdf.ln(4)
    pdf.heading("Agents needed per hour")
    png = agents_chart_png(hours, result.timezone, width_mm=pdf.epw, height_mm=CHART_HEIGHT)
    pdf.image(io.BytesIO(png), x=pdf.l_margin, w=pdf.epw, h=CHART_HEIGHT)
    pdf.note(
        "Each hour: the fewest agents with whom every customer's expected SL12, SL20 and "
        "lost share meet its targets (Erlang A, see docs/staffing.md for the model and "
        "where it is wrong). The grey line: the calls expected per hour."
    )
    pdf.ln(4)
    pdf.heading("Hour by hour")
    rows: list[list[Cell]] = []
    for row, hour in zip(plan_rows(result), hours, strict=True):
        quiet = hour.figures is None
        rows.append(
            [
                (text, Style(colour=MUTED) if quiet else (BOLD if i == 4 else PLAIN))
                for i, text in enumerate(row)
            ]
        )
    widths = pdf.widths_for(PLAN_HEADERS, rows, first_max=40)
    pdf.grid(PLAN_HEADERS, rows, widths, right=range(1, 9))
    pdf.ln(2)
    pdf.note(
        "Calls: expected offered calls in the hour. Handle: talk + wrap-up. Patience: the "
        "callers' mean patience (exponential, estimated from censored waits). SL and lost "
        "as docs/metrics.md defines them, expected with the agents shown. Binding customer: "
        "of those who would miss a target with one agent fewer, the one that would miss it "
        "by most."
    )
    pdf.ln(5)
    pdf.heading("Measured in the history")
    measures = [[(cell, BOLD if row[0] == "All customers" else PLAIN) for cell in row]
                for row in measured(result)]  # fmt: skip
    widths = pdf.widths_for(MEASURE_HEADERS, measures, first_max=40)
    pdf.grid(MEASURE_HEADERS, measures, widths, right=range(1, len(MEASURE_HEADERS)))
    pdf.ln(2)
    pdf.note(
        "Per customer, over the hours we answered it: calls per week, mean handle time, "
        "abandons, and the callers' patience: the mean of the exponential fit Erlang A uses "
        "(abandons ÷ seconds waited), and the share gone (hung up) by 12, 20 and 45 s, "
        "first by Kaplan-Meier from the censored waits, then by the exponential fit. Where "
        "the two differ, patience is not exponential (docs/staffing.md)."
    )
    return bytes(pdf.output())

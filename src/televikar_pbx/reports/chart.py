"""The SL12/SL20 chart of a report: a PNG drawn by matplotlib's Agg renderer in memory.

matplotlib is imported only when a chart is drawn (it takes a second to load), after
:func:`matplotlib_home` has pointed its config and font cache away from the user's
home. The chart uses matplotlib's object API (a ``Figure`` with its own Agg canvas), not
pyplot: no global figure state, nothing shown, nothing left open.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import stat
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from televikar_pbx.domain.sla import PeriodFigures, SlaReport
from televikar_pbx.reports.labels import Texts

SL12_COLOUR = "#1f5fa8"
SL20_COLOUR = "#d9731a"
GRID_COLOUR = "#d0d0d0"
# At most this many labels on the time axis; more periods get every n-th one.
MAX_LABELS = 32


def matplotlib_home() -> None:
    """Give matplotlib a private config and cache directory unless ``MPLCONFIGDIR`` is set.

    Left alone, matplotlib creates ``~/.config/matplotlib`` and writes its font list to
    ``~/.cache/matplotlib``; a service account may have no writable home, and an
    operator's should not gain files from a report. The directory is kept per user in
    the temp directory, so the font list is built once (about half a second), and is
    used only if it is ours and private; otherwise a fresh one is made.
    """
    if os.environ.get("MPLCONFIGDIR"):
        return
    uid = os.getuid()
    path = Path(tempfile.gettempdir()) / f"televikar-pbx-matplotlib-{uid}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
        ours = stat.S_ISDIR(info.st_mode) and info.st_uid == uid and not info.st_mode & 0o077
    except OSError:
        ours = False
    if not ours:
        path = Path(tempfile.mkdtemp(prefix="televikar-pbx-matplotlib-"))
    os.environ["MPLCONFIGDIR"] = str(path)


def font_path(bold: bool = False) -> str:
    """matplotlib's own DejaVu Sans (it covers æøå and most scripts): no system fonts."""
    matplotlib_home()
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name)


def axis_ticks(report: SlaReport, texts: Texts) -> dict[int, str]:
    """The labelled periods (index: label), at most about ``MAX_LABELS``.

    Days: the short date of every day, or every 2nd, 7th, ... Hours: every local hour
    ``09``, or every 2nd, 3rd, ... on the clock (so each day is labelled alike, 23 or 25
    hours long); a report over several days adds the date at midnight, and shows only
    midnights once there are too many hours. On a one-day report the hour repeated in
    autumn carries its offset: ``02 +2`` then ``02 +1``.
    """
    zone = ZoneInfo(report.timezone)
    starts = [p.period.start.astimezone(zone) for p in report.periods]
    count = len(starts)
    if report.by == "day":
        every = next((s for s in (1, 2, 7, 14) if math.ceil(count / s) <= MAX_LABELS), 28)
        return {i: texts.day(starts[i].date()) for i in range(0, count, every)}
    days = (report.last_day - report.first_day).days + 1
    step = next((s for s in (1, 2, 3, 4, 6, 12) if days * 24 / s <= MAX_LABELS), None)
    ticks: dict[int, str] = {}
    for i, start in enumerate(starts):
        if days == 1:
            ticks[i] = f"{start:%H}"
            if [s.hour for s in starts].count(start.hour) > 1:
                offset = start.utcoffset()
                assert offset is not None
                ticks[i] += f"\n{offset // dt.timedelta(hours=1):+d}"  # "+2", "+1"
        elif step is not None and start.hour % step == 0 and not start.fold:
            ticks[i] = f"{start:%H}" + (f"\n{texts.day(start.date())}" if start.hour == 0 else "")
        elif step is None and start.hour == 0 and not start.fold:
            every = math.ceil(days / MAX_LABELS)
            if (start.date() - report.first_day).days % every == 0:
                ticks[i] = texts.day(start.date())
    return ticks


def _share(figures: PeriodFigures, value: float | None) -> float:
    return math.nan if value is None or figures.offered == 0 else value


def sl_chart_png(
    report: SlaReport, texts: Texts, *, width_mm: float, height_mm: float, dpi: int = 200
) -> bytes:
    """SL12 and SL20 of each period as lines with points, the targets as dashed lines.

    A period without offered calls (or with only short abandons) has no service level:
    it is a gap in the line, not a zero.
    """
    matplotlib_home()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.transforms import blended_transform_factory

    font = FontProperties(fname=font_path(), size=7.5)
    small = FontProperties(fname=font_path(), size=6.5)
    bold = FontProperties(fname=font_path(bold=True), size=7)

    figure = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    xs = list(range(len(report.periods)))
    # SL12 is never above SL20; where they are equal, its dot shows inside SL20's square.
    small_points = len(xs) > 48
    series = (
        ("SL12", [_share(p, p.sl12_pct) for p in report.periods], SL12_COLOUR, "o", 3.5, 4),
        ("SL20", [_share(p, p.sl20_pct) for p in report.periods], SL20_COLOUR, "s", 5.0, 3),
    )
    for name, ys, colour, marker, size, layer in series:
        axes.plot(
            xs, ys, color=colour, marker=marker, markersize=size * (0.6 if small_points else 1),
            linewidth=1.4, label=name, clip_on=False, zorder=layer,
        )  # fmt: skip

    # The targets: dashed lines, named at the right edge; two close targets are pushed
    # apart so their names do not overlap.
    edge = blended_transform_factory(axes.transAxes, axes.transData)
    targets = sorted(
        (("SL12", report.sl12_target, SL12_COLOUR), ("SL20", report.sl20_target, SL20_COLOUR)),
        key=lambda t: t[1],
    )
    low, high = targets[0][1], targets[1][1]
    gap = 7.0
    nudge = max(0.0, (gap - (high - low)) / 2)
    for (name, target, colour), shift in zip(targets, (-nudge, nudge), strict=True):
        axes.axhline(target, color=colour, linestyle=(0, (5, 3)), linewidth=1.0, zorder=2)
        axes.text(
            1.01, min(100.0, max(0.0, target + shift)),
            f"{texts.chart_target.format(name=name)}\n{texts.target(target)}",
            transform=edge, va="center", ha="left", color=colour, fontproperties=small,
            linespacing=1.1,
        )  # fmt: skip

    axes.set_ylim(0, 100)
    axes.set_yticks(range(0, 101, 20), [texts.percent(str(v)) for v in range(0, 101, 20)])
    axes.set_xlim(-0.6, max(len(xs), 1) - 0.4)
    ticks = axis_ticks(report, texts)
    # Dates side by side collide beyond about 16; hours ("09") do not.
    rotate = len(ticks) > 16 and all(len(t) > 3 and "\n" not in t for t in ticks.values())
    axes.set_xticks(list(ticks), list(ticks.values()), rotation=90 if rotate else 0)
    if len(ticks) < len(xs):
        axes.set_xticks(xs, minor=True)
    for label in (*axes.get_xticklabels(), *axes.get_yticklabels()):
        label.set_fontproperties(font)
    axes.tick_params(axis="both", length=3, color="#808080")
    axes.tick_params(axis="x", which="minor", length=1.5)
    axes.grid(axis="y", color=GRID_COLOUR, linewidth=0.6, zorder=0)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        axes.spines[side].set_color("#808080")
    axes.legend(
        loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, frameon=False, prop=bold,
        handlelength=2.2, borderaxespad=0.0,
    )  # fmt: skip
    figure.subplots_adjust(left=0.07, right=0.88, top=0.88, bottom=0.22 if rotate else 0.16)

    out = io.BytesIO()
    # No metadata: the same report gives the same bytes.
    figure.savefig(out, format="png", dpi=dpi, metadata={"Software": None})
    return out.getvalue()

"""Per-frame line charts drawn with matplotlib, as inline SVG: offline, no script, nothing fetched.

A chart has a frame-index x axis, light grid lines, a legend above the plot and one line per series: a
``None`` value leaves a gap, and a value with no known neighbour is drawn as a dot. Long series are thinned
per pixel column to their first, lowest, highest and last value, so a 10,000-frame video gives a small
page and keeps every spike. Text stays text (``svg.fonttype: none``) and the markup carries no date or
random ids, so the same numbers give the same bytes.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

#: Text is laid out with matplotlib's bundled DejaVu Sans and shown in the page's sans-serif stack.
LAYOUT_FONT = "DejaVu Sans"
CSS_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
#: CSS pixels per inch of the SVG (its ``width``/``height`` are in points: 72 per inch).
DPI = 96
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "nice-core",  # fixed ids (clip paths), so a page is byte-reproducible
    "font.family": LAYOUT_FONT,
    "font.size": 9,
    "axes.edgecolor": "#495057",
    "axes.labelcolor": "#212529",
    "xtick.color": "#495057",
    "ytick.color": "#495057",
    "grid.color": "#e9ecef",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "path.simplify": True,
}


@dataclass(frozen=True)
class Series:
    """One line: per-frame values (``None`` for a gap) starting at frame 0."""

    label: str
    values: Sequence[float | None]
    color: str
    width: float = 2.0


@dataclass(frozen=True)
class HLine:
    """A labelled horizontal reference line (dashed)."""

    label: str
    value: float
    color: str
    width: float = 2.0


def segments(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Runs of consecutive finite values, as ``(index, value)`` lists: the pieces a line is drawn in."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            if current:
                runs.append(current)
            current = []
        else:
            current.append((i, float(v)))
    if current:
        runs.append(current)
    return runs


def thin(run: list[tuple[int, float]], columns: int, n_frames: int) -> list[tuple[int, float]]:
    """Keep, per one of ``columns`` pixel columns over ``n_frames`` frames, the run's first, lowest, highest
    and last point, in order: what a line of that width can show, spikes included."""
    if len(run) <= 4 * columns:
        return run
    scale = columns / max(1, n_frames - 1)
    out: list[tuple[int, float]] = []
    start = 0
    for end in range(1, len(run) + 1):
        if end == len(run) or int(run[end][0] * scale) != int(run[start][0] * scale):
            column = run[start:end]
            keep = {0, len(column) - 1, min(range(len(column)), key=lambda i: column[i][1]),
                    max(range(len(column)), key=lambda i: column[i][1])}
            out.extend(column[i] for i in sorted(keep))
            start = end
    return out


def _y_range(series: Sequence[Series], hlines: Sequence[HLine]) -> tuple[float, float] | None:
    known = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    known += [h.value for h in hlines if math.isfinite(h.value)]
    if not known:
        return None
    lo, hi = min(known), max(known)
    if lo >= 0 and lo < 0.35 * hi:
        lo = 0.0  # errors are non-negative: show them from zero unless that squashes the curve
    pad = (hi - lo) * 0.05 or abs(hi) * 0.1 or 1.0
    return lo - (pad if lo != 0 else 0), hi + pad


def line_chart(series: Sequence[Series], *, title: str, y_label: str, hlines: Sequence[HLine] = (),
               x_label: str = "frame", width: int = 960, height: int = 300) -> str:
    """An ``<svg>`` element showing ``series`` against the frame index.

    Args:
        series: the lines; all start at frame 0. Series with no known value are listed in the legend as
            "(no values)" and not drawn.
        title: drawn top left, and the chart's accessible name.
        y_label: the y axis title (include the unit).
        hlines: horizontal reference lines, dashed, listed in the legend.
        x_label: the x axis title.
        width, height: the size in CSS pixels; the element scales to its container (``viewBox``).

    Returns:
        The SVG markup, ready to inline in an HTML page.
    """
    import matplotlib

    with matplotlib.rc_context(_RC):
        figure = chart_figure(series, title=title, y_label=y_label, hlines=hlines, x_label=x_label, width=width,
                              height=height)
        return _svg(figure, title, width, height)


def chart_figure(series: Sequence[Series], *, title: str, y_label: str, hlines: Sequence[HLine] = (),
                 x_label: str = "frame", width: int = 960, height: int = 300):
    """The matplotlib ``Figure`` of :func:`line_chart` (same arguments), for other formats."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
        ax = figure.add_axes((64 / width, 44 / height, 1 - 80 / width, 1 - 100 / height))
        n_frames = max([len(s.values) for s in series] + [1])
        plot_columns = int(width - 80)
        for s in series:
            runs = segments(s.values)
            label = s.label if runs else f"{s.label} (no values)"
            ax.plot([], [], color=s.color, linewidth=s.width, label=label)  # the legend entry
            for run in runs:
                xs, ys = np.array(thin(run, plot_columns, n_frames), dtype=float).T
                ax.plot(xs, ys, color=s.color, linewidth=s.width, solid_capstyle="round",
                        marker="o" if len(run) == 1 else None, markersize=s.width * 1.8)
        for h in hlines:
            ax.axhline(h.value, color=h.color, linewidth=h.width, linestyle=(0, (5, 4)), label=h.label)
        ax.set_xlim(0, max(1, n_frames - 1))
        y_range = _y_range(series, hlines)
        if y_range is None:
            ax.set_ylim(0, 1)
            ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center", color="#868e96")
        else:
            ax.set_ylim(*y_range)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, linewidth=0.8)
        ax.set_axisbelow(True)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold", color="#212529", pad=24)
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=len(series) + len(hlines), frameon=False,
                  fontsize=9, borderaxespad=0.2, handlelength=2.2)
    return figure


def _svg(figure, title: str, width: int, height: int) -> str:
    """``figure`` as an inline ``<svg>`` element, without a date or creator (the same numbers, the same bytes)."""
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return _inline(out.getvalue(), title, width, height)


def _inline(svg: str, title: str, width: int, height: int) -> str:
    """matplotlib's SVG document as an element for an HTML page: no XML prolog and no namespace
    declarations (an HTML parser supplies them), CSS-pixel size, a class, an accessible name and a title."""
    svg = svg[svg.index("<svg"):]
    head_end = svg.index(">") + 1
    head = svg[:head_end]
    view_box = re.search(r'viewBox="([^"]+)"', head).group(1)
    root = (f'<svg class="chart" viewBox="{view_box}" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>')
    return root + svg[head_end:].strip().replace(f"'{LAYOUT_FONT}'", CSS_FONT)


@dataclass(frozen=True)
class Curve:
    """One line through ``(x, y)`` points (a ROC curve: false against true positive rate)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    color: str
    width: float = 1.6


def curve_chart(curves: Sequence[Curve], *, title: str, x_label: str, y_label: str, diagonal: bool = False,
                width: int = 420, height: int = 400) -> str:
    """An ``<svg>`` element of ``curves`` on ``[0, 1] x [0, 1]`` axes (``diagonal``: the chance line), with
    the same look and byte-reproducibility as :func:`line_chart`."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
        ax = figure.add_axes((56 / width, 48 / height, 1 - 72 / width, 1 - 120 / height))
        if diagonal:
            ax.plot([0, 1], [0, 1], color="#adb5bd", linewidth=1.0, linestyle=(0, (5, 4)), label="chance")
        for c in curves:
            ax.plot(c.x, c.y, color=c.color, linewidth=c.width, label=c.label, drawstyle="default")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.grid(True, linewidth=0.8)
        ax.set_axisbelow(True)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold", color="#212529", pad=36)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=min(4, len(curves) + diagonal), frameon=False,
                  fontsize=8, borderaxespad=0.2, handlelength=1.8)
        return _svg(figure, title, width, height)

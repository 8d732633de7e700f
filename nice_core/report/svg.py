"""Inline SVG line charts, written as text: no plotting library, no script, nothing fetched.

A chart has a frame-index x axis, a y axis with "nice" ticks (1, 2 or 5 times a power of ten), light grid
lines, a legend above the plot area and one polyline per run of known values: a null value leaves a gap.
A run of one value is drawn as a dot. Long series are thinned per pixel column to their minimum and
maximum, so a 10,000-frame video gives a small page and keeps every spike.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


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


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """About ``target`` round tick values covering ``[lo, hi]`` (the first <= lo, the last >= hi)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("tick range must be finite")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, target - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def _tick_label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    if step < 1 and abs(step * 10 ** decimals - round(step * 10 ** decimals)) > 1e-6:
        decimals += 1  # 2.5 x 10^k steps need one more digit
    text = f"{value:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "−")


def _segments(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Runs of consecutive finite values, as ``(index, value)`` lists."""
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


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Keep, per whole-pixel x column, the first, lowest, highest and last point (in order)."""
    out: list[tuple[float, float]] = []
    column: list[tuple[float, float]] = []
    column_x: int | None = None

    def flush() -> None:
        if len(column) <= 4:
            out.extend(column)
            return
        keep = {0, len(column) - 1, min(range(len(column)), key=lambda i: column[i][1]),
                max(range(len(column)), key=lambda i: column[i][1])}
        out.extend(column[i] for i in sorted(keep))

    for x, y in points:
        if int(x) != column_x and column:
            flush()
            column = []
        column_x = int(x)
        column.append((x, y))
    if column:
        flush()
    return out


def line_chart(series: Sequence[Series], *, title: str, y_label: str, hlines: Sequence[HLine] = (),
               x_label: str = "frame", width: int = 960, height: int = 300) -> str:
    """An ``<svg>`` element showing ``series`` against the frame index.

    Args:
        series: the lines; all start at frame 0. Series with no known value are listed in the legend as
            "(no values)" and not drawn.
        title: drawn top left.
        y_label: the y axis title (include the unit).
        hlines: horizontal reference lines, dashed, listed in the legend.
        x_label: the x axis title.
        width, height: the size in CSS pixels; the element scales to its container (``viewBox``).

    Returns:
        The SVG markup, ready to inline in an HTML page.
    """
    left, right, top, bottom = 74, 16, 52, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    known = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    known += [h.value for h in hlines if math.isfinite(h.value)]
    n_frames = max([len(s.values) for s in series] + [1])

    if known:
        lo, hi = min(known), max(known)
        if lo >= 0 and lo < 0.35 * hi:
            lo = 0.0  # errors are non-negative: show them from zero unless that squashes the curve
        y_ticks = nice_ticks(lo, hi)
    else:
        y_ticks = [0.0, 0.5, 1.0]
    y0, y1 = y_ticks[0], y_ticks[-1]
    x_ticks = [t for t in nice_ticks(0, max(1, n_frames - 1), 8) if 0 <= t <= max(1, n_frames - 1)]
    x_ticks = [int(t) for t in x_ticks if float(t).is_integer()]
    x_max = max(1, n_frames - 1)

    def px(i: float) -> float:
        return left + plot_w * i / x_max

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - y0) / (y1 - y0))

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
        f'font-family="{escape(FONT)}" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="20" font-size="15" font-weight="600" fill="#212529">{escape(title)}</text>',
    ]
    # Grid and y ticks.
    step_y = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    for t in y_ticks:
        y = py(t)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e9ecef"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="#495057">'
                     f"{_tick_label(t, step_y)}</text>")
    for t in x_ticks:
        x = px(t)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#f1f3f5"/>')
        parts.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 5}" '
                     f'stroke="#495057"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 19}" text-anchor="middle" fill="#495057">{t}</text>')
    # Axes and their titles.
    parts.append(f'<path d="M{left},{top} V{top + plot_h} H{left + plot_w}" fill="none" stroke="#495057"/>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle" fill="#212529">'
                 f"{escape(x_label)}</text>")
    parts.append(f'<text transform="translate(16 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" '
                 f'fill="#212529">{escape(y_label)}</text>')
    if not known:
        parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                     f'fill="#868e96">no values</text>')

    # Data: clipped to the plot area.
    clip = f"clip-{zlib.crc32(f'{title}|{width}|{height}|{len(series)}'.encode()):08x}"
    parts.append(f'<clipPath id="{clip}"><rect x="{left}" y="{top - 2}" width="{plot_w}" '
                 f'height="{plot_h + 4}"/></clipPath><g clip-path="url(#{clip})">')
    for h in hlines:
        y = py(h.value)
        parts.append(f'<line class="ref" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                     f'stroke="{h.color}" stroke-width="{h.width}" stroke-dasharray="7 5"/>')
    for s in series:
        for run in _segments(s.values):
            pts = _thin([(px(i), py(v)) for i, v in run])
            if len(pts) == 1:
                x, y = pts[0]
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{s.width * 1.2:.1f}" fill="{s.color}"/>')
            else:
                coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
                parts.append(f'<polyline points="{coords}" fill="none" stroke="{s.color}" '
                             f'stroke-width="{s.width}" stroke-linejoin="round" stroke-linecap="round"/>')
    parts.append("</g>")

    # Legend, above the plot area, right-aligned.
    entries = [(s.label if any(v is not None for v in s.values) else f"{s.label} (no values)", s.color, s.width,
                False) for s in series]
    entries += [(h.label, h.color, h.width, True) for h in hlines]
    x = left + plot_w
    legend: list[str] = []
    for label, color, stroke, dashed in reversed(entries):
        text_w = 6.6 * len(label)
        x -= text_w
        legend.append(f'<text x="{x:.1f}" y="40" fill="#212529">{escape(label)}</text>')
        x -= 30
        dash = ' stroke-dasharray="7 5"' if dashed else ""
        legend.append(f'<line x1="{x:.1f}" y1="36" x2="{x + 24:.1f}" y2="36" stroke="{color}" '
                      f'stroke-width="{stroke + 1}"{dash}/>')
        x -= 18
    parts.extend(legend)
    parts.append("</svg>")
    return "\n".join(parts)

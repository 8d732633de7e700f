"""The per-video report: one self-contained HTML page from one eval JSON.

The page has no script and fetches nothing (no CDN, fonts or images): its charts are inline SVG written
by :mod:`nice_core.report.svg`, its style a short inline ``<style>``. It shows, top to bottom:

* the video's name, method, frame count and rate, and the synthetic-media note;
* a table of every metric for the proxy and the NICe output with the relative change, and the original
  footage's own ``e_stab`` (the aim) as a reference row;
* the per-frame ``e_stab`` of proxy and output with the original's ``e_stab`` as a dashed line;
* frame strips: six frames of the target, the proxy, the evaluated video and the carrier's uncertainty video
  (``"uncertainty"``, when given), cropped around the target's face, as inline JPEG data URIs;
* the first frames of target | proxy | evaluated video side by side, as an inline ``data:video/mp4`` (labelled
  synthetic media, like every video nice-core writes);
* one chart per other per-frame metric (gaze, pose, landmark NME, detail, PSNR, SSIM: those present);
* the metric definitions given in the eval JSON, and the input files.

The strips and the video are made by :mod:`nice_core.report.media` (caps and cost there) from the paths in the
eval JSON: absolute, or relative to the working directory (else to ``root``). A video that is missing or
unreadable is reported as unavailable on the page; it never fails the page.

Nulls are shown as "—" in tables and as gaps in the curves. Without ``proxy_metrics`` the page shows the
evaluated video alone (the proxy itself when no output exists yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path

from nice_core import __version__
from nice_core.io.atomic import atomic_output
from nice_core.report.common import (
    OUTPUT_COLOR,
    PROXY_COLOR,
    SYNTHETIC_NOTE,
    TARGET_COLOR,
    MetricInfo,
    as_number,
    check_eval,
    decimals_for,
    describe_fps,
    format_number,
    metric_info,
    metric_keys,
    per_frame_info,
    per_frame_keys,
)
from nice_core.report.media import THUMB, Media, collect_media, find_source, parse_fps
from nice_core.report.svg import HLine, Series, line_chart

#: Inline style of every report page (the data-set page uses it too).
STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #212529; background: #f8f9fa;
       margin: 0; line-height: 1.45; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; min-height: 100vh; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 30px 0 10px; border-bottom: 1px solid #dee2e6; padding-bottom: 4px; }
.sub { color: #495057; margin: 0 0 12px; }
.note { background: #fff4e6; border-left: 4px solid #f59f00; padding: 8px 12px; margin: 12px 0 4px; font-size: 14px; }
table { border-collapse: collapse; font-size: 14px; margin: 6px 0; }
th, td { padding: 5px 12px; border-bottom: 1px solid #e9ecef; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #adb5bd; background: #f1f3f5; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.ref td { color: #2b8a3e; font-style: italic; }
tr.group th, tr.group td { border-top: 2px solid #ced4da; }
.better { color: #2b8a3e; font-weight: 600; }
.worse { color: #c92a2a; font-weight: 600; }
.muted { color: #868e96; }
.swatch { display: inline-block; width: 14px; height: 4px; vertical-align: middle; margin-right: 6px; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 10px 18px; }
svg.chart { width: 100%; height: auto; display: block; }
dl { font-size: 14px; } dt { font-weight: 600; margin-top: 8px; } dd { margin: 2px 0 0 18px; color: #343a40; }
table.strips { margin: 6px 0 4px; }
table.strips th, table.strips td { padding: 2px 3px; border: none; text-align: center; vertical-align: middle;
                                   font-weight: normal; font-size: 12px; }
table.strips th.row { text-align: right; font-weight: 600; font-size: 13px; padding-right: 8px; max-width: 120px; }
table.strips img { display: block; }
table.strips td.unavailable { text-align: left; color: #868e96; font-style: italic; }
video.sbs { display: block; max-width: 100%; height: auto; background: #000; margin: 6px 0; }
code, .path { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 13px; word-break: break-all; }
footer { margin-top: 36px; color: #868e96; font-size: 12px; }
"""


def page(title: str, body: str) -> str:
    """A complete HTML document with the shared inline style."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<meta name=\"generator\" content=\"nice-core {__version__}\">\n"
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n"
        f"<footer>Generated by nice-core {__version__}. {escape(SYNTHETIC_NOTE)}</footer>\n"
        "</main>\n</body>\n</html>\n"
    )


def relative_change(before: float | None, after: float | None) -> float | None:
    """``(after - before) / |before|``, or ``None`` when either is unknown or ``before`` is 0."""
    if before is None or after is None or before == 0:
        return None
    return (after - before) / abs(before)


def change_cell(info: MetricInfo, before: float | None, after: float | None) -> str:
    """A ``<td>`` with the relative change, coloured by whether it is an improvement."""
    change = relative_change(before, after)
    if change is None:
        return '<td class="num muted">—</td>'
    text = f"{change * 100:+.1f} %".replace("-", "−")
    css = ""
    if info.better and abs(change) >= 0.005:
        improved = change < 0 if info.better == "lower" else change > 0
        css = " better" if improved else " worse"
    return f'<td class="num{css}">{text}</td>'


def _video_is_proxy(data: Mapping) -> bool:
    """Whether the evaluated video is the proxy itself (no NICe output exists yet)."""
    proxy, video = data.get("proxy"), data.get("video")
    return data.get("proxy_metrics") is None and bool(proxy) and proxy == video


def _series_labels(data: Mapping) -> tuple[str, str]:
    """Names of the proxy and the evaluated video, as columns and legend entries."""
    if data.get("proxy_metrics") is not None:
        return "proxy", "NICe output"
    return "proxy", "proxy (no NICe output yet)" if _video_is_proxy(data) else "evaluated video"


def _video_color(data: Mapping) -> str:
    return PROXY_COLOR if _video_is_proxy(data) else OUTPUT_COLOR


def _metrics_table(data: Mapping) -> str:
    output, proxy = data["metrics"], data.get("proxy_metrics")
    target_e_stab = as_number(data.get("target_e_stab"))
    proxy_label, output_label = _series_labels(data)
    has_proxy = proxy is not None
    head = ["<th>metric</th>"]
    if has_proxy:
        head.append(f'<th class="num"><span class="swatch" style="background:{PROXY_COLOR}"></span>'
                    f"{proxy_label}</th>")
    head.append(f'<th class="num"><span class="swatch" style="background:{_video_color(data)}"></span>'
                f"{escape(output_label)}</th>")
    if has_proxy:
        head.append('<th class="num">change</th>')
    rows = []
    for key in metric_keys([output, proxy]):
        info = metric_info(key)
        after = as_number(output.get(key))
        before = as_number(proxy.get(key)) if has_proxy else None
        extra = [target_e_stab] if key == "e_stab" else []
        decimals = decimals_for([before, after, *extra])
        unit = f" {info.unit}" if info.unit and info.unit != "°" else info.unit
        name = f"{escape(info.label)} <span class=\"muted\">{info.arrow}</span>"
        cells = [f'<td>{name}<br><code class="muted">{escape(key)}</code></td>']
        if has_proxy:
            cells.append(f'<td class="num">{format_number(before, decimals)}{unit if before is not None else ""}</td>')
        cells.append(f'<td class="num">{format_number(after, decimals)}{unit if after is not None else ""}</td>')
        if has_proxy:
            cells.append(change_cell(info, before, after))
        rows.append(f"<tr>{''.join(cells)}</tr>")
        if key == "e_stab":
            aim = f'<td class="num">{format_number(target_e_stab, decimals)}</td>'
            rows.append('<tr class="ref"><td>original footage (the aim)</td>'
                        + ('<td></td>' + aim + '<td></td>' if has_proxy else aim) + "</tr>")
    return (f"<table class=\"metrics\"><thead><tr>{''.join(head)}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _values(block: Mapping | None, key: str) -> list[float | None]:
    if not block:
        return []
    return [as_number(v) for v in (block.get("per_frame") or {}).get(key) or []]


def _charts(data: Mapping) -> tuple[str, str]:
    """The ``e_stab`` chart and the grid of other per-frame charts."""
    output, proxy = data["metrics"], data.get("proxy_metrics")
    proxy_label, output_label = _series_labels(data)
    target_e_stab = as_number(data.get("target_e_stab"))
    main, others = "", []
    for key in per_frame_keys([output, proxy]):
        info = per_frame_info(key)
        series = []
        if proxy is not None:
            series.append(Series(proxy_label, _values(proxy, key), PROXY_COLOR))
        series.append(Series(output_label, _values(output, key), _video_color(data)))
        if not any(v is not None for s in series for v in s.values):
            continue
        y_label = f"{info.label} ({info.unit})" if info.unit else info.label
        if key == "e_stab":
            hlines = [HLine("original footage", target_e_stab, TARGET_COLOR)] if target_e_stab is not None else []
            main = line_chart(series, title="Stability error e_stab per frame", y_label="e_stab", hlines=hlines,
                              width=1000, height=330)
        else:
            title = f"{info.label} per frame" if key != "detail" else "Detail per frame"
            others.append(line_chart(series, title=title, y_label=y_label, width=500, height=270))
    grid = f"<div class=\"charts\">{''.join(f'<div>{c}</div>' for c in others)}</div>" if others else ""
    return main, grid


def _definitions(definitions: Mapping | None) -> str:
    if not definitions:
        return '<p class="muted">The eval JSON gives no definitions.</p>'
    items = []
    for key, text in definitions.items():
        items.append(f"<dt>{escape(metric_info(key).label)} <code class=\"muted\">{escape(key)}</code></dt>"
                     f"<dd>{escape(str(text))}</dd>")
    return f"<dl>{''.join(items)}</dl>"


def _files_table(data: Mapping) -> str:
    rows = []
    for key in ("target", "video", "proxy", "uncertainty", "identity", "reference"):
        value = data.get(key)
        shown = f'<span class="path">{escape(str(value))}</span>' if value else '<span class="muted">—</span>'
        rows.append(f"<tr><th>{key}</th><td>{shown}</td></tr>")
    return f"<table class=\"files\"><tbody>{''.join(rows)}</tbody></table>"


def collect_video_media(data: Mapping, root: str | Path | None = None) -> Media:
    """The strips and side-by-side video of a checked eval JSON (see :func:`~nice_core.report.media.collect_media`).

    The proxy gets no row of its own when it is the evaluated video.
    """
    proxy_label, output_label = _series_labels(data)
    videos = []
    if data.get("proxy") and data.get("proxy") != data.get("video"):
        videos.append(find_source("proxy", proxy_label, data.get("proxy"), root))
    videos.append(find_source("video", output_label, data.get("video"), root))
    uncertainty = data.get("uncertainty")
    frames = data.get("frames")
    return collect_media(
        find_source("target", "target", data.get("target"), root), videos,
        find_source("uncertainty", "uncertainty", uncertainty, root) if uncertainty else None,
        total=frames if isinstance(frames, int) and not isinstance(frames, bool) else None,
        fps=parse_fps(data.get("fps")))


def _unavailable(what: str, problem: str | None, given: str | None = None) -> str:
    path = f': <span class="path">{escape(given)}</span>' if given else ""
    return f"{escape(what)} unavailable ({escape(problem or 'unknown')}){path}"


def _strips(media: Media) -> str:
    """The table of thumbnails: a row per video, a column per sampled frame."""
    if not media.indices:
        return f'<p class="muted">{_unavailable("Frame strips", "no readable video")}</p>'
    fps = float(media.fps) if media.fps else None
    head = "".join(f"<th>frame {i}" + (f'<br><span class="muted">{i / fps:.1f} s</span>' if fps else "") + "</th>"
                   for i in media.indices)
    rows = []
    for row in media.rows:
        label = f'<th class="row">{escape(row.label)}</th>'
        if not any(row.images):
            cells = f'<td colspan="{len(media.indices)}" class="unavailable">' \
                    f'{_unavailable("Strip", row.problem, row.given)}</td>'
        else:
            cells = "".join(
                f'<td><img src="{uri}" width="{THUMB}" height="{THUMB}" alt="{escape(row.label)}, frame {i}"></td>'
                if uri else '<td class="muted">—</td>' for uri, i in zip(row.images, media.indices))
        rows.append(f"<tr>{label}{cells}</tr>")
    crops = len(media.indices)
    cropped = ("cropped around the target's face (its face mesh at that frame; the same box on every row)"
               if media.face_columns == crops else
               f"{media.face_columns} of {crops} columns cropped around the target's face (its face mesh at that "
               "frame; the same box on every row), the others whole" if media.face_columns else
               "whole frames (no face found in the target)")
    note = (f"{crops} frames evenly spread over the clip's {media.total} (0-based indices), {cropped}."
            + (" The uncertainty video is shown whole." if any(r.label == "uncertainty" for r in media.rows)
               else ""))
    return (f'<table class="strips"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'<p class="muted">{escape(note)}</p>')


def _side_by_side(media: Media, fps: object) -> str:
    """The inline side-by-side video and what it shows."""
    if media.video is None:
        return f'<p class="muted">{_unavailable("Side-by-side video", media.video_problem)}</p>'
    width, height = media.video_size
    rate = f" at {describe_fps(fps)}" if fps is not None else ""
    note = (f"{' | '.join(media.video_panels)}: the first {media.video_frames} of {media.total} frames{rate}, "
            f"each panel {height} px high; H.264, {media.video_bytes / 1000:.0f} kB. Like every video nice-core "
            "writes it carries the synthetic-media label, the invisible watermark and a visible mark.")
    problem = f" {media.video_problem}." if media.video_problem else ""
    return (f'<video class="sbs" controls muted loop playsinline preload="metadata" width="{width}" '
            f'height="{height}" src="{media.video}"></video>'
            f'<p class="muted">{escape(note + problem)}</p>')


def render_video_report(eval_json: Mapping, media: bool = True, root: str | Path | None = None) -> str:
    """The HTML text of the report for one eval JSON (see the module docstring for what it shows).

    Args:
        eval_json: one eval JSON.
        media: read the videos for the frame strips and the side-by-side video (False: numbers only).
        root: where relative video paths are looked for when they are not under the working directory.
    """
    data = check_eval(dict(eval_json))
    name = data["name"]
    frames = data.get("frames")
    facts = [f"method <b>{escape(str(data['method']))}</b>"]
    if frames is not None:
        facts.append(f"{escape(str(frames))} frames")
    if data.get("fps") is not None:
        facts.append(escape(describe_fps(data.get("fps"))))
    main_chart, other_charts = _charts(data)
    body = [
        f"<h1>NICe report: {escape(name)}</h1>",
        f"<p class=\"sub\">{' · '.join(facts)}</p>",
        f'<p class="note"><b>Synthetic media.</b> {escape(SYNTHETIC_NOTE)}</p>',
        "<h2>Metrics</h2>",
        _metrics_table(data),
        '<p class="muted">↓ lower is better, ↑ higher is better; "—": not computable. Change is relative to '
        "the proxy.</p>" if data.get("proxy_metrics") is not None else
        '<p class="muted">↓ lower is better, ↑ higher is better; "—": not computable. No proxy metrics were '
        "given.</p>",
    ]
    if main_chart:
        body += ["<h2>Temporal stability</h2>", main_chart]
    if media:
        found = collect_video_media(data, root)
        body += ["<h2>Frames</h2>", _strips(found), "<h2>Side by side</h2>", _side_by_side(found, data.get("fps"))]
    if other_charts:
        body += ["<h2>Per-frame attributes and fidelity</h2>", other_charts]
    if not main_chart and not other_charts:
        body += ["<h2>Per-frame values</h2>", '<p class="muted">The eval JSON has no per-frame values.</p>']
    body += ["<h2>Definitions</h2>", _definitions(data.get("definitions")), "<h2>Files</h2>", _files_table(data)]
    return page(f"NICe report: {name}", "\n".join(body))


def write_video_report(eval_json: Mapping, out_html: str | Path, media: bool = True,
                       root: str | Path | None = None) -> Path:
    """Write the self-contained HTML report of one video atomically; return its path.

    Args:
        eval_json: one eval JSON as written by ``nice-core eval`` (see :mod:`nice_core.report.common`);
            read one with :func:`~nice_core.report.common.load_eval_json`.
        out_html: the page to write.
        media: embed the frame strips and the side-by-side video (see :func:`render_video_report`).
        root: where relative video paths are looked for when they are not under the working directory.

    Raises:
        InputError: ``eval_json`` lacks a required field.
    """
    out_html = Path(out_html)
    text = render_video_report(eval_json, media=media, root=root)
    with atomic_output(out_html) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return out_html

"""The per-video report: one self-contained HTML page from one eval JSON.

The page has no script and fetches nothing (no CDN, fonts or images): its charts are inline SVG written
by :mod:`nice_core.report.charts` (matplotlib), its style a short inline ``<style>``. It shows, top to bottom:

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
from functools import lru_cache
from pathlib import Path

from nice_core import __version__
from nice_core.io.atomic import atomic_output
from nice_core.report.charts import HLine, Series, line_chart
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


@lru_cache(maxsize=1)
def _environment():
    """The report templates (``nice_core/report/templates``), HTML-escaping every value not marked safe."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(loader=PackageLoader("nice_core.report", "templates"),
                       autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render(template: str, **context: object) -> str:
    """Render one of the report templates with the shared page context (version, synthetic-media note)."""
    return _environment().get_template(template).render(version=__version__, synthetic_note=SYNTHETIC_NOTE,
                                                        **context)


def relative_change(before: float | None, after: float | None) -> float | None:
    """``(after - before) / |before|``, or ``None`` when either is unknown or ``before`` is 0."""
    if before is None or after is None or before == 0:
        return None
    return (after - before) / abs(before)


def change_text(info: MetricInfo, before: float | None, after: float | None) -> tuple[str, str]:
    """The relative change as text (``"—"`` when unknown) and its CSS class: ``" better"``, ``" worse"``
    (when the metric has a direction and it moved by half a percent or more) or ``""``."""
    change = relative_change(before, after)
    if change is None:
        return "—", " muted"
    css = ""
    if info.better and abs(change) >= 0.005:
        improved = change < 0 if info.better == "lower" else change > 0
        css = " better" if improved else " worse"
    return f"{change * 100:+.1f} %".replace("-", "−"), css


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


def _metrics_table(data: Mapping) -> dict:
    """The metrics table: its value columns and one row per metric (and the aim's row under e_stab)."""
    output, proxy = data["metrics"], data.get("proxy_metrics")
    target_e_stab = as_number(data.get("target_e_stab"))
    proxy_label, output_label = _series_labels(data)
    has_proxy = proxy is not None
    columns = ([{"label": proxy_label, "color": PROXY_COLOR}] if has_proxy else []) + [
        {"label": output_label, "color": _video_color(data)}]
    rows = []
    for key in metric_keys([output, proxy]):
        info = metric_info(key)
        after = as_number(output.get(key))
        before = as_number(proxy.get(key)) if has_proxy else None
        decimals = decimals_for([before, after, *([target_e_stab] if key == "e_stab" else [])])
        unit = f" {info.unit}" if info.unit and info.unit != "°" else info.unit
        shown = [before, after] if has_proxy else [after]
        change, css = change_text(info, before, after)
        rows.append({"label": info.label, "arrow": info.arrow, "key": key, "reference": False,
                     "cells": [format_number(v, decimals) + (unit if v is not None else "") for v in shown],
                     "change": change, "change_class": css})
        if key == "e_stab":
            rows.append({"reference": True, "cells": [format_number(target_e_stab, decimals)]})
    return {"columns": columns, "rows": rows, "has_proxy": has_proxy}


def _values(block: Mapping | None, key: str) -> list[float | None]:
    if not block:
        return []
    return [as_number(v) for v in (block.get("per_frame") or {}).get(key) or []]


def _charts(data: Mapping) -> tuple[str, list[str]]:
    """The ``e_stab`` chart and the other per-frame charts (SVG markup)."""
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
    return main, others


def definition_items(definitions: Mapping | None) -> list[dict]:
    """Metric definitions as the templates list them: label, key and text."""
    return [{"label": metric_info(key).label, "key": key, "text": str(text)}
            for key, text in (definitions or {}).items()]


def _files(data: Mapping) -> list[tuple[str, str | None]]:
    return [(key, str(data[key]) if data.get(key) else None)
            for key in ("target", "video", "proxy", "uncertainty", "identity", "reference")]


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


def _strips(media: Media) -> dict:
    """The strip table's column heads and the note under it."""
    fps = float(media.fps) if media.fps else None
    columns = [{"index": i, "seconds": i / fps if fps else None} for i in media.indices]
    crops = len(media.indices)
    cropped = ("cropped around the target's face (its face mesh at that frame; the same box on every row)"
               if media.face_columns == crops else
               f"{media.face_columns} of {crops} columns cropped around the target's face (its face mesh at that "
               "frame; the same box on every row), the others whole" if media.face_columns else
               "whole frames (no face found in the target)")
    note = (f"{crops} frames evenly spread over the clip's {media.total} (0-based indices), {cropped}."
            + (" The uncertainty video is shown whole." if any(r.label == "uncertainty" for r in media.rows)
               else ""))
    return {"columns": columns, "note": note}


def _side_by_side_note(media: Media, fps: object) -> str:
    if media.video is None:
        return ""
    height = media.video_size[1]
    rate = f" at {describe_fps(fps)}" if fps is not None else ""
    note = (f"{' | '.join(media.video_panels)}: the first {media.video_frames} of {media.total} frames{rate}, "
            f"each panel {height} px high; H.264, {media.video_bytes / 1000:.0f} kB. Like every video nice-core "
            "writes it carries the synthetic-media label, the invisible watermark and a visible mark.")
    return note + (f" {media.video_problem}." if media.video_problem else "")


def render_video_report(eval_json: Mapping, media: bool = True, root: str | Path | None = None) -> str:
    """The HTML text of the report for one eval JSON (see the module docstring for what it shows).

    Args:
        eval_json: one eval JSON.
        media: read the videos for the frame strips and the side-by-side video (False: numbers only).
        root: where relative video paths are looked for when they are not under the working directory.
    """
    from markupsafe import Markup

    data = check_eval(dict(eval_json))
    facts = [f"{data['frames']} frames"] if data.get("frames") is not None else []
    if data.get("fps") is not None:
        facts.append(describe_fps(data.get("fps")))
    main_chart, other_charts = _charts(data)
    found = collect_video_media(data, root) if media else None
    return render("video.html.j2", title=f"NICe report: {data['name']}", method=str(data["method"]), facts=facts,
                  table=_metrics_table(data), main_chart=Markup(main_chart),
                  other_charts=[Markup(c) for c in other_charts], media=found, thumb=THUMB,
                  strips=_strips(found) if found else None,
                  side_by_side_note=_side_by_side_note(found, data.get("fps")) if found else "",
                  definitions=definition_items(data.get("definitions")), files=_files(data),
                  uv=_uv_maps(data.get("uv_detail")))


#: The UV detail maps the per-video page shows, in order, with their captions.
UV_MAPS = (("identity", "the identity's static detail (what the swap should carry)"),
           ("target", "the target's own"), ("video", "the output's"), ("proxy", "the proxy's"))


def _uv_maps(block: Mapping | None) -> dict | None:
    """The per-video page's UV section: the maps that exist (data URIs) and what they came from."""
    if not block or not block.get("maps"):
        return None
    maps = block["maps"]
    return {"maps": [{"uri": maps[key], "caption": caption} for key, caption in UV_MAPS if key in maps],
            "source": block.get("source"), "frames": block.get("frames"), "added_rms": block.get("added_rms")}


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

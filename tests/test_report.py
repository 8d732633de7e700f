"""Reports: the per-video HTML page, the data-set table (CSV, JSON, HTML) and failures read from logs.

Eval JSONs are built here with realistic numbers and nulls; the video page is also rendered in headless
Chromium to check that its charts and frame strips really draw. Frame strips and the side-by-side video use
the bundled sample's short clip for every role (target, proxy and output): nobody's face is swapped.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import os
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nice_core.errors import InputError
from nice_core.io import VideoWriter
from nice_core.provenance import synthetic_label
from nice_core.provenance.verify import verify_file
from nice_core.report import (
    aggregate,
    failures_from_logs,
    load_eval_json,
    render_video_report,
    write_dataset_report,
    write_video_report,
)
from nice_core.report.charts import HLine, Series, chart_figure, line_chart, segments, thin
from nice_core.report.common import OUTPUT_COLOR, PROXY_COLOR, TARGET_COLOR, check_eval
from nice_core.report.media import STRIP_FRAMES, THUMB, VIDEO_KIND, find_source, sample_indices

DEFINITIONS = {
    "e_stab": "Mean squared difference between consecutive aligned face crops after motion compensation <x>.",
    "gaze_error_deg": "Angle between the gaze directions of the video and the target, in degrees.",
    "psnr": "Peak signal-to-noise ratio against the reference, in dB.",
}


def per_frame(n: int, scale: float, seed: int, with_psnr: bool = True) -> dict[str, list[float | None]]:
    """Per-frame curves like a swap's: a noisy level, occasional flicker spikes, a tracking gap."""
    rng = np.random.default_rng(seed)

    def curve(level: float, noise: float, spike: float = 0.0) -> list[float | None]:
        values = np.abs(level + noise * rng.standard_normal(n) + spike * (rng.random(n) < 0.04))
        out: list[float | None] = [float(v) for v in values]
        out[n // 2:n // 2 + 6] = [None] * 6  # no face tracked for six frames
        return out

    curves = {
        "e_stab": curve(0.0012 * scale, 0.0003 * scale, 0.004 * scale),
        "gaze_error_deg": curve(3.0 * scale ** 0.2, 0.6),
        "pose_error_deg": curve(1.2 * scale ** 0.5, 0.3),
        "landmark_nme_2d": curve(0.021, 0.004),
        "landmark_nme_3d": curve(0.030, 0.005),
        "detail": curve(0.93, 0.03),
    }
    curves["e_stab"][0] = None  # needs a previous frame
    if with_psnr:
        curves["psnr"] = curve(31.0 - scale, 1.0)
        curves["ssim"] = curve(0.93, 0.01)
    return curves


def make_eval(name: str, method: str, e_stab: tuple[float, float] = (0.0031, 0.0012), n: int = 240,
              seed: int = 0, proxy: bool = True, gaze: float | None = 3.1, psnr: bool = True) -> dict:
    """One eval JSON as ``nice-core eval`` writes it; ``e_stab`` is (proxy, output)."""

    def block(value: float, scale: float) -> dict:
        metrics = {"e_stab": value, "gaze_error_deg": gaze, "pose_error_deg": 1.2 * scale,
                   "landmark_nme_2d": 0.021, "landmark_nme_3d": None, "detail_ratio": 0.93,
                   "identity_distance": 0.41, "per_frame": per_frame(n, scale, seed, psnr)}
        if psnr:
            metrics.update(psnr=31.2 - scale, ssim=0.93)
        return metrics

    return {
        "name": name, "method": method, "target": f"/data/original/{name[:3]}.mp4",
        "video": f"/results/{method}/{name}.mp4", "proxy": f"/data/{method}/{name}.mp4" if proxy else None,
        "identity": None, "reference": "/data/reference.mp4" if psnr else None, "frames": n, "fps": "24000/1001",
        "metrics": block(e_stab[1], 1.0), "proxy_metrics": block(e_stab[0], 3.0) if proxy else None,
        "target_e_stab": 0.0009, "definitions": DEFINITIONS,
    }


def assert_self_contained(text: str) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I)
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower() and "@import" not in text and "url(http" not in text


# -- the per-video page -------------------------------------------------------------------------------------

CHART = re.compile(r'<svg class="chart"[^>]*aria-label="([^"]*)".*?</svg>', re.S)


def charts(page: str) -> dict[str, str]:
    """The page's charts by their accessible title, in page order."""
    return {html.unescape(m.group(1)): m.group(0) for m in CHART.finditer(page)}


def texts(svg: str) -> list[str]:
    """The words a chart shows (titles, legend, ticks)."""
    return [html.unescape(t).strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]



def test_video_report(tmp_path):
    out = write_video_report(make_eval("000_003", "Deepfakes"), tmp_path / "000_003.html")
    assert out == tmp_path / "000_003.html" and sorted(p.name for p in tmp_path.iterdir()) == ["000_003.html"]
    text = out.read_text()
    assert_self_contained(text)
    assert "NICe report: 000_003" in text and "Synthetic media." in text and "Deepfakes" in text
    assert "23.976 fps (24000/1001)" in text and "240 frames" in text
    # e_stab at the precision of its row (3 significant digits of the largest), with the aim and the change.
    for value in ("0.00310", "0.00120", "0.00090", "−61.3 %", "original footage (the aim)"):
        assert value in text, value
    assert "3.10°" in text and "1.20°" in text and "3.60°" in text and "−66.7 %" in text  # gaze, pose
    assert "28.2 dB" in text and "30.2 dB" in text  # PSNR: proxy, output
    assert text.count('<td class="num">—</td>') == 2  # NME 3D is null for both
    # One chart per per-frame metric, each titled, with both videos in its legend; e_stab also shows the
    # original footage's level, dashed, in the target's colour.
    shown = charts(text)
    assert list(shown) == ["Stability error e_stab per frame", "Gaze error per frame", "Head-pose error per frame",
                           "Landmark NME 2D per frame", "Landmark NME 3D per frame", "Detail per frame",
                           "PSNR per frame", "SSIM per frame"]
    for title, svg in shown.items():
        assert {"proxy", "NICe output"} <= set(texts(svg)), title
    assert "original footage" in texts(shown["Stability error e_stab per frame"])
    assert TARGET_COLOR in shown["Stability error e_stab per frame"] and "stroke-dasharray" in text
    assert "&lt;x&gt;" in text and "<x>" not in text  # definitions are escaped


def test_video_report_without_proxy(tmp_path):
    data = make_eval("bench_000", "benchmark", proxy=False, psnr=False, gaze=None)
    data["proxy"] = data["video"]  # evaluated before any NICe output exists
    data["metrics"]["per_frame"]["pose_error_deg"] = [None] * 240  # not computable: no chart
    data.pop("definitions")
    text = write_video_report(data, tmp_path / "r.html").read_text()
    assert_self_contained(text)
    assert "proxy (no NICe output yet)" in text and "change" not in text
    assert OUTPUT_COLOR not in text and PROXY_COLOR in text  # drawn as the proxy it is
    assert "PSNR" not in text and "The eval JSON gives no definitions." in text
    shown = charts(text)  # no pose chart (nothing computable), no reference
    assert list(shown) == ["Stability error e_stab per frame", "Gaze error per frame", "Landmark NME 2D per frame",
                           "Landmark NME 3D per frame", "Detail per frame"]
    assert all("NICe output" not in texts(svg) for svg in shown.values())


def test_video_report_rejects_bad_input(tmp_path):
    bad = make_eval("x", "swap")
    bad["method"] = ""
    with pytest.raises(InputError, match="missing or empty 'method'"):
        write_video_report(bad, tmp_path / "x.html")
    assert not any(tmp_path.iterdir())
    unnamed = make_eval("x", "swap")
    del unnamed["method"]  # `nice-core eval` without --method: reported as "unspecified", not refused
    assert "unspecified" in render_video_report(unnamed)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match="cannot read eval JSON"):
        load_eval_json(tmp_path / "broken.json")
    with pytest.raises(InputError, match="not found"):
        load_eval_json(tmp_path / "missing.json")
    (tmp_path / "ok.json").write_text(json.dumps(make_eval("x", "swap", n=20)))
    assert load_eval_json(tmp_path / "ok.json")["name"] == "x"


def test_line_chart_gaps_dots_and_thinning():
    values = [1.0, 2.0, None, 3.0, None, 4.0, float("nan")]
    assert segments(values) == [[(0, 1.0), (1, 2.0)], [(3, 3.0)], [(5, 4.0)]]
    figure = chart_figure([Series("a", values, "#123456")], title="t", y_label="y")
    drawn = [line for line in figure.axes[0].lines if len(line.get_xdata())]
    assert [list(line.get_xdata()) for line in drawn] == [[0, 1], [3], [5]]
    assert [line.get_marker() for line in drawn] == ["None", "o", "o"]  # a lone value is a dot
    # A long video: at most four points per pixel column are drawn, and the one spike is among them.
    long = [0.5] * 20000
    long[12345] = 9.0
    kept = thin(segments(long)[0], 520, 20000)
    assert len(kept) <= 4 * 520 and (12345, 9.0) in kept and kept[0] == (0, 0.5) and kept[-1] == (19999, 0.5)
    svg = line_chart([Series("long", long, "#123456")], title="long", y_label="y", width=600)
    assert len(svg) < 60_000 and svg.startswith('<svg class="chart"') and 'aria-label="long"' in svg
    empty = line_chart([Series("none", [None, None], "#000")], title="e", y_label="y")
    assert {"none (no values)", "no values"} <= set(texts(empty))


def test_line_chart_is_reproducible_and_offline():
    series = [Series("a", [0.1, 0.3, None, 0.2], "#123456")]
    first = line_chart(series, title="t", y_label="y", hlines=[HLine("aim", 0.15, "#654321")])
    assert first == line_chart(series, title="t", y_label="y", hlines=[HLine("aim", 0.15, "#654321")])
    assert "<?xml" not in first and "<!DOCTYPE" not in first and "dc:date" not in first
    assert_self_contained(first)


# -- frame strips and the side-by-side video ------------------------------------------------------------------

JPEG_URI = re.compile(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"')
VIDEO_URI = re.compile(r'<video [^>]*src="data:video/mp4;base64,([A-Za-z0-9+/=]+)"')


def uncertainty_clip(path: Path, frames: int = 48, side: int = 64) -> Path:
    """A grey, crop-sized video of the clip's length, like ``composite --save-uncertainty`` writes."""
    ramp = np.add.outer(np.arange(side), np.arange(side)).astype(np.float32)
    with VideoWriter(path, side, side, Fraction(24000, 1001), label=synthetic_label(None)) as writer:
        for t in range(frames):
            grey = (128 + 100 * np.sin(ramp / 9 + t / 5)).astype(np.uint8)
            writer.write(np.repeat(grey[..., None], 3, axis=2))
    return path


def decode_image(data: bytes, path: Path) -> np.ndarray:
    import av

    path.write_bytes(data)
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def media_eval(work: Path, clip: Path, n: int = 48) -> dict:
    """An eval JSON of ``clip`` against itself, its proxy and output copies named relative to ``work``."""
    shutil.copy(clip, work / "proxy.mp4")
    shutil.copy(clip, work / "output.mp4")
    uncertainty_clip(work / "sigma.mp4", frames=n)
    data = make_eval("short", "Deepfakes", n=n)
    data.update(target=str(clip), proxy="proxy.mp4", video="output.mp4", uncertainty="sigma.mp4")
    return data


def test_video_report_frames_and_side_by_side(tmp_path, short_clip, monkeypatch):
    import av

    work = tmp_path / "work"
    work.mkdir()
    data = media_eval(work, short_clip)
    assert find_source("proxy", "proxy", "proxy.mp4", root=work).path == work / "proxy.mp4"  # from elsewhere
    monkeypatch.chdir(work)  # the eval's relative paths are found from the folder it ran in
    text = write_video_report(data, tmp_path / "short.html").read_text()
    assert_self_contained(text)

    # Strips: a row each for target, proxy, output and uncertainty, one JPEG per sampled frame.
    assert sample_indices(48) == (4, 12, 20, 28, 36, 44)
    images = JPEG_URI.findall(text)
    assert len(images) == 4 * STRIP_FRAMES
    for label in ("target", "proxy", "NICe output", "uncertainty"):
        assert f'<th class="row">{label}</th>' in text and f'alt="{label}, frame 44"' in text
    assert "frame 12<br>" in text and "0.5 s" in text  # frame 12 at 23.976 fps
    assert "cropped around the target's face" in html.unescape(text) and "whole frames" not in text
    # The same clip, the same face box on every row: identical thumbnails per column.
    assert images[0] == images[STRIP_FRAMES] == images[2 * STRIP_FRAMES] != images[1]
    face = decode_image(base64.b64decode(images[0]), tmp_path / "thumb.jpg")
    assert face.shape == (THUMB, THUMB, 3) and face.std() > 20
    sigma = decode_image(base64.b64decode(images[3 * STRIP_FRAMES]), tmp_path / "sigma.jpg").astype(int)
    assert sigma.shape == (THUMB, THUMB, 3) and np.abs(sigma - sigma.mean(axis=2, keepdims=True)).max() <= 8  # grey

    # The side-by-side video: target | proxy | output at 240 px, labelled synthetic media.
    videos = VIDEO_URI.findall(text)
    assert len(videos) == 1 and "<video class=\"sbs\" controls muted loop" in text
    assert "target | proxy | NICe output: the first 48 of 48 frames" in text
    mp4 = tmp_path / "side_by_side.mp4"
    mp4.write_bytes(base64.b64decode(videos[0]))
    with av.open(str(mp4)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 48 and frames[0].shape == (240, 3 * 426, 3)
    # The metadata label (the watermark is embedded too, but 48 frames of 240 px at CRF 28 keep too little of it
    # for the detector's threshold: see docs/metrics.md).
    check = verify_file(mp4)
    assert check.found and check.label_found and check.tags.get("synthetic_media_kind") == VIDEO_KIND
    dark_box = frames[0][-30:, 2:60].mean()  # the visible "SYNTHETIC" mark, bottom left
    assert dark_box < frames[0][-30:, 700:760].mean()
    assert len(text) < 1_500_000  # thumbnails and a short, small video


def test_video_report_without_media(tmp_path, short_clip):
    data = make_eval("short", "Deepfakes", n=48)
    data.update(target=str(short_clip), video=str(short_clip), proxy=str(short_clip))
    text = render_video_report(data, media=False)
    assert "data:" not in text and "<h2>Frames</h2>" not in text and "<video" not in text


def test_video_report_missing_videos(tmp_path, short_clip):
    notes = tmp_path / "sigma.mp4"
    notes.write_text("not a video\n")
    data = make_eval("gone", "Deepfakes", n=48)
    data.update(target=str(short_clip), video=str(tmp_path / "gone.mp4"), proxy="nowhere/proxy.mp4",
                uncertainty=str(notes))
    text = write_video_report(data, tmp_path / "gone.html").read_text()
    assert_self_contained(text)
    assert len(JPEG_URI.findall(text)) == STRIP_FRAMES  # the target's row only
    assert "Strip unavailable (file not found): <span class=\"path\">nowhere/proxy.mp4</span>" in text
    assert f"Strip unavailable (file not found): <span class=\"path\">{tmp_path / 'gone.mp4'}</span>" in text
    assert "Strip unavailable (cannot read it:" in text
    # The side-by-side video shows what exists and says what does not.
    assert "not shown: proxy (file not found); NICe output (file not found)." in text
    assert len(VIDEO_URI.findall(text)) == 1 and "target: the first 48 of 48 frames" in text

    # An eval JSON from before --uncertainty, none of whose videos exist here: numbers only, no failure.
    old = make_eval("old", "Deepfakes", n=48)
    assert "uncertainty" not in old and check_eval(old)["name"] == "old"
    text = render_video_report(old)
    assert "data:" not in text and '<th class="row">uncertainty' not in text
    assert text.count("Strip unavailable (file not found)") == 3
    assert "Side-by-side video unavailable (no readable video: target (file not found);" in text
    assert len(charts(text)) == 8  # the charts are all there


# -- the data-set report --------------------------------------------------------------------------------------


def dataset_evals() -> list[dict]:
    return [
        make_eval("000_003", "Deepfakes", (0.0030, 0.0012), seed=1),
        make_eval("001_870", "Deepfakes", (0.0036, 0.0015), seed=2, gaze=None),
        make_eval("002_006", "Deepfakes", (0.0027, 0.0009), seed=3, gaze=2.5),
        make_eval("000_003", "FaceSwap", (0.0050, 0.0011), seed=4, psnr=False),
        make_eval("001_870", "FaceSwap", (0.0046, 0.0013), seed=5, psnr=False),
        make_eval("bench_000", "benchmark", (0.0, 0.0021), seed=6, proxy=False),
    ]


FAILURES = [{"name": "003_000", "rule": "track", "message": "no face found in any of 396 frames of 003.mp4"}]


def test_dataset_report(tmp_path):
    table = aggregate(dataset_evals(), FAILURES)
    paths = write_dataset_report(table, tmp_path / "report")
    assert {k: p.name for k, p in paths.items()} == {"csv": "dataset.csv", "json": "dataset.json",
                                                    "html": "dataset.html"}
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["dataset.csv", "dataset.html", "dataset.json"]

    with paths["csv"].open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["row"] for r in rows] == ["original footage", "benchmark", "Deepfakes (proxy)", "Deepfakes + NICe",
                                        "FaceSwap (proxy)", "FaceSwap + NICe"]
    assert list(rows[0])[:7] == ["row", "method", "variant", "n_videos", "e_stab_mean", "e_stab_std", "e_stab_n"]
    assert {f"{k}_{p}" for k in ("psnr", "ssim", "identity_distance") for p in ("mean", "std", "n")} <= set(rows[0])
    by_row = {r["row"]: r for r in rows}
    nice = by_row["Deepfakes + NICe"]
    # By hand: e_stab 0.0012, 0.0015, 0.0009: mean 0.0012; deviations 0, 3e-4, -3e-4: std sqrt(1.8e-7 / 3).
    assert nice["n_videos"] == "3" and nice["variant"] == "nice" and nice["method"] == "Deepfakes"
    assert math.isclose(float(nice["e_stab_mean"]), 0.0012, rel_tol=1e-12)
    assert math.isclose(float(nice["e_stab_std"]), math.sqrt(6e-8), rel_tol=1e-9)  # 0.000245
    # Gaze is null for one video: 3.1 and 2.5 over n = 2, std 0.3.
    assert nice["gaze_error_deg_n"] == "2"
    assert math.isclose(float(nice["gaze_error_deg_mean"]), 2.8)
    assert math.isclose(float(nice["gaze_error_deg_std"]), 0.3)
    assert math.isclose(float(by_row["Deepfakes (proxy)"]["pose_error_deg_mean"]), 3.6)
    assert nice["landmark_nme_3d_mean"] == "" and nice["landmark_nme_3d_n"] == "0"  # null everywhere
    assert by_row["FaceSwap + NICe"]["psnr_n"] == "0" and by_row["benchmark"]["psnr_n"] == "1"
    assert float(by_row["benchmark"]["e_stab_std"]) == 0.0  # one video
    assert by_row["original footage"]["e_stab_n"] == "4"  # distinct targets: 000, 001, 002 and ben
    assert by_row["original footage"]["gaze_error_deg_mean"] == ""

    report = json.loads(paths["json"].read_text())
    assert report["failures"] == FAILURES and report["rows"][3]["videos"] == ["000_003", "001_870", "002_006"]
    assert math.isclose(report["rows"][3]["stats"]["e_stab"]["mean"], 0.0012)

    text = paths["html"].read_text()
    assert_self_contained(text)
    assert "Synthetic media." in text and "6 videos evaluated, 1 failed." in text
    assert "0.00120<br><small" in text and "± 0.00024" in text  # Deepfakes + NICe e_stab
    assert "2.80<br><small" in text and "n=2" in text  # gaze over two videos
    assert "no face found in any of 396 frames of 003.mp4" in text and "<code>track</code>" in text
    assert text.count("<tr") == 1 + 6 + 1 + 1  # header, 6 rows, failures header and its row
    assert '<td class="num better">0.00120' in text  # NICe beats its proxy on e_stab


def test_dataset_checks_input():
    with pytest.raises(InputError, match="given twice"):
        aggregate([make_eval("a", "swap", n=10), make_eval("a", "swap", n=10)], [])
    with pytest.raises(InputError, match="'metrics' must be an object"):
        aggregate([{"name": "a", "method": "swap", "metrics": None}], [])
    with pytest.raises(InputError, match="needs a 'name' and a 'message'"):
        aggregate([], [{"name": "a"}])
    table = aggregate([], [])
    assert table.rows == () and table.metrics == ()


def test_failures_from_logs(tmp_path):
    logs = tmp_path / "logs"
    for rule in ("extract", "track", "proxy_check"):
        (logs / rule).mkdir(parents=True)
    (logs / "extract" / "a.log").write_text("probing a.mp4\n")
    (logs / "track" / "a.log").write_text(
        "tracking: 100%\nnice-core: error: old message\nmore output\n"
        "nice-core: error: no face found in any of 300 frames of a.mp4\n")
    (logs / "proxy_check" / "b.log").write_text(
        "nice-core: error: proxy has 25 fps, target 24000/1001 (23.976) fps\r\n")
    (logs / "track" / "b.log").write_text("nice-core: error: stale failure from an earlier run\n")
    os.utime(logs / "track" / "b.log", (1_000_000, 1_000_000))  # older than the proxy_check log
    (logs / "track" / "c.log").write_text('Traceback (most recent call last):\n  File "x.py", line 1\n'
                                          "ValueError: a bug\n")
    (logs / "track" / "e.log").write_text("epoch 3\nnice-core: terminated (SIGTERM); finished stages are kept\n")
    (logs / "track" / "f.log").write_text("some output\n")

    got = failures_from_logs(logs, ["a", "b", "c", "d", "e", "f"])
    assert [(f["name"], f["rule"], f["message"]) for f in got] == [
        ("a", "track", "no face found in any of 300 frames of a.mp4"),
        ("b", "proxy_check", "proxy has 25 fps, target 24000/1001 (23.976) fps"),
        ("c", "track", "crashed: ValueError: a bug"),
        ("d", None, f"no eval output and no log in {logs}"),
        ("e", "track", "terminated (SIGTERM); finished stages are kept"),
        ("f", "track", f"no 'nice-core: error:' line in the logs; see {logs / 'track' / 'f.log'}"),
    ]
    assert got[0]["log"] == str(logs / "track" / "a.log")
    # the workflow's per-target jobs log under the target's key: the videos of that target find them
    (logs / "track" / "clip-0123456789.log").write_text("nice-core: error: no face found in any of 9 frames\n")
    shared = failures_from_logs(logs, ["m1", "m2", "d"], {"m1": ["m1", "clip-0123456789"],
                                                          "m2": ["m2", "clip-0123456789"]})
    assert [(f["name"], f["rule"], f["message"]) for f in shared] == [
        ("m1", "track", "no face found in any of 9 frames"), ("m2", "track", "no face found in any of 9 frames"),
        ("d", None, f"no eval output and no log in {logs}")]
    assert failures_from_logs(tmp_path / "nowhere", []) == []
    with pytest.raises(InputError, match="log folder not found"):
        failures_from_logs(tmp_path / "nowhere", ["a"])
    table = aggregate(dataset_evals()[:1], got)
    assert [f["rule"] for f in table.failures] == ["track", "proxy_check", "track", None, "track", "track"]


# -- the page in a browser ------------------------------------------------------------------------------------


def _hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)


@pytest.mark.slow
def test_video_report_renders_in_chromium(tmp_path, short_clip, monkeypatch):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium); CI installs it")
    import av
    import cv2

    work = tmp_path / "work"
    work.mkdir()
    data = media_eval(work, short_clip)
    monkeypatch.chdir(work)
    html = write_video_report(data, tmp_path / "report.html")
    png = tmp_path / "shot.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1200,2400",
         html.resolve().as_uri()],
        check=True, capture_output=True, timeout=120)
    with av.open(str(png)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert image.shape == (2400, 1200, 3)
    for color in (PROXY_COLOR, OUTPUT_COLOR):
        mask = np.abs(image.astype(np.int16) - _hex_rgb(color)).max(axis=2) <= 40
        columns = np.flatnonzero(mask.any(axis=0))
        # The table swatch and legend entries are a few dozen pixels wide; a drawn curve spans the plot.
        assert mask.sum() > 1500, (color, mask.sum())
        assert len(columns) > 600 and columns.max() - columns.min() > 900, (color, len(columns))
    # The strips are drawn: the first column's thumbnails are found in the screenshot, one under the other
    # (target, proxy and output are the same clip, hence the same image three times; then the uncertainty).
    thumbs = JPEG_URI.findall(html.read_text())
    scores = {}
    for row in (0, 3):
        thumb = decode_image(base64.b64decode(thumbs[row * STRIP_FRAMES]), tmp_path / f"row{row}.jpg")
        scores[row] = cv2.matchTemplate(image, thumb, cv2.TM_CCOEFF_NORMED)
    _, best, _, (x, y) = cv2.minMaxLoc(scores[0])
    assert best > 0.95 and y > 900, (best, y)  # below the e_stab chart
    hits = np.flatnonzero(scores[0][:, x] > 0.95)
    tops = [int(h) for i, h in enumerate(hits) if i == 0 or h - hits[i - 1] > 10]
    pitch = tops[1] - tops[0] if len(tops) > 1 else 0
    assert len(tops) == 3 and THUMB <= pitch <= THUMB + 20 and tops[2] - tops[1] == pitch, tops
    _, best, _, (ux, uy) = cv2.minMaxLoc(scores[3])
    assert best > 0.95 and ux == x and abs(uy - (tops[2] + pitch)) <= 2, (best, ux, uy, tops)


def test_every_error_line_the_cli_prints_is_found_in_a_log(tmp_path, capsys):
    """argparse's own errors (a bad flag a config passed) carry the same prefix as the CLI's."""
    from nice_core.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["fit", "--store", "s.h5", "--proxy", "p.mp4", "-o", "c.safetensors", "--epochs", "many"])
    assert stop.value.code == 2
    logs = tmp_path / "logs"
    (logs / "carrier").mkdir(parents=True)
    (logs / "carrier" / "v.log").write_text(capsys.readouterr().err)
    [failure] = failures_from_logs(logs, ["v"])
    assert failure["message"] == "fit: argument --epochs: invalid int value: 'many'"


def test_the_dataset_report_states_how_each_rows_videos_are_compressed(tmp_path):
    """A detector must not tell refined from per-frame videos by their compression: the report says it."""
    c23 = {"codec": "h264", "pix_fmt": "yuv420p", "crf": 23.0, "lossless": False}
    evals = [make_eval("000_003", "FaceSwap", n=10), make_eval("010_000", "FaceSwap", n=10, seed=1)]
    evals[0].update(encoding=c23, proxy_encoding=c23)
    evals[1].update(encoding={**c23, "crf": 18.0}, proxy_encoding=c23)
    table = aggregate(evals, [])
    assert table.row("FaceSwap (proxy)").encoding_text() == "h264 yuv420p CRF 23"
    assert table.row("FaceSwap + NICe").encoding_text() == "h264 yuv420p CRF 18 (1); h264 yuv420p CRF 23 (1)"
    paths = write_dataset_report(table, tmp_path)
    with paths["csv"].open(newline="") as f:
        rows = {r["row"]: r for r in csv.DictReader(f)}
    assert rows["FaceSwap (proxy)"]["encoding"] == "h264 yuv420p CRF 23"
    assert json.loads(paths["json"].read_text())["rows"][-1]["encodings"] == {"h264 yuv420p CRF 18": 1,
                                                                             "h264 yuv420p CRF 23": 1}
    assert "CRF 18 (1); h264 yuv420p CRF 23 (1)" in paths["html"].read_text()

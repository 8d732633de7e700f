#!/usr/bin/env python
"""Crop jitter of the raw vs the temporally smoothed face alignment, and what the smoothing costs.

Runs ``track_video`` once (or reads an existing store with ``--store``), then from ``align_raw`` and
``align`` computes, on the four crop corners (``crop_corners(params)``, frame pixels):

* jitter: RMS over frames (and the four corners) of the length of the second temporal difference
  ``c[t+1] - 2 c[t] + c[t-1]``, using only frames t whose neighbours t-1 and t+1 also have a face; in
  pixels and in % of the crop side (each frame's difference divided by that frame's side);
* deviation (the lag/shape cost of smoothing): mean (and max) distance between the smoothed and the raw
  corners of the same frame, in pixels and in % of the raw crop side.

The same is printed for a sweep of ``smooth_sigma_s`` by re-smoothing ``align_raw`` with
``nice_core.face.alignment.smooth_params(align_raw, has_face, sigma_s * fps)``.

    python bench/crop_jitter.py
    python bench/crop_jitter.py --sigmas 0 0.025 0.05 0.1 0.2 0.4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"


def corners_of(params: np.ndarray) -> np.ndarray:
    """``(N, 4, 2)`` crop corners in frame pixels (NaN rows stay NaN)."""
    from nice_core.face.alignment import crop_corners

    out = np.full((len(params), 4, 2), np.nan)
    for i, p in enumerate(params):
        if np.isfinite(p).all():
            out[i] = crop_corners(p)
    return out


def jitter(params: np.ndarray, valid: np.ndarray) -> tuple[float, float, int]:
    """RMS second difference of the corners: (pixels, % of side, frames used)."""
    c = corners_of(params)
    side = 2.0 * np.exp(params[:, 2])
    ok = valid[1:-1] & valid[:-2] & valid[2:]
    d2 = c[2:] - 2.0 * c[1:-1] + c[:-2]                     # (N-2, 4, 2)
    length = np.linalg.norm(d2, axis=-1)[ok]                 # (M, 4)
    rel = length / side[1:-1][ok][:, None]
    return float(np.sqrt(np.mean(length ** 2))), float(100 * np.sqrt(np.mean(rel ** 2))), int(ok.sum())


def deviation(smoothed: np.ndarray, raw: np.ndarray, valid: np.ndarray) -> tuple[float, float, float, float]:
    """Distance smoothed vs raw corners: (mean px, mean % of side, max px, max % of side)."""
    dist = np.linalg.norm(corners_of(smoothed) - corners_of(raw), axis=-1)[valid]   # (M, 4)
    rel = 100 * dist / (2.0 * np.exp(raw[valid, 2]))[:, None]
    return float(dist.mean()), float(rel.mean()), float(dist.max()), float(rel.max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SAMPLE, help="input video (default: the bundled sample)")
    parser.add_argument("--store", type=Path, help="use this existing face.h5 instead of running tracking")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2],
                        help="smooth_sigma_s values (seconds) to compare")
    args = parser.parse_args(argv)

    from nice_core.face.alignment import smooth_params
    from nice_core.face.track import TrackConfig, track_video
    from nice_core.store import FaceStore

    with tempfile.TemporaryDirectory(prefix="nice_bench_") as tmp:
        store_path = args.store
        if store_path is None:
            print(f"video: {args.video}")
            result = track_video(args.video, tmp, TrackConfig(), show_progress=False)
            print(f"tracked: {result.summary()} ({result.frames_detected} detected)")
            store_path = result.store
        with FaceStore.open(store_path) as store:
            raw = store["align_raw"][:]
            align = store["align"][:]
            has_face = store["has_face"][:]
            probe = store.json_attr("probe")
            config = store.json_attr("config")

    num, den = (int(v) for v in probe["fps"].split("/"))
    fps = num / den
    stored_sigma = float(config["smooth_sigma_s"])
    side = 2.0 * np.exp(raw[has_face, 2])
    print(f"frames: {len(raw)}, with face: {int(has_face.sum())}, fps: {fps:.3f}, "
          f"crop side: mean {side.mean():.1f} px (min {side.min():.1f}, max {side.max():.1f})")
    print("jitter = RMS over frames and corners of |c[t+1] - 2 c[t] + c[t-1]| (crop corners, frame px)")
    print("deviation = distance between smoothed and raw crop corners of the same frame")
    print()

    j_raw = jitter(raw, has_face)
    j_align = jitter(align, has_face)
    dev = deviation(align, raw, has_face)
    print(f"stored params (smooth_sigma_s = {stored_sigma:g} s = {stored_sigma * fps:.2f} frames), "
          f"{j_raw[2]} frame triples:")
    print(f"  raw (align_raw)  jitter: {j_raw[0]:.3f} px = {j_raw[1]:.3f} % of side")
    print(f"  smoothed (align) jitter: {j_align[0]:.3f} px = {j_align[1]:.3f} % of side "
          f"(x{j_raw[0] / j_align[0]:.1f} less)")
    print(f"  smoothed vs raw deviation: mean {dev[0]:.2f} px = {dev[1]:.2f} % of side; "
          f"max {dev[2]:.2f} px = {dev[3]:.2f} % of side")
    print()

    header = (f"{'sigma_s':>8} {'frames':>7} {'jitter px':>10} {'jitter %':>9} {'reduction':>9} "
              f"{'dev mean px':>11} {'dev mean %':>10} {'dev max px':>10} {'dev max %':>9}")
    print("smooth_params(align_raw, has_face, sigma_s * fps) sweep:")
    print(header)
    rows = []
    for sigma_s in args.sigmas:
        smoothed = smooth_params(raw, has_face, sigma_s * fps)
        j = jitter(smoothed, has_face)
        d = deviation(smoothed, raw, has_face)
        mark = "  <- default" if abs(sigma_s - stored_sigma) < 1e-12 else ""
        if mark and not np.allclose(smoothed[has_face], align[has_face], atol=1e-9):
            mark += " (!! differs from the stored align)"
        print(f"{sigma_s:>8g} {sigma_s * fps:>7.2f} {j[0]:>10.3f} {j[1]:>9.3f} {j_raw[0] / j[0]:>8.1f}x "
              f"{d[0]:>11.2f} {d[1]:>10.2f} {d[2]:>10.2f} {d[3]:>9.2f}{mark}")
        rows.append({"sigma_s": sigma_s, "jitter_px": j[0], "jitter_pct": j[1], "dev_mean_px": d[0],
                     "dev_mean_pct": d[1], "dev_max_px": d[2], "dev_max_pct": d[3]})
    print()
    print("json:", json.dumps({"raw_jitter_px": j_raw[0], "raw_jitter_pct": j_raw[1],
                               "align_jitter_px": j_align[0], "align_jitter_pct": j_align[1],
                               "deviation": dev, "sweep": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

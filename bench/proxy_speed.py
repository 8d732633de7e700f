#!/usr/bin/env python
"""Speed of the proxy generators, and a flicker sanity check of the benchmark they make.

On one video (default: the bundled sample), times:

(a) the built-in swapper ``nice_core.proxy.swap.swap_video(identity, target, out, show_progress=False)``
    as a *self-swap*: the identity is frame ``--identity-frame`` of the same video, written as a PNG
    (``cv2.imwrite`` of ``VideoReader(video)[i]``). Three runs: detection inside the swapper (no store);
    with ``store=`` a ``face.h5`` from ``nice_core.face.track_video`` (default ``TrackConfig`` but
    ``preview=False``; its own time is printed too); and ``SwapConfig(blend="seamless")`` with that store.
(b) ``nice_core.groundtruth.clip.make_benchmark(video, outdir, BenchConfig(frames=N))``, without and with
    ``camera_move=True``, with a breakdown (source copy/camera move + encode, tracking of target.mp4,
    landmark smoothing, per-frame edit, rest).
    Breakdowns wrap a few functions of ``nice_core`` with timers in this process (nothing is changed).
(c) flicker of the benchmark outputs inside the face: ``track_video`` (``preview=False``) on each
    ``target.mp4``; the face region of frame t is where its stored mask, warped into the frame through the
    inverse transform (bilinear), is > 0.5. For t with a face in t and t-1 it averages
    ``|V[t] - V[t-1]|`` over the pixels in the face region of t or t-1 and the three channels, for
    V = target, clean, proxy; then the mean over t. Also the same outside every face region (proxy = clean
    there by construction), the mean ``|proxy - clean|`` inside the face, and the frame-to-frame change of
    the edit itself, ``|(V - X)[t] - (V - X)[t-1]|`` inside the face (X = target; V = clean, proxy), which
    takes the subject's and the camera's own motion out. Last, what a trivial temporal filter does: F(V) =
    the centred mean of 5 frames of V, and the mean ``|F(V) - G|`` inside the face of the centre frame, for
    V = proxy (does averaging recover G?) and V = clean (the filter's own damage, ghosting under motion).

Frames/s = frames of the video / wall seconds of the call (model loading and encoding included).

    python bench/proxy_speed.py
    python bench/proxy_speed.py --frames 120 --repeat 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"


def write_identity(video: Path, index: int, path: Path) -> None:
    import cv2

    from nice_core.io import VideoReader

    with VideoReader(video) as reader:
        frame = reader[index]
    if not cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"cannot write {path}")


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (ffmpeg encoders), user + system."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def best_of(repeat: int, call, which: str | None = None) -> tuple[float, object, dict[str, float]]:
    """Smallest wall time of ``repeat`` calls, the last call's result and the best call's part timings.

    Every call's wall time, CPU time and the 1-minute load average before and after are printed.
    """
    best, result, parts = float("inf"), None, {}
    for _ in range(repeat):
        with (timers(which) if which else contextlib.nullcontext({})) as totals:
            load = os.getloadavg()[0]
            cpu0, start = cpu_seconds(), time.perf_counter()
            result = call()
            wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
        print(f"    (run: wall {wall:.2f} s, CPU {cpu:.2f} s, 1-min load {load:.2f} -> {os.getloadavg()[0]:.2f})")
        if wall < best:
            best, parts = wall, dict(totals)
    return best, result, parts


def print_parts(wall: float, parts: dict[str, float], rest_label: str) -> float:
    rest = wall - sum(parts.values())
    for part, seconds in [*parts.items(), (rest_label, rest)]:
        print(f"      {part:<52s} {seconds:6.2f} s  {100 * seconds / wall:5.1f} %")
    return rest


@contextlib.contextmanager
def timers(which: str):
    """Wall time inside parts of swap_video (``which="swap"``) or make_benchmark (``"bench"``).

    Module attributes are wrapped for the duration of the block; nothing in nice_core is changed.
    """
    from track_throughput import Timers  # bench/ is on sys.path when a bench script runs

    import nice_core.face.track as track
    import nice_core.groundtruth.clip as benchmark
    import nice_core.proxy.swap as swap
    from nice_core.face.landmarks import FaceMeshDetector

    timed = Timers()
    if which == "swap":
        timed.wrap(swap, "load_identity", "load identity (face mesh on the still)")
        timed.wrap(FaceMeshDetector, "detect", "face mesh detect (target frames; + the still)")
        timed.wrap(swap, "swap_frame", "swap_frame (warp, colour, blend)")
    else:
        timed.wrap(track, "track_video", "track target.mp4 (track_video, crop 32, no preview)")
        timed.wrap(benchmark, "_smooth_landmarks", "smooth landmarks")
        timed.wrap(benchmark, "_edit_frame", "edit frames (clean + proxy, per frame)")
    try:
        yield timed.total
    finally:
        timed.restore()


def face_regions(store_path: Path, height: int, width: int) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """has_face and, per frame, the boolean face region (mask warped into the frame > 0.5)."""
    import cv2

    from nice_core.face.alignment import invert_affine
    from nice_core.store import FaceStore

    regions: list[np.ndarray | None] = []
    with FaceStore.open(store_path) as store:
        has_face = store["has_face"][:]
        for index in range(len(has_face)):
            if not has_face[index]:
                regions.append(None)
                continue
            alpha = store["masks"][index].astype(np.float32) / 255.0
            weight = cv2.warpAffine(alpha, invert_affine(store["transforms"][index]), (width, height),
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
            regions.append(weight > 0.5)
    return has_face, regions


def flicker(folder: Path, tmp: Path, window: int = 5) -> dict:
    """Mean |V[t] - V[t-1]| inside / outside the target's face region, for target, clean and proxy."""
    from nice_core.face.track import TrackConfig, track_video
    from nice_core.io import VideoReader, probe_video

    probe = probe_video(folder / "target.mp4")
    result = track_video(folder / "target.mp4", tmp, TrackConfig(preview=False), show_progress=False)
    has_face, regions = face_regions(result.store, probe.height, probe.width)
    names = ("target", "clean", "proxy")
    inside = {k: [] for k in names}
    outside = {k: [] for k in names}
    edit = {k: [] for k in names[1:]}
    error = []
    # A trivial temporal filter: the centred mean of `window` frames, compared with G at the centre frame.
    filtered = {"proxy": [], "clean": []}
    history: deque = deque(maxlen=window)
    readers = [VideoReader(folder / f"{k}.mp4") for k in names]
    previous = None
    try:
        for index in range(len(readers[0])):
            frames = [r[index].astype(np.int16) for r in readers]
            if regions[index] is not None:
                error.append(float(np.abs(frames[2] - frames[1])[regions[index]].mean()))
            history.append(frames)
            centre = index - window // 2
            if len(history) == window and regions[centre] is not None:
                g = history[window // 2][1]
                for k, column in (("clean", 1), ("proxy", 2)):
                    mean = np.mean([h[column] for h in history], axis=0)
                    filtered[k].append(float(np.abs(mean - g)[regions[centre]].mean()))
            if previous is not None and regions[index] is not None and regions[index - 1] is not None:
                face = regions[index] | regions[index - 1]
                rest = ~face
                for k, now, before in zip(names, frames, previous):
                    diff = np.abs(now - before)
                    inside[k].append(float(diff[face].mean()))
                    outside[k].append(float(diff[rest].mean()))
                    if k != "target":  # the change of the edit itself: (V - X)[t] - (V - X)[t-1]
                        change = (now - frames[0]) - (before - previous[0])
                        edit[k].append(float(np.abs(change)[face].mean()))
            previous = frames
    finally:
        for r in readers:
            r.close()
    out = {"frames": len(has_face), "pairs": len(inside["target"]),
           "inside": {k: float(np.mean(v)) for k, v in inside.items()},
           "outside": {k: float(np.mean(v)) for k, v in outside.items()},
           "edit_inside": {k: float(np.mean(v)) for k, v in edit.items()},
           "proxy_minus_clean_inside": float(np.mean(error)),
           "window": window, "filtered_minus_clean_inside": {k: float(np.mean(v)) for k, v in filtered.items()}}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SAMPLE, help="input video (default: the bundled sample)")
    parser.add_argument("--identity-frame", type=int, default=300, help="frame used as the identity still")
    parser.add_argument("--frames", type=int, default=120, help="BenchConfig.frames for make_benchmark")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each timed call; the best is reported")
    parser.add_argument("--skip-swap", action="store_true", help="skip (a)")
    parser.add_argument("--skip-bench", action="store_true", help="skip (b) and (c)")
    args = parser.parse_args(argv)

    from nice_core.face.track import TrackConfig, track_video
    from nice_core.groundtruth.clip import BenchConfig, make_benchmark
    from nice_core.io import probe_video
    from nice_core.proxy.swap import SwapConfig, swap_video

    probe = probe_video(args.video)
    n = probe.n_frames
    print(f"load average at start (1, 5, 15 min): {os.getloadavg()}")
    print(f"video: {args.video} ({n} frames {probe.width}x{probe.height}); best of {args.repeat}")
    report: dict = {"video": str(args.video), "frames": n, "repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="nice_bench_") as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_swap:
            identity = tmp / "identity.png"
            write_identity(args.video, args.identity_frame, identity)
            wall, tracked, _ = best_of(args.repeat, lambda: track_video(
                args.video, tmp / "track", TrackConfig(preview=False), show_progress=False))
            store = tracked.store
            print(f"(a) self-swap, identity = frame {args.identity_frame} as PNG")
            print(f"  track_video for the store (preview off): {wall:6.2f} s = {n / wall:6.1f} frames/s")
            report["track_for_store"] = {"wall_s": wall, "fps": n / wall}
            runs = [("feather, no store (detects faces itself)", SwapConfig(), None),
                    ("feather, store=face.h5", SwapConfig(), store),
                    ("seamless, store=face.h5", SwapConfig(blend="seamless"), store)]
            report["swap"] = []
            for label, config, face_store in runs:
                wall, result, parts = best_of(args.repeat, lambda c=config, f=face_store: swap_video(
                    identity, args.video, tmp / "proxy.mp4", c, store=f, show_progress=False), "swap")
                print(f"  swap_video {label:<42s}: {wall:6.2f} s = {n / wall:6.1f} frames/s "
                      f"({result.frames_swapped} frames swapped)")
                rest = print_parts(wall, parts, "rest (decode, store reads, pose, encode)")
                report["swap"].append({"run": label, "wall_s": wall, "fps": n / wall,
                                       "frames_swapped": result.frames_swapped, "parts_s": parts, "rest_s": rest})
        if not args.skip_bench:
            print(f"(b) make_benchmark(BenchConfig(frames={args.frames}))")
            report["bench"] = []
            folders = {}
            for move in (False, True):
                folder = tmp / f"bench_{'move' if move else 'static'}"
                config = BenchConfig(frames=args.frames, camera_move=move)
                wall, meta, totals = best_of(args.repeat, lambda o=folder, c=config: make_benchmark(
                    args.video, o, c, show_progress=False), "bench")
                frames = meta["frames"]
                folders[move] = folder
                print(f"  camera_move={move!s:<5}: {wall:6.2f} s for {frames} frames = {frames / wall:5.1f} frames/s "
                      f"({meta['frames_with_face']} with a face, {len(meta['outlier_frames'])} outliers)")
                rest = print_parts(wall, totals, "rest (copy source / camera move, encode 3 videos)")
                report["bench"].append({"camera_move": move, "wall_s": wall, "frames": frames,
                                        "fps": frames / wall, "parts_s": totals, "rest_s": rest})
            print("(c) flicker: mean |V[t] - V[t-1]| (0-255), inside the target's face region (mask > 0.5, "
                  "t or t-1) and outside it")
            print(f"  {'benchmark':<18s} {'pairs':>5} {'target in':>9} {'clean in':>8} {'proxy in':>8} "
                  f"{'proxy/target':>12} {'target out':>10} {'clean out':>9} {'proxy out':>9} {'|P-G| in':>8} "
                  f"{'edit G in':>9} {'edit P in':>9} {'|F(P)-G| in':>11} {'|F(G)-G| in':>11}")
            report["flicker"] = []
            for move, folder in folders.items():
                f = flicker(folder, tmp / f"flicker_{move}")
                i, o, fil = f["inside"], f["outside"], f["filtered_minus_clean_inside"]
                print(f"  {'camera_move=' + str(move):<18s} {f['pairs']:>5d} {i['target']:>9.2f} {i['clean']:>8.2f} "
                      f"{i['proxy']:>8.2f} {i['proxy'] / i['target']:>11.2f}x {o['target']:>10.2f} "
                      f"{o['clean']:>9.2f} {o['proxy']:>9.2f} {f['proxy_minus_clean_inside']:>8.2f} "
                      f"{f['edit_inside']['clean']:>9.2f} {f['edit_inside']['proxy']:>9.2f} "
                      f"{fil['proxy']:>11.2f} {fil['clean']:>11.2f}")
                report["flicker"].append({"camera_move": move, **f})
            print("  F = centred mean of 5 frames (a trivial temporal filter), compared with G at the centre frame")
    print(f"load average at end (1, 5, 15 min): {os.getloadavg()} (this machine has {os.cpu_count()} CPUs; "
          "a load above that means other processes competed for them)")
    print("json:", json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

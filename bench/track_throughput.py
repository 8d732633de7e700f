#!/usr/bin/env python
"""Throughput of the face tracking/alignment stage (``track_video``) in frames per second.

Runs the whole stage (probe, hash, detect pass, gap fill + smoothing, crop pass, preview encode) on a
video, ``--repeat`` times, and reports wall time per frame. A breakdown is measured in the same run by
wrapping a few functions of ``nice_core`` with timers (no code in ``nice_core`` is changed), plus a
separate decode-only pass with :class:`~nice_core.io.reader.VideoReader` (the stage decodes twice).

    python bench/track_throughput.py                      # the bundled sample, default config
    python bench/track_throughput.py --repeat 3 --no-preview
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"


class Timers:
    """Accumulates wall time per label of wrapped callables (re-entrant calls are not double counted)."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._patches: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.total[label] += time.perf_counter() - start
                self.calls[label] += 1

        self._patches.append((owner, name, original))
        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self._patches):
            setattr(owner, name, original)
        self._patches.clear()

    def reset(self) -> None:
        self.total.clear()
        self.calls.clear()


DETECT = "pass 1: detect (total)"
CROP = "pass 2: crop (total)"
#: Print order of the breakdown; indented labels are parts of the unindented one above them.
ORDER = [
    "probe (validate, decode all packets)",
    "sha256 of the input",
    DETECT,
    "  face mesh (mediapipe)",
    "  hands (mediapipe)",
    "gap fill",
    "smoothing",
    CROP,
    "  face mask",
    "  head pose",
    "  draw preview",
    "  preview pipe to ffmpeg",
    "preview close (ffmpeg flush)",
]


@contextlib.contextmanager
def instrumented():
    """Wrap the stage's main parts with timers for the duration of the block."""
    import nice_core.face.track as track
    from nice_core.face import landmarks
    from nice_core.io import writer

    timers = Timers()
    timers.wrap(track, "probe_video", "probe (validate, decode all packets)")
    timers.wrap(track, "file_sha256", "sha256 of the input")
    timers.wrap(track, "_detect_pass", DETECT)
    timers.wrap(landmarks.FaceMeshDetector, "detect", "  face mesh (mediapipe)")
    timers.wrap(landmarks.HandDetector, "detect", "  hands (mediapipe)")
    timers.wrap(track, "_fill_gaps", "gap fill")
    timers.wrap(track, "smooth_params", "smoothing")
    timers.wrap(track, "_crop_pass", CROP)
    timers.wrap(track, "face_mask", "  face mask")
    timers.wrap(track, "head_pose", "  head pose")
    timers.wrap(track, "draw_preview", "  draw preview")
    timers.wrap(writer.VideoWriter, "write", "  preview pipe to ffmpeg")
    timers.wrap(writer.VideoWriter, "close", "preview close (ffmpeg flush)")
    try:
        yield timers
    finally:
        timers.restore()


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (the preview ffmpeg), user + system."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def decode_only(video: Path) -> tuple[int, float]:
    """Frames and seconds for one sequential decode pass with VideoReader (probe excluded)."""
    from nice_core.io import VideoReader, probe_video

    probe = probe_video(video)
    start = time.perf_counter()
    with VideoReader(video, probe) as reader:
        n = 0
        for _ in reader.iter_frames():
            n += 1
    return n, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SAMPLE, help="input video (default: the bundled sample)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of track_video; the best is reported")
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--no-preview", action="store_true", help="do not write preview.mp4")
    parser.add_argument("--no-hands", action="store_true", help="do not run the hand detector")
    parser.add_argument("--no-breakdown", action="store_true", help="skip timers and the decode-only pass")
    args = parser.parse_args(argv)

    from nice_core.face.track import TrackConfig, track_video

    config = TrackConfig(crop_size=args.crop_size, preview=not args.no_preview, detect_hands=not args.no_hands)
    print(f"load average at start (1, 5, 15 min): {os.getloadavg()}")
    print(f"video: {args.video}")
    print(f"config: crop_size={config.crop_size} preview={config.preview} detect_hands={config.detect_hands}")

    runs: list[tuple[float, dict[str, float], dict[str, int]]] = []
    n_frames = 0
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="nice_bench_") as tmp:
            ctx = contextlib.nullcontext(None) if args.no_breakdown else instrumented()
            with ctx as timers:
                load = os.getloadavg()[0]
                cpu0, start = cpu_seconds(), time.perf_counter()
                result = track_video(args.video, tmp, config, show_progress=False)
                wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
                totals = dict(timers.total) if timers else {}
                calls = dict(timers.calls) if timers else {}
        n_frames = result.n_frames
        runs.append((wall, totals, calls))
        print(f"run {run + 1}: {wall:.2f} s for {n_frames} frames = {n_frames / wall:.2f} frames/s "
              f"({result.summary()}); CPU {cpu:.2f} s (incl. ffmpeg); 1-min load {load:.2f} -> "
              f"{os.getloadavg()[0]:.2f}")

    wall, totals, calls = min(runs, key=lambda r: r[0])
    print()
    print(f"track_video throughput: {n_frames / wall:.2f} frames/s "
          f"({1000 * wall / n_frames:.1f} ms/frame, best of {len(runs)}, {wall:.2f} s wall for {n_frames} frames)")

    if not args.no_breakdown:
        print()
        print("breakdown of the best run (wall time inside each part; indented = part of the line above):")
        detect_parts = ("  face mesh (mediapipe)", "  hands (mediapipe)")
        crop_parts = ("  face mask", "  head pose", "  draw preview", "  preview pipe to ffmpeg")
        rows = [(label, totals.get(label, 0.0), calls.get(label, 0)) for label in ORDER]
        other_detect = totals.get(DETECT, 0.0) - sum(totals.get(k, 0.0) for k in detect_parts)
        other_crop = totals.get(CROP, 0.0) - sum(totals.get(k, 0.0) for k in crop_parts)
        rows.insert(ORDER.index(DETECT) + len(detect_parts) + 1,
                    ("  other (model load, decode, tracker, HDF5)", other_detect, None))
        rows.insert(ORDER.index(CROP) + len(crop_parts) + 2,
                    ("  other (decode, warp, HDF5 I/O)", other_crop, None))
        accounted = sum(totals.get(k, 0.0) for k in ORDER if not k.startswith(" "))
        rows.append(("rest (store create/close, reader open)", wall - accounted, None))
        for label, seconds, n_calls in rows:
            per = 1000 * seconds / n_frames
            extra = f"  ({n_calls} calls)" if n_calls is not None else ""
            print(f"  {label:<42s} {seconds:7.2f} s  {per:6.1f} ms/frame  {100 * seconds / wall:5.1f} %{extra}")
        n_dec, dec = decode_only(args.video)
        print(f"decode only (VideoReader.iter_frames, one pass): {dec:.2f} s for {n_dec} frames = "
              f"{n_dec / dec:.1f} frames/s ({1000 * dec / n_dec:.1f} ms/frame; the stage decodes twice)")
    print(f"load average at end (1, 5, 15 min): {os.getloadavg()} (this machine has {os.cpu_count()} CPUs; "
          "a load above that means other processes competed for them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

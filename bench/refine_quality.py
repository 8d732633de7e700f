#!/usr/bin/env python
"""Full-frame quality and speed of ``nice-core refine`` on flicker benchmarks with a clean ground truth.

Clips: 10 s (240-frame) benchmarks made from the bundled sample with ``nice-core bench make``
(:class:`~nice_core.proxy.benchmark.BenchConfig`): a consistent synthetic face edit G (the clean reference)
of the target X, and a flickering proxy P of G (colour casts, 1-2 px jitter, mask jitter, 6% outlier frames).

* ``move-a``: frames 0-239 with a synthetic camera move;
* ``static``: frames 232-471, no camera move;
* ``move-b``: frames 120-359, camera move, another seed.

Per clip, ``nice-core refine`` runs with the default settings (a subprocess: its wall time, the time per
stage from ``--json`` and its peak RSS are measured) and again with ``--no-uncertainty`` (the ablation); a
trivial baseline is a temporal Gaussian filter of P (sigma 2 frames). Every video is scored with
``nice-core eval``'s functions against X with G as the reference, inside the target's face oval:

* ``e_stab`` (x1e3), target-flow warping error (P's and X's own for comparison);
* ``PSNR(.,G)``: masked PSNR against the clean edit; ``PSNR(.,X)``: against the target (an output that
  reverted to the target scores high here);
* ``detail``: mean |Laplacian| relative to G's.

    python bench/refine_quality.py                        # all clips, ~15 min per clip on 2 CPU cores
    python bench/refine_quality.py --clips move-a --json /tmp/q.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"

CLIPS = {
    "move-a": {"start": 0, "frames": 240, "camera_move": True, "seed": 0},
    "static": {"start": 232, "frames": 240, "camera_move": False, "seed": 0},
    "move-b": {"start": 120, "frames": 240, "camera_move": True, "seed": 1},
}
VARIANTS = {"NICe": [], "NICe w/o uncertainty": ["--no-uncertainty"]}


def gaussian_baseline(proxy: Path, output: Path, sigma: float = 2.0) -> None:
    """Temporal Gaussian filter of ``proxy`` (streamed with a window of ``2 * 3 sigma + 1`` frames)."""
    from collections import deque

    from nice_core.io import VideoReader, probe_video
    from nice_core.io.writer import VideoWriter

    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    probe = probe_video(proxy)
    n = probe.n_frames
    window: deque[np.ndarray] = deque()
    with VideoReader(proxy) as reader, VideoWriter(output, probe.width, probe.height, probe.fps,
                                                  label_inputs={"proxy": proxy}, protect=(proxy,)) as writer:
        frames = reader.iter_frames()
        loaded = -1
        for t in range(n):
            while loaded < min(n - 1, t + radius):
                loaded += 1
                window.append(next(frames)[1].astype(np.float32))
            while len(window) > loaded - max(0, t - radius) + 1:
                window.popleft()
            first = max(0, t - radius)
            weights = taps[first - t + radius: loaded - t + radius + 1]
            mix = sum(w * f for w, f in zip(weights, window)) / weights.sum()
            writer.write(np.clip(np.round(mix), 0, 255).astype(np.uint8))


def masked_psnrs(video: Path, target: Path, clean: Path, store: Path) -> tuple[float, float]:
    """Mean masked PSNR of ``video`` against ``clean`` and against ``target`` (face oval of the store)."""
    from nice_core.io import VideoReader
    from nice_core.metrics.image import face_region_mask, masked_psnr
    from nice_core.store import FaceStore

    vs_clean, vs_target = [], []
    with FaceStore.open(store) as fs, VideoReader(video) as v, VideoReader(target) as x, VideoReader(clean) as g:
        has_face, landmarks = fs["has_face"][:], fs["landmarks"]
        for (i, a), (_, b), (_, c) in zip(v.iter_frames(), x.iter_frames(), g.iter_frames()):
            if not has_face[i]:
                continue
            mask = face_region_mask(landmarks[i], a.shape[:2])
            vs_clean.append(masked_psnr(a, c, mask))
            vs_target.append(masked_psnr(a, b, mask))
    return float(np.mean(vs_clean)), float(np.mean(vs_target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=list(CLIPS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/refine_quality"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--refine-args", default="", help="extra arguments for nice-core refine")
    args = parser.parse_args()

    from nice_core.face import TrackConfig, track_video
    from nice_core.metrics import evaluate
    from nice_core.proxy.benchmark import BenchConfig, make_benchmark

    results: dict = {}
    for clip in args.clips:
        folder = args.work / clip
        if not (folder / "meta.json").is_file():
            make_benchmark(SAMPLE, folder, BenchConfig(**CLIPS[clip]), show_progress=False)
        target, proxy, clean = folder / "target.mp4", folder / "proxy.mp4", folder / "clean.mp4"
        store = folder / "scoring" / "face.h5"
        if not store.is_file():
            track_video(target, store.parent, TrackConfig(preview=False), show_progress=False)
        videos: dict[str, Path] = {"target X": target, "proxy P": proxy, "clean G": clean}
        baseline = folder / "gaussian.mp4"
        if not baseline.is_file():
            gaussian_baseline(proxy, baseline)
        videos["P temporal Gaussian"] = baseline
        rows: dict[str, dict] = {}
        for variant in args.variants:
            out = folder / f"{variant.replace(' ', '_').replace('/', '')}.mp4"
            info = folder / f"{out.stem}.json"
            cmd = ["nice-core", "refine", "--target", str(target), "--proxy", str(proxy), "--output", str(out),
                   "--json", str(info), "-q", *VARIANTS[variant], *args.refine_args.split()]
            start = time.perf_counter()
            subprocess.run(cmd, check=True)
            wall = time.perf_counter() - start
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            stages = json.loads(info.read_text())["seconds"]
            rows[variant] = {"wall_s": wall, "peak_rss_mb_children": peak_mb, "stages_s": stages}
            print(f"{clip} {variant}: {wall:.0f} s wall (" + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items())
                  + f"), peak RSS so far {peak_mb:.0f} MB", flush=True)
            videos[variant] = out
        for name, video in videos.items():
            metrics = evaluate(target, video, reference=clean, show_progress=False)
            psnr_g, psnr_x = masked_psnrs(video, target, clean, store)
            row = rows.setdefault(name, {})
            row.update(e_stab=metrics["e_stab"], psnr_clean=psnr_g, psnr_target=psnr_x,
                       detail=metrics["detail_ratio"], eval_psnr=metrics.get("psnr"))
            print(f"{clip} {name}: e_stab {1e3 * row['e_stab']:.3f}e-3, PSNR(.,G) {psnr_g:.2f}, "
                  f"PSNR(.,X) {psnr_x:.2f}, detail {row['detail']:.3f}", flush=True)
        results[clip] = rows
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")

    print("\n| clip | video | e_stab x1e3 | PSNR(.,G) dB | PSNR(.,X) dB | detail / G |")
    print("|---|---|---|---|---|---|")
    for clip, rows in results.items():
        for name, row in rows.items():
            print(f"| {clip} | {name} | {1e3 * row['e_stab']:.3f} | {row['psnr_clean']:.2f} | "
                  f"{row['psnr_target']:.2f} | {row['detail']:.3f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

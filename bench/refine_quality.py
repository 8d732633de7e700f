#!/usr/bin/env python
"""Does ``nice-core refine`` carry the swap? Quality on a tuning set and a separate evaluation set.

The protocol (``docs/benchmarks.md``, "Carrying the swap"): flicker benchmarks made by ``nice-core bench
make`` from disjoint stretches of the bundled sample (the only footage whose licence lets it ship), each
with every edit family a swapper brings (outline and interior geometry, skin tone and texture, spots,
lines and eyebrows the target lacks) under its own seed, and a proxy P of the clean edit G with swap-like
faults. Defaults are chosen on ``tuning``; the numbers in the docs come from ``evaluation`` only.

Per clip, ``nice-core refine`` runs with the defaults (plus ``--refine-args``, for variants) and is scored
next to its peers (the proxy, a trivial temporal Gaussian of P, and the flow-guided filter of P guided by
the target's flow, ``bench/flow_filter.py``) with ``nice-core eval``'s functions, against G:

* ``PSNR(.,G)`` in the face (the target's oval grown by 8%), its inner part and its outer ring, and
  ``PSNR(.,X)`` against the target in the same face region (an output that reverts to the target scores
  high there);
* ``e_stab`` (x1e3) with the original footage's, the detail ratio to G, and the fine-detail transfer
  (``docs/metrics.md``).

The acceptance bars of the swap-fidelity issue are checked per clip and printed.

    python bench/refine_quality.py --set evaluation                 # 4 clips, ~5 min each on 2 CPU cores
    python bench/refine_quality.py --set tuning --refine-args "--set steps=1200" --tag steps1200
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
sys.path.insert(0, str(REPO / "bench"))

#: Every edit family, at the strengths the protocol uses (a clip's seed draws its marks and faults).
FAMILIES = {"edit_strength": 0.0, "outline_strength": 1.0, "interior_strength": 1.0, "tone_strength": 1.0,
            "texture": 0.5, "spots": 14, "lines": 4, "brows": 1.0}
#: Disjoint frame ranges of the sample: tuning 0-151, evaluation 152-471.
CLIPS = {
    "tune-move": {"set": "tuning", "start": 0, "frames": 76, "camera_move": True, "camera_style": "handheld",
                  "seed": 101},
    "tune-static": {"set": "tuning", "start": 76, "frames": 76, "seed": 102},
    "eval-static-a": {"set": "evaluation", "start": 152, "frames": 80, "seed": 1},
    "eval-move-a": {"set": "evaluation", "start": 232, "frames": 80, "camera_move": True,
                    "camera_style": "handheld", "seed": 2},
    "eval-static-b": {"set": "evaluation", "start": 312, "frames": 80, "seed": 3},
    "eval-move-b": {"set": "evaluation", "start": 392, "frames": 80, "camera_move": True, "camera_style": "pan",
                    "seed": 4},
}
PEERS = ("proxy P", "P temporal Gaussian", "P flow-guided filter")


def gaussian_baseline(proxy: Path, output: Path, sigma: float = 2.0) -> None:
    """Temporal Gaussian filter of ``proxy`` (streamed with a window of ``2 * 3 sigma + 1`` frames)."""
    from collections import deque

    from nice_core.io import VideoReader, probe_video
    from nice_core.io.writer import VideoWriter
    from nice_core.provenance import synthetic_label

    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    probe = probe_video(proxy)
    n = probe.n_frames
    window: deque[np.ndarray] = deque()
    with VideoReader(proxy) as reader, VideoWriter(output, probe.width, probe.height, probe.fps,
                                                  label=synthetic_label({"proxy": proxy}), protect=(proxy,)) as writer:
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


def target_psnrs(video: Path, target: Path, clean: Path, store: Path) -> tuple[float, float]:
    """Mean PSNR of ``video`` against ``clean`` and against ``target`` in the grown face region."""
    from nice_core.io import VideoReader
    from nice_core.metrics.image import face_regions, masked_psnr
    from nice_core.store import FaceStore

    vs_clean, vs_target = [], []
    with FaceStore.open(store) as fs, VideoReader(video) as v, VideoReader(target) as x, VideoReader(clean) as g:
        has_face, landmarks = fs["has_face"][:], fs["landmarks"]
        for (i, a), (_, b), (_, c) in zip(v.iter_frames(), x.iter_frames(), g.iter_frames()):
            if not has_face[i]:
                continue
            mask = face_regions(landmarks[i], a.shape[:2])["face"]
            vs_clean.append(masked_psnr(a, c, mask))
            vs_target.append(masked_psnr(a, b, mask))
    return float(np.mean(vs_clean)), float(np.mean(vs_target))


def make_clip(name: str, work: Path) -> Path:
    from nice_core.face import TrackConfig, track_video
    from nice_core.groundtruth.clip import BenchConfig, make_benchmark

    folder = work / name
    settings = {k: v for k, v in CLIPS[name].items() if k != "set"}
    if not (folder / "meta.json").is_file():
        make_benchmark(SAMPLE, folder, BenchConfig(**FAMILIES, **settings), show_progress=False)
    store = folder / "scoring" / "face.h5"
    if not store.is_file():
        track_video(folder / "target.mp4", store.parent, TrackConfig(preview=False), show_progress=False)
    return folder


def peers(folder: Path) -> dict[str, Path]:
    from flow_filter import flow_filter

    videos = {"target X": folder / "target.mp4", "clean G": folder / "clean.mp4", "proxy P": folder / "proxy.mp4"}
    if not (folder / "gaussian.mp4").is_file():
        gaussian_baseline(folder / "proxy.mp4", folder / "gaussian.mp4")
    if not (folder / "flow_filter.mp4").is_file():
        seconds = flow_filter(folder / "target.mp4", folder / "proxy.mp4", folder / "flow_filter.mp4")
        (folder / "flow_filter.seconds").write_text(f"{seconds:.1f}\n")
    videos["P temporal Gaussian"] = folder / "gaussian.mp4"
    videos["P flow-guided filter"] = folder / "flow_filter.mp4"
    return videos


def run_refine(folder: Path, tag: str, refine_args: list[str]) -> tuple[Path, dict]:
    out = folder / f"nice_{tag}.mp4"
    info = folder / f"nice_{tag}.json"
    if not out.is_file():
        cmd = ["nice-core", "refine", "--target", str(folder / "target.mp4"), "--proxy", str(folder / "proxy.mp4"),
               "--output", str(out), "--json", str(info), "--work-dir", str(folder / f"work_{tag}"), "-q",
               *refine_args]
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        record = json.loads(info.read_text())
        record["bench"] = {"wall_s": round(wall, 1), "peak_rss_mb_children": round(peak), "args": refine_args}
        info.write_text(json.dumps(record, indent=1) + "\n")
    return out, json.loads(info.read_text())


def score(video: Path, folder: Path) -> dict:
    from nice_core.metrics import evaluate

    target, clean = folder / "target.mp4", folder / "clean.mp4"
    m = evaluate(target, video, reference=clean, show_progress=False)
    psnr_g, psnr_x = target_psnrs(video, target, clean, folder / "scoring" / "face.h5")
    return {"psnr_g": psnr_g, "psnr_inner": m["psnr_inner"], "psnr_ring": m["psnr_ring"], "psnr_x": psnr_x,
            "e_stab": m["e_stab"], "target_e_stab": m["target_e_stab"], "detail": m["detail_ratio"],
            "fdt": m["fine_detail_transfer"]}


def acceptance(rows: dict[str, dict], nice: str) -> dict[str, bool]:
    """The swap-fidelity issue's bars for the carrier's row ``nice`` of one clip."""
    o, p, f = rows[nice], rows["proxy P"], rows["P flow-guided filter"]
    return {"PSNR(O,G) >= PSNR(P,G) + 4": o["psnr_g"] >= p["psnr_g"] + 4,
            "PSNR(O,G) >= filter's": o["psnr_g"] >= f["psnr_g"],
            "PSNR(O,G) > PSNR(O,X)": o["psnr_g"] > o["psnr_x"],
            "e_stab <= 1.5 x original": o["e_stab"] <= 1.5 * o["target_e_stab"],
            "e_stab <= 1.5 x clean G's": o["e_stab"] <= 1.5 * rows["clean G"]["e_stab"],
            "detail >= 0.9": o["detail"] >= 0.9,
            "fine-detail transfer >= 0.8": (o["fdt"] or 0) >= 0.8}


COLUMNS = (("PSNR(.,G)", "psnr_g", "{:.2f}"), ("inner", "psnr_inner", "{:.2f}"), ("ring", "psnr_ring", "{:.2f}"),
           ("PSNR(.,X)", "psnr_x", "{:.2f}"), ("e_stab x1e3", "e_stab", "{:.3f}"), ("detail", "detail", "{:.3f}"),
           ("fine-detail transfer", "fdt", "{:.3f}"))


def _cell(key: str, fmt: str, value: float | None) -> str:
    if value is None:
        return "-"
    return fmt.format(1e3 * value if key == "e_stab" else value)


def print_tables(results: dict, nice: str) -> None:
    print("\n| clip | video | " + " | ".join(c[0] for c in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for clip, rows in results.items():
        for name, row in rows.items():
            print(f"| {clip} | {name} | " + " | ".join(_cell(k, f, row[k]) for _, k, f in COLUMNS) + " |")
        print(f"| {clip} | original footage | - | - | - | - | {1e3 * rows['proxy P']['target_e_stab']:.3f} | - | - |")
    names = list(next(iter(results.values())))
    print(f"\n| mean over {len(results)} clips | " + " | ".join(c[0] for c in COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for name in names:
        cells = [_cell(k, f, float(np.mean([r[name][k] for r in results.values()]))) for _, k, f in COLUMNS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nacceptance (per clip):")
    for clip, rows in results.items():
        bars = acceptance(rows, nice)
        print(f"  {clip}: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in bars.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=("tuning", "evaluation", "all"), default="evaluation")
    parser.add_argument("--clips", nargs="+", choices=list(CLIPS), help="instead of --set")
    parser.add_argument("--work", type=Path, default=Path("/tmp/refine_quality"))
    parser.add_argument("--tag", default="default", help="names the refine variant's files")
    parser.add_argument("--refine-args", default="", help="extra arguments for nice-core refine")
    parser.add_argument("--no-refine", action="store_true", help="score the peers only")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    clips = args.clips or [c for c, v in CLIPS.items() if args.set in ("all", v["set"])]
    nice = f"NICe ({args.tag})"
    results: dict = {}
    for clip in clips:
        folder = make_clip(clip, args.work)
        videos = peers(folder)
        timing = None
        if not args.no_refine:
            videos[nice], info = run_refine(folder, args.tag, args.refine_args.split())
            timing = info["bench"]["wall_s"], info["seconds"]
        rows = {name: score(video, folder) for name, video in videos.items() if name != "target X"}
        rows["target X"] = score(videos["target X"], folder)
        results[clip] = rows
        if timing:
            print(f"{clip}: refine {timing[0]:.0f} s wall ("
                  + ", ".join(f"{k} {v:.0f} s" for k, v in timing[1].items()) + ")", flush=True)
        for name, row in rows.items():
            print(f"{clip} {name}: " + ", ".join(f"{c[0]} {_cell(c[1], c[2], row[c[1]])}" for c in COLUMNS),
                  flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
    print_tables(results, nice if not args.no_refine else "P flow-guided filter")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Does the 3D prior see the swap's static detail, and does the detail loss carry it into the carrier?

A small clip whose edit adds marks the target lacks (``nice-core bench make`` on the first 48 frames of the
bundled sample: 24 frames, 14 spots, 4 lines, seed 5; the proxy P of the clean edit G jitters by 1.5 px,
with colour casts, mask jitter and collapsed frames), tracked at 128 px. Everything is measured in UV, on
the target's mesh, against what G adds there (``g = D_G - D_X``, static detail per skin texel):

* the prior: the proxy's static detail (median over frames) against single proxy frames;
* the carrier: for each variant (``--variants``: ``base`` or ``detail<W>`` = ``loss_detail3d_weight`` W),
  fitted with ``--steps`` steps, the correlation of its output's static detail with ``g``, the mean of
  the per-frame correlations, and the gain ``<o, g> / <g, g>`` (the share of the marks it carries).

    python bench/prior3d_detail.py --steps 1200 --variants base detail20 --threads 2
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"


def prepare(work: Path) -> dict[str, Path]:
    """The clip, its benchmark, the tracked target and the two 3D priors (proxy, and G in its place)."""
    from nice_core.face import TrackConfig, track_video
    from nice_core.groundtruth.clip import BenchConfig, make_benchmark
    from nice_core.io import ffmpeg_exe
    from nice_core.prior3d.stage import build_prior3d

    work.mkdir(parents=True, exist_ok=True)
    clip, bench, track = work / "short.mp4", work / "bench", work / "track"
    if not clip.is_file():
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(SAMPLE), "-frames:v", "48", "-c:v", "libx264",
                        "-crf", "18", "-an", str(clip)], check=True)
    if not (bench / "proxy.mp4").is_file():
        make_benchmark(clip, bench, BenchConfig(frames=24, spots=14, lines=4, seed=5), show_progress=False)
    if not (track / "face.h5").is_file():
        track_video(bench / "target.mp4", track, TrackConfig(crop_size=128, preview=False), show_progress=False)
    priors = {"prior_proxy": work / "prior3d.h5", "prior_clean": work / "prior3d_clean.h5"}
    for name, video in (("prior_proxy", bench / "proxy.mp4"), ("prior_clean", bench / "clean.mp4")):
        if not priors[name].is_file():
            build_prior3d(track / "face.h5", priors[name], proxy=video, show_progress=False)
    return {"store": track / "face.h5", "proxy": bench / "proxy.mp4", **priors}


def prior_scores(files: dict[str, Path]) -> dict[str, float]:
    import h5py

    with h5py.File(files["prior_proxy"]) as p, h5py.File(files["prior_clean"]) as g:
        skin = p["uv/skin"][()] & (p["proxy/static/weight"][()] > 0)
        target = p["target/static/detail"][()][skin]
        added = g["proxy/static/detail"][()][skin] - target
        static = p["proxy/static/detail"][()][skin] - target
        frames = [np.corrcoef(p["proxy/detail"][f].astype(np.float32)[skin]
                              - p["target/detail"][f].astype(np.float32)[skin], added)[0, 1]
                  for f in range(len(p["proxy/valid"]))]
    return {"static_corr": float(np.corrcoef(static, added)[0, 1]), "frame_corr_min": float(min(frames)),
            "frame_corr_max": float(max(frames))}


def carrier_scores(model, files: dict[str, Path]) -> dict[str, float]:
    """The fitted carrier's output on every crop, unwrapped and scored against what G adds."""
    import h5py
    import torch

    from nice_core.carrier.surface import SurfaceCoords
    from nice_core.prior3d.analysis import FrameAnalyser
    from nice_core.prior3d.stage import Prior3DConfig
    from nice_core.store import FaceStore

    with FaceStore.open(files["store"]) as store:
        crops = store["crops"][:]
        surface = SurfaceCoords.from_store(store) if model.uses_surface else None
    with h5py.File(files["prior_proxy"]) as p, h5py.File(files["prior_clean"]) as g:
        skin = p["uv/skin"][()] & (p["proxy/static/weight"][()] > 0)
        target = p["target/static/detail"][()]
        added = g["proxy/static/detail"][()][skin] - target[skin]
        vertices = p["target/vertices"][()]
    outputs = []
    with torch.no_grad():
        for i, crop in enumerate(crops):
            x = torch.from_numpy(crop).permute(2, 0, 1).float().div(255)[None]
            extra = (None, None)
            if surface is not None:
                grid, covered = surface.grid(i, crop.shape[0])
                extra = (torch.from_numpy(grid)[None], torch.from_numpy(covered)[None, None])
            xo, _ = model(x, *extra)
            outputs.append((xo[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
    details = FrameAnalyser(Prior3DConfig(), crops.shape[1]).analyse(np.stack(outputs), vertices)["detail_map"]
    offsets = [d[skin] - target[skin] for d in details]
    static = np.median(np.stack([d - target for d in details]), axis=0)[skin]
    return {"static_corr": float(np.corrcoef(static, added)[0, 1]),
            "frame_corr": float(np.mean([np.corrcoef(o, added)[0, 1] for o in offsets])),
            "gain": float(static @ added / (added @ added))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/prior3d_detail"))
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--variants", nargs="+", default=["base", "detail20"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from nice_core.carrier import FitConfig, fit_carrier
    from nice_core.carrier.config import with_overrides

    torch.set_num_threads(args.threads)
    files = prepare(args.work)
    scores = prior_scores(files)
    print(f"prior: proxy static detail vs what G adds: corr {scores['static_corr']:.3f}; single proxy frames "
          f"{scores['frame_corr_min']:.3f}-{scores['frame_corr_max']:.3f}", flush=True)
    for variant in args.variants:
        weight = 0.0 if variant == "base" else float(variant.removeprefix("detail"))
        config = with_overrides(FitConfig(), steps=args.steps, threads=args.threads, loss_detail3d_weight=weight)
        store = args.work / f"face_{variant}.h5"
        shutil.copy(files["store"], store)  # the fit caches proxy crops in the store
        start = time.perf_counter()
        fitted = fit_carrier(store, files["proxy"], config, None, prior3d=files["prior_proxy"] if weight else None,
                             log=lambda line: None)
        seconds = time.perf_counter() - start
        result = carrier_scores(fitted.model, {**files, "store": store})
        print(f"{variant}: static corr {result['static_corr']:.3f}, per-frame corr {result['frame_corr']:.3f}, "
              f"gain {result['gain']:.3f}; fit {seconds:.0f} s ({1000 * seconds / fitted.steps:.0f} ms/step)",
              flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Fit the carrier on a flicker benchmark (``nice-core bench make``) and score it in crop space.

Set-up: a benchmark folder (target X, clean edit G, flickering proxy P; made here from the bundled sample
with ``BenchConfig(frames=N, camera_move=...)`` unless ``--bench`` names one), X tracked with
``track_video(..., TrackConfig(crop_size=256, preview=False))``, P checked with ``check_proxy`` and its crops
cached in the store (``prepare_proxy_crops``); G's crops are warped with the same transforms. For each
variant, :func:`nice_core.carrier.fit_carrier` fits a carrier (no checkpoints), :func:`run_carrier` carries
every crop (outputs resized to the store's 256 px), and inside the store's mask (> 0.5) it reports:

* ``ff/X``: frame-to-frame mean squared difference of the output's crops over the target's (X's own motion
  = 1; P's value is the flicker ceiling) and ``ff/P`` the same over the proxy's;
* ``flick``: frame-to-frame change of the edit, ``(V - X)[t] - (V - X)[t-1]``, mean square x 1e4;
* ``PSNR(O,G)`` vs ``PSNR(P,G)``: fidelity to the clean edit; ``PSNR(O,X)``: closeness to the target
  (an output that just reverts to X scores high here and low on ``PSNR(O,G)``);
* ``detail``: mean |Laplacian| of the output over the clean crops' (1 = as sharp as G);
* train time: total fit seconds and milliseconds per optimizer step (2 threads unless ``--threads``).

Reference rows: P, G, and a centred 5-frame temporal mean of P's crops (a trivial stabiliser).

    python bench/carrier_fit.py                                   # 120 frames, camera move, all variants
    python bench/carrier_fit.py --variants default no-uncertainty --steps 2400 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"

#: Variant name -> FitConfig overrides (``unet_*`` / ``loss_*`` address the nested configs).
VARIANTS: dict[str, dict] = {
    "default": {},
    "no-uncertainty": {"loss_uncertainty": False},
    "no-warmup": {"warmup": 0.0},
    "no-clip": {"grad_clip": None},
    "unbalanced": {"loss_balanced": False},
    "direct": {"unet_output": "direct"},
    "direct-no-uncertainty": {"unet_output": "direct", "loss_uncertainty": False},
    "gradient": {"loss_gradient_weight": 1.0},
    "perceptual1": {"loss_perceptual_weight": 1.0},
    "whole-crop": {"loss_background": 1.0},
    "size128": {"size": 128, "patch": None},
    "full256": {"patch": None, "steps": 800},
    "patch192": {"patch": 192, "steps": 1100},
    "steps600": {"steps": 600},
    "steps1200": {"steps": 1200},
    "steps4800": {"steps": 4800},
    "texture8": {"unet_texture_channels": 8},
    "texture8-lr1": {"unet_texture_channels": 8, "texture_lr_scale": 1.0},
    "texture8-full": {"unet_texture_channels": 8, "patch": None, "steps": 800},
    "texture8-lr30": {"unet_texture_channels": 8, "texture_lr_scale": 30.0},
    "texture16": {"unet_texture_channels": 16},
    "texture8-register": {"unet_texture_channels": 8, "register_proxy": True},
    "register": {"register_proxy": True},
    "texture8-steps4800": {"unet_texture_channels": 8, "steps": 4800},
    "texture8-nounc": {"unet_texture_channels": 8, "loss_uncertainty": False},
    "texture8-perc0": {"unet_texture_channels": 8, "loss_perceptual_weight": 0.0},
    "naive": {"unet_output": "direct", "patch": None, "steps": 800, "loss_perceptual_weight": 0.0,
              "loss_balanced": False, "warmup": 0.0, "schedule": "constant", "lr": 3e-4, "grad_clip": None},
}


def crops_of(video: Path, transforms: np.ndarray, has_face: np.ndarray, size: int) -> list[np.ndarray | None]:
    from nice_core.face.alignment import warp_crop
    from nice_core.io import VideoReader

    out: list[np.ndarray | None] = []
    with VideoReader(video) as reader:
        for index, frame in reader.iter_frames():
            out.append(warp_crop(frame, transforms[index], size) if has_face[index] else None)
    return out


def crop_fdt(out: list[np.ndarray], clean: list[np.ndarray], target: list[np.ndarray],
             masks: list[np.ndarray]) -> float:
    """Fine-detail transfer (``docs/metrics.md``) in crop space, inside the mask (> 0.5)."""
    from nice_core.metrics.image import fine_detail_transfer, fine_transfer_terms

    return fine_detail_transfer([fine_transfer_terms(o, g, x, np.asarray(m) > 127)
                                 for o, g, x, m in zip(out, clean, target, masks)])


def scores(out: list[np.ndarray], ref: dict) -> dict:
    from nice_core.metrics import crops

    x, g, m = ref["target"], ref["clean"], ref["masks"]
    return {"fdt": crop_fdt(out, g, x, m),"ff/X": crops.frame_difference(out, m) / ref["ff_x"],
            "ff/P": crops.frame_difference(out, m) / ref["ff_p"],
            "flick": 1e4 * crops.edit_flicker(out, x, m),
            "PSNR(O,G)": crops.sequence_psnr(out, g, m), "PSNR(P,G)": ref["psnr_pg"],
            "PSNR(O,X)": crops.sequence_psnr(out, x, m),
            "detail": crops.sequence_detail(out, m) / ref["detail_g"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", type=Path, help="an existing benchmark folder (else one is made)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/carrier_bench"), help="scratch folder")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--static", action="store_true", help="no camera move in the made benchmark")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, help="override the step budget")
    parser.add_argument("--epochs", type=int, help="override with a fixed epoch count")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the fit's epoch lines")
    args = parser.parse_args()

    import torch

    from nice_core.carrier import FitConfig, fit_carrier, plan_fit, prepare_proxy_crops, run_carrier
    from nice_core.carrier.config import with_overrides
    from nice_core.carrier.data import PROXY_CROPS
    from nice_core.face import TrackConfig, track_video
    from nice_core.groundtruth.clip import BenchConfig, make_benchmark
    from nice_core.metrics import crops
    from nice_core.proxy.check import check_proxy
    from nice_core.store import FaceStore

    bench = args.bench
    if bench is None:
        bench = args.work / f"bench-{args.frames}-{'static' if args.static else 'move'}"
        if not (bench / "meta.json").is_file():
            t = time.perf_counter()
            make_benchmark(SAMPLE, bench, BenchConfig(frames=args.frames, camera_move=not args.static),
                           show_progress=False)
            print(f"made {bench} in {time.perf_counter() - t:.0f} s", flush=True)
    track_dir = args.work / f"{bench.name}-track"
    store_path = track_dir / "face.h5"
    if not store_path.is_file():
        track_video(bench / "target.mp4", track_dir, TrackConfig(crop_size=256, preview=False), show_progress=False)
    check = check_proxy(bench / "target.mp4", bench / "proxy.mp4")
    t = time.perf_counter()
    prepare_proxy_crops(store_path, bench / "proxy.mp4", check, force=True)
    print(f"proxy crops cached in {time.perf_counter() - t:.1f} s", flush=True)

    import h5py

    from nice_core.carrier.data import default_proxy_crops

    with FaceStore.open(store_path) as store, h5py.File(default_proxy_crops(store_path)) as cache:
        has_face = store["has_face"][:]
        transforms = store["transforms"][:]
        size = store.crop_size
        frames = np.flatnonzero(has_face)
        target = [store.crop(i) for i in frames]
        masks = [store["masks"][i] for i in frames]
        proxy = [cache[PROXY_CROPS][i] for i in frames]
    clean_all = crops_of(bench / "clean.mp4", transforms, has_face, size)
    clean = [clean_all[i] for i in frames]
    ref = {"target": target, "proxy": proxy, "clean": clean, "masks": masks,
           "ff_x": crops.frame_difference(target, masks), "ff_p": crops.frame_difference(proxy, masks),
           "psnr_pg": crops.sequence_psnr(proxy, clean, masks), "detail_g": crops.sequence_detail(clean, masks)}
    stack = np.stack(proxy).astype(np.float32)
    mean5 = [np.round(stack[max(0, t - 2):t + 3].mean(0)).astype(np.uint8) for t in range(len(stack))]
    rows = {"proxy P": scores(proxy, ref), "clean G": scores(clean, ref), "P 5-frame mean": scores(mean5, ref)}
    for name, row in rows.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)

    results = {"bench": str(bench), "frames": len(frames), "crop_size": size, "threads": args.threads,
               "torch": torch.__version__, "reference": rows, "variants": {}}
    for name in args.variants:
        overrides = dict(VARIANTS[name], threads=args.threads)
        if args.steps:
            overrides.setdefault("steps", args.steps)
        if args.epochs:
            overrides["epochs"] = args.epochs
        config = with_overrides(FitConfig(), **overrides)
        plan = plan_fit(len(frames), config)
        prepare_proxy_crops(store_path, bench / "proxy.mp4", check, register=config.register_proxy)
        t = time.perf_counter()
        model = fit_carrier(store_path, None, config, log=(lambda line: print(line, flush=True)) if args.verbose
                            else (lambda line: None)).model
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        torch.set_num_threads(args.threads)
        out_all = {i: crop for i, crop, _ in run_carrier(model, store_path, config.size) if crop is not None}
        infer_s = time.perf_counter() - t
        row = scores([out_all[i] for i in frames], ref)
        row.update(epochs=plan.epochs, steps=plan.total_steps, fit_s=fit_s, ms_per_step=1000 * fit_s / plan.total_steps,
                   infer_s=infer_s, config=config.to_dict())
        results["variants"][name] = row
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "config"), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")

    keys = ["ff/X", "ff/P", "flick", "PSNR(O,G)", "PSNR(P,G)", "PSNR(O,X)", "detail", "fdt"]
    print("\n| variant | " + " | ".join(keys) + " | epochs x frames | fit s | ms/step |")
    print("|---" * (len(keys) + 4) + "|")
    for name, row in {**rows, **results["variants"]}.items():
        extra = (f" {row['epochs']} x {len(frames)} | {row['fit_s']:.0f} | {row['ms_per_step']:.0f} |" if "fit_s" in row
                 else " - | - | - |")
        print(f"| {name} | " + " | ".join(f"{row[k]:.3f}" if k != "flick" else f"{row[k]:.1f}" for k in keys)
              + " |" + extra)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

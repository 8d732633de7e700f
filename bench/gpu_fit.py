#!/usr/bin/env python
"""The carrier fit's speed per option, on a GPU when there is one (else the CPU), and K fits at once.

Set-up (once, in ``--work``): a 10 s flicker benchmark of the bundled sample (240 frames, ``nice-core bench
make``: a self-edit, nobody else's face), tracked, its proxy crops cached. Then for each option a fit of
``--steps`` steps (default 300) with the default carrier otherwise, and printed per option:

* ``ms/step``: the median of the epochs' milliseconds per step, the first epoch left out (warm-up, cuDNN
  autotuning);
* ``fit s``: the projected time of a default fit (``FitConfig().steps`` steps) at that rate, plus the
  measured start (data preparation and the first epoch's extra);
* ``MB``: the peak GPU memory one carrier took (``torch.cuda.max_memory_allocated``; CPU: the process's
  peak RSS);
* ``K at once``: with ``--concurrent K``, K fit processes of the best option at once on the same device:
  the wall time of all K and the fits per hour it gives (a carrier job per video sharing a GPU).

    python bench/gpu_fit.py                         # every option, on cuda if available
    python bench/gpu_fit.py --options fp32 bf16 --concurrent 1 2 4 --steps 200
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"

#: Option name -> FitConfig overrides.
OPTIONS = {
    "fp32": {},
    "channels_last": {"channels_last": True},
    "bf16": {"precision": "bf16"},
    "bf16+channels_last": {"precision": "bf16", "channels_last": True},
}

CHILD = """
import json, sys, time
from nice_core.carrier import FitConfig, fit_carrier
config = FitConfig.from_dict(json.loads(sys.argv[3]))
start = time.perf_counter()
result = fit_carrier(sys.argv[1], None, config, proxy_crops=sys.argv[2], log=lambda line: None)
print(json.dumps({"wall": time.perf_counter() - start, "steps": result.steps}))
"""


def prepare(work: Path, frames: int) -> tuple[Path, Path]:
    """The benchmark clip, its store and its cached proxy crops (made once)."""
    from nice_core.carrier import prepare_proxy_crops
    from nice_core.face import TrackConfig, track_video
    from nice_core.groundtruth.clip import BenchConfig, make_benchmark
    from nice_core.proxy.check import check_proxy

    clip = work / "clip"
    if not (clip / "meta.json").is_file():
        make_benchmark(SAMPLE, clip, BenchConfig(frames=frames, seed=7, spots=14, lines=4), show_progress=False)
    store = work / "track" / "face.h5"
    if not store.is_file():
        track_video(clip / "target.mp4", store.parent, TrackConfig(preview=False), show_progress=False)
    crops = work / "proxy_crops.h5"
    if not crops.is_file():
        prepare_proxy_crops(store, clip / "proxy.mp4", check_proxy(clip / "target.mp4", clip / "proxy.mp4"),
                            cache=crops)
    return store, crops


def measure(store: Path, crops: Path, device: str, steps: int, overrides: dict) -> dict:
    """One short fit with ``overrides``: its per-step time, start and peak memory."""
    import torch

    from nice_core.carrier import FitConfig, fit_carrier
    from nice_core.carrier.config import with_overrides

    config = with_overrides(FitConfig(), steps=steps, device=device, **overrides)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fit_carrier(store, None, config, proxy_crops=crops, log=lambda line: None)
    wall = time.perf_counter() - start
    per_step = [h["seconds"] / h["steps"] for h in result.history[1:]] or [result.history[0]["seconds"] / steps]
    ms = 1000 * statistics.median(per_step)
    trained = result.steps * ms / 1000
    memory = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
              else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    full = FitConfig().steps
    start_s = max(0.0, wall - trained)
    return {"ms_per_step": round(ms, 2), "start_s": round(start_s, 1),
            "fit_s": round(start_s + full * ms / 1000, 1), "memory_mb": round(memory), "steps": result.steps}


def concurrent(store: Path, crops: Path, device: str, steps: int, overrides: dict, k: int) -> dict:
    """``k`` fit processes at once on one device: the wall time of all of them."""
    from nice_core.carrier import FitConfig
    from nice_core.carrier.config import with_overrides

    config = with_overrides(FitConfig(), steps=steps, device=device, **overrides)
    start = time.perf_counter()
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(store), str(crops), json.dumps(config.to_dict())],
                                 stdout=subprocess.PIPE, text=True) for _ in range(k)]
    outs = [json.loads(child.communicate()[0]) for child in children]
    wall = time.perf_counter() - start
    return {"k": k, "wall_s": round(wall, 1), "each_s": [round(o["wall"], 1) for o in outs],
            "fits_per_hour": round(3600 * k / wall * steps / FitConfig().steps, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--options", nargs="+", choices=list(OPTIONS), default=list(OPTIONS))
    parser.add_argument("--steps", type=int, default=300, help="steps per measured fit")
    parser.add_argument("--frames", type=int, default=240, help="the clip's frames (240: 10 s)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--concurrent", type=int, nargs="*", default=[], help="K fits at once (best option)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu_fit"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {device} ({name}), torch {torch.__version__}", flush=True)
    t = time.perf_counter()
    store, crops = prepare(args.work, args.frames)
    print(f"set-up (bench make, tracking, proxy crops): {time.perf_counter() - t:.0f} s", flush=True)
    results = {"device": device, "name": name, "options": {}, "concurrent": []}
    print("| option | ms/step | start s | default fit s | MB |\n|---|---:|---:|---:|---:|")
    for option in args.options:
        row = measure(store, crops, device, args.steps, OPTIONS[option])
        results["options"][option] = row
        print(f"| {option} | {row['ms_per_step']} | {row['start_s']} | {row['fit_s']} | {row['memory_mb']} |",
              flush=True)
    best = min(results["options"], key=lambda o: results["options"][o]["ms_per_step"])
    for k in args.concurrent:
        row = concurrent(store, crops, device, args.steps, OPTIONS[best], k)
        results["concurrent"].append(row)
        print(f"{best}, {k} at once: {row['wall_s']} s for all (each {row['each_s']}), "
              f"{row['fits_per_hour']} default fits per hour", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

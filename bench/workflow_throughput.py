#!/usr/bin/env python
"""Throughput of the workflow on a fake FaceForensics++ tree: Snakemake on N cores vs. a serial loop.

The tree (``--work``/ffpp) mirrors FF++'s layout with ``--targets`` originals, 2 s clips cut from the
bundled sample at different points, and two "methods" whose manipulated videos are flickering proxies of a
synthetic edit (``nice-core bench make``, two seeds); ``<t>_<s>.mp4`` pairs target ``t`` with identity
``s``. Every clip shows the same person, so nothing swaps one real person onto another.

Both runs do the same stages per video (probe, track, proxy check, carrier fit, re-compositing) with the
same settings, a reduced carrier budget (``--steps``) so the bench takes minutes:

* ``snakemake --profile profiles/local --cores N`` on the refined outputs (jobs packed by the declared
  threads and memory);
* a serial loop of ``nice-core refine`` over the same pairs.

Probe and tracking run once per target (``results/work/_targets/``), shared by its two methods: the
jobs per rule say so. It prints wall times, the speed-up, the largest per-job peak RSS (Snakemake's
benchmark files) and the serial loop's peak RSS, and per-stage costs per frame and per optimizer step from
the benchmark files (what the cost projection in docs/benchmarks.md uses).

    python bench/workflow_throughput.py                        # 4 targets x 2 methods = 8 videos, 2 cores
    python bench/workflow_throughput.py --targets 4 --steps 240 --cores 2 --json /tmp/throughput.json
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"
METHODS = ("FaceSwap", "Deepfakes")


def build_tree(root: Path, targets: int, frames: int) -> list[tuple[str, str, Path, Path]]:
    """Write the fake FF++ tree; return ``(method, name, target, proxy)`` per manipulated video."""
    from nice_core.groundtruth.clip import BenchConfig, make_benchmark
    from nice_core.io import ffmpeg_exe

    originals = root / "original_sequences" / "youtube" / "c23" / "videos"
    originals.mkdir(parents=True, exist_ok=True)
    pairs = []
    for t in range(targets):
        target = originals / f"{t:03d}.mp4"
        start = t * (472 - frames) // max(1, targets - 1)
        if not target.is_file():
            subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(SAMPLE), "-vf",
                            f"select=between(n\\,{start}\\,{start + frames - 1})", "-fps_mode", "passthrough",
                            "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-an", str(target)], check=True)
        for m, method in enumerate(METHODS):
            s = (t + 1) % targets
            folder = root / "manipulated_sequences" / method / "c23" / "videos"
            folder.mkdir(parents=True, exist_ok=True)
            proxy = folder / f"{t:03d}_{s:03d}.mp4"
            if not proxy.is_file():
                scratch = root / "scratch" / f"{method}-{t}"
                make_benchmark(target, scratch, BenchConfig(seed=m), show_progress=False)
                shutil.copy(scratch / "proxy.mp4", proxy)
            pairs.append((method, proxy.stem, target, proxy))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/workflow_throughput"))
    parser.add_argument("--targets", type=int, default=4)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--steps", type=int, default=240, help="carrier step budget per video")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--snakemake-args", default="", help="extra snakemake arguments, e.g. "
                        "'--set-threads carrier=1 track=1 composite=1 --set-resources carrier:gpu=0'")
    parser.add_argument("--no-serial", action="store_true", help="skip the serial loop")
    args = parser.parse_args()

    pairs = build_tree(args.work / "ffpp", args.targets, args.frames)
    fit = {"steps": args.steps}
    face = {"preview": False}

    # Snakemake on the refined outputs.
    smk = args.work / "snakemake"
    shutil.rmtree(smk, ignore_errors=True)
    smk.mkdir(parents=True)
    config = {"videos": {}, "ffpp": {"root": str(args.work / "ffpp"), "methods": list(METHODS), "compression": "c23"},
              "results": "results", "carrier": {"fit": fit}, "face": face, "composite": {"save_uncertainty": False}}
    (smk / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/refined_sequences/{m}-NICe/c23/videos/{name}.mp4" for m, name, _, _ in pairs]
    start = time.perf_counter()
    with open(smk / "snakemake.log", "w") as log:  # the whole run's log, for a failure
        subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
                        "--directory", str(smk), "--profile", str(REPO / "profiles" / "local"), "--cores",
                        str(args.cores), *targets, *args.snakemake_args.split()], check=True, stdout=log,
                       stderr=subprocess.STDOUT)
    smk_wall = time.perf_counter() - start

    per_rule: dict[str, list[dict]] = {}
    for tsv in (smk / "results" / "benchmarks").rglob("*.tsv"):
        rule = tsv.relative_to(smk / "results" / "benchmarks").parts[0]
        with open(tsv) as f:
            per_rule.setdefault(rule, []).extend(csv.DictReader(f, delimiter="\t"))
    job_peak = max(float(row["max_rss"]) for rows in per_rule.values() for row in rows if row["max_rss"] != "NA")
    rule_seconds = {rule: sum(float(r["s"]) for r in rows) for rule, rows in per_rule.items()}

    # The serial loop of nice-core refine.
    serial = args.work / "serial"
    shutil.rmtree(serial, ignore_errors=True)
    serial.mkdir(parents=True)
    start = time.perf_counter()
    for method, name, target, proxy in [] if args.no_serial else pairs:
        cmd = ["nice-core", "refine", "--target", str(target), "--proxy", str(proxy), "--output",
               str(serial / method / f"{name}.mp4"), "--set", f"steps={args.steps}", "--threads",
               str(args.cores), "-q"]
        subprocess.run(cmd, check=True, capture_output=True)
    serial_wall = time.perf_counter() - start
    serial_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    videos, frames = len(pairs), len(pairs) * args.frames
    result = {"videos": videos, "frames_per_video": args.frames, "steps": args.steps, "cores": args.cores,
              "snakemake_args": args.snakemake_args, "snakemake_wall_s": smk_wall,
              "serial_wall_s": None if args.no_serial else serial_wall, "speedup": serial_wall / smk_wall,
              "snakemake_job_peak_rss_mb": job_peak, "serial_peak_rss_mb": serial_peak,
              "rule_cpu_seconds": rule_seconds,
              "jobs_per_rule": {rule: len(rows) for rule, rows in sorted(per_rule.items())},
              "per_frame_s": {rule: rule_seconds[rule] / frames for rule in ("track", "composite")
                              if rule in rule_seconds},
              "carrier_s_per_step": rule_seconds.get("carrier", 0.0) / (videos * args.steps)}
    print(json.dumps(result, indent=1))
    print(f"\njobs per rule: {result['jobs_per_rule']}")
    print(f"{videos} videos x {args.frames} frames, carrier {args.steps} steps each, {args.cores} cores: "
          f"snakemake {smk_wall:.0f} s vs serial refine loop {serial_wall:.0f} s ({result['speedup']:.2f}x, "
          f"meaningless with --no-serial); "
          f"peak RSS per job {job_peak:.0f} MB, serial {serial_peak:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

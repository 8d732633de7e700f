#!/usr/bin/env python
"""The detection study (paper Sec. 4.4) at bench scale: an FF++-style tree and a Celeb-DF-style test set from
the bundled sample, refined and studied by the workflow, all three conditions with two seeds, on the CPU.

Every video shows the same person and every fake is a synthetic edit of her own face (``nice-core bench
make``): nothing puts one real person's face on another. ``--segments`` clips of ``--frames`` frames are cut
from the sample at even steps; each segment ``k`` gets its own seeded edit. The first ten make FF++ c23:
``original_sequences/.../<k>.mp4`` is the segment, ``manipulated_sequences/BenchEdit/c23/videos/<k>_<j>.mp4``
the flickering per-frame proxy of its edit (``j``: its pair partner), split 3 / 1 / 1 pairs into train / val
/ test. The rest make a Celeb-DF v2 test list: half of them real (``Celeb-real``), half the *temporally
consistent* edit (``Celeb-synthesis``, the kind of fake a per-frame detector has not seen). Each segment is
pseudonymised as its own person (``ffpp:000``, ``celebdf:id10``); in truth they are one, so identity leakage
across splits cannot be excluded here: the class signal is the edit, not the person.

Then, with Snakemake (``profiles/local``):

1. the workflow with ``ffpp:`` refines the ten proxies (track, proxy check, 3D prior, carrier with a
   ``--carrier-steps`` budget, re-compositing; the rest default) into
   ``results/refined_sequences/BenchEdit-NICe/c23/videos/``;
2. ``nice-core detect index`` indexes the tree, the refined videos and the Celeb-DF list;
3. the workflow with ``detector.index`` re-encodes the FF++ videos for parity, cuts the clips, trains A, B
   and C at each seed (``--steps``, the same for all), scores them on the three test sets with the watermark
   probe, and writes ``results/detect/report/``.

It prints the report's table (mean over seeds and its 95 % interval), the paired differences, the probe and
the encoding-parity verdicts, the per-job costs from Snakemake's benchmark files, and a projection of the
paper-scale run (``--project-videos`` FF++ training videos per condition, FF++'s 140 test pairs and
Celeb-DF v2's 518 test videos) from those costs and, with ``--r50-steps``, from timed training steps of the
full-size I3D ResNet-50 on this machine.

The originals and Celeb-DF reals are cut from the sample by plain ffmpeg (CRF 18), as FF++'s and Celeb-DF's
are not nice-core's; the fakes are ``bench make``'s, labelled and marked by nice-core. The parity step
re-encodes a nice-core fake without stamping it again (its own mark, one encode older than the reals'
parity mark); the Celeb-synthesis fakes carry nice-core's mark where Celeb-DF's own carry none (the
watermark probe is what says whether a detector reads it). The reals pass two lossy encodes (CRF 18, then
the parity CRF 23), the per-frame fakes three (the cut, ``bench make``'s, the parity copy's).

    python bench/detect_study.py                                    # about 40 minutes on 2 cores
    python bench/detect_study.py --steps 400 --seeds 1 2 --json /tmp/detect_study.json
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"
SAMPLE_FRAMES = 472
METHOD = "BenchEdit"
FFPP_SEGMENTS = 10
SPLITS = {"train": [(0, 1), (2, 3), (4, 5)], "val": [(6, 7)], "test": [(8, 9)]}
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
             "--profile", str(REPO / "profiles" / "local")]


def _cut(segment: int, frames: int, segments: int, scratch: Path) -> Path:
    """Segment ``segment`` of the sample cut by plain ffmpeg (CRF 18): the stand-in for an FF++ original or a
    Celeb-DF real, which nice-core never wrote (its parity step refuses to make a real from a nice-core file)."""
    from nice_core.io import ffmpeg_exe

    cut = scratch / "cuts" / f"{segment:03d}.mp4"
    if not cut.is_file():
        cut.parent.mkdir(parents=True, exist_ok=True)
        start = segment * (SAMPLE_FRAMES - frames) // max(1, segments - 1)
        part = cut.with_suffix(".part.mp4")
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(SAMPLE), "-vf",
                        f"select=between(n\\,{start}\\,{start + frames - 1}),setpts=PTS-STARTPTS",
                        "-fps_mode", "passthrough", "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-an",
                        str(part)], check=True)
        part.replace(cut)
    return cut


def _bench(segment: int, frames: int, segments: int, scratch: Path) -> Path:
    """Segment ``segment``'s benchmark folder (clean edit and flickering proxy of its cut), made once."""
    from nice_core.groundtruth.clip import BenchConfig, make_benchmark

    out = scratch / f"{segment:03d}"
    if not (out / "meta.json").is_file():
        make_benchmark(_cut(segment, frames, segments, scratch), out, BenchConfig(seed=segment), show_progress=False)
    return out


def _place(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    if not destination.is_file():
        shutil.copy(source, destination)


def build_tree(work: Path, segments: int, frames: int) -> tuple[Path, dict[str, Path], Path]:
    """Write the FF++ tree, its split files and the Celeb-DF tree; return (FF++ root, split files, Celeb-DF)."""
    if segments < FFPP_SEGMENTS + 2 or (segments - FFPP_SEGMENTS) % 2:
        raise SystemExit(f"--segments must be {FFPP_SEGMENTS} + an even number >= 2, got {segments}")
    ffpp, celebdf, scratch = work / "ffpp", work / "celebdf", work / "scratch"
    originals = ffpp / "original_sequences" / "youtube" / "c23" / "videos"
    fakes = ffpp / "manipulated_sequences" / METHOD / "c23" / "videos"
    splits = {}
    for split, pairs in SPLITS.items():
        for a, b in pairs:
            for target, partner in ((a, b), (b, a)):
                _place(_cut(target, frames, segments, scratch), originals / f"{target:03d}.mp4")
                _place(_bench(target, frames, segments, scratch) / "proxy.mp4",
                       fakes / f"{target:03d}_{partner:03d}.mp4")
        splits[split] = ffpp / f"{split}.json"
        splits[split].write_text(json.dumps([[f"{a:03d}", f"{b:03d}"] for a, b in pairs]))
    rest = list(range(FFPP_SEGMENTS, segments))
    reals, edits = rest[: len(rest) // 2], rest[len(rest) // 2:]
    lines = []
    for k in reals:
        name = f"Celeb-real/id{k}_0000.mp4"
        _place(_cut(k, frames, segments, scratch), celebdf / name)
        lines.append(f"1 {name}")
    for i, k in enumerate(edits):
        name = f"Celeb-synthesis/id{k}_id{edits[(i + 1) % len(edits)]}_0000.mp4"
        _place(_bench(k, frames, segments, scratch) / "clean.mp4", celebdf / name)
        lines.append(f"0 {name}")
    (celebdf / "List_of_testing_videos.txt").write_text("\n".join(lines) + "\n")
    return ffpp, splits, celebdf


def _snakemake(workdir: Path, log_name: str, cores: int, *targets: str) -> float:
    start = time.perf_counter()
    with open(workdir / log_name, "w") as log:
        done = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), "--cores", str(cores), *targets],
                              stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"snakemake failed (exit {done.returncode}); see {workdir / log_name}")
    return time.perf_counter() - start


def rule_costs(results: Path) -> dict[str, dict[str, float]]:
    """Per rule: jobs, total and mean seconds, largest peak RSS (MB), from Snakemake's benchmark files."""
    out: dict[str, dict[str, float]] = {}
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rule = tsv.relative_to(results / "benchmarks").parts[0]
        with open(tsv) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                cost = out.setdefault(rule, {"jobs": 0, "s": 0.0, "max_rss_mb": 0.0})
                cost["jobs"] += 1
                cost["s"] += float(row["s"])
                if row["max_rss"] != "NA":
                    cost["max_rss_mb"] = max(cost["max_rss_mb"], float(row["max_rss"]))
    for cost in out.values():
        cost["mean_s"] = cost["s"] / cost["jobs"]
    return out


def r50_step_seconds(steps: int, batch_size: int, length: int, size: int) -> float:
    """Seconds per training step (forward, backward, Adam) of the full-size I3D ResNet-50 on this CPU."""
    import torch

    from nice_core.detect.i3d import I3DConfig, I3DResNet

    torch.manual_seed(0)
    model = I3DResNet(I3DConfig.r50())
    optimizer = torch.optim.Adam(model.parameters(), 2e-4)
    clips = torch.rand(batch_size, 3, length, size, size)
    labels = torch.arange(batch_size) % 2
    times = []
    for _ in range(steps + 1):  # the first step warms up
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(clips), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sum(times[1:]) / steps


def projection(costs: dict, frames: int, steps: int, train_step_s: float, videos: int, runs: int) -> dict:
    """The paper-scale study's cost in node-hours of this machine (jobs one after another): ``videos`` FF++
    training originals and their fakes per source, FF++'s val and test splits (140 pairs each: 280 originals
    and 280 fakes per source; ~510 frames a video), Celeb-DF v2's 518 test videos (~400 frames), ``runs``
    trainings of ``steps`` steps, each scored on the three test sets and the validation videos. Per-video
    costs scale by frames from the bench's; refining the fakes (the pipeline itself) is not included."""
    per_frame = {rule: costs[rule]["mean_s"] / frames for rule in ("track", "detect_parity", "detect_clips")
                 if rule in costs}
    originals = videos + 280 + 280
    seconds = {"track": per_frame.get("track", 0.0) * (originals * 510 + 518 * 400),
               "parity": per_frame.get("detect_parity", 0.0) * originals * 2 * 510,
               "clips": per_frame.get("detect_clips", 0.0) * (originals * 3 * 510 + 518 * 400),
               "train": runs * steps * train_step_s,
               "eval": runs * (560 + 560 + 518 + 3 * 560) * costs["detect_eval"]["s"] / costs["detect_eval"]["videos"]}
    return {"node_hours": {k: v / 3600 for k, v in seconds.items()}, "total_node_hours": sum(seconds.values()) / 3600}


def _table(report: dict) -> list[str]:
    lines = ["| condition | test set | videos | AUC | balanced accuracy | accuracy at 0.5 |",
             "|---|---|---|---|---|---|"]
    for row in report["rows"]:
        cells = [f"{m['mean']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"
                 for m in (row["metrics"][k] for k in ("auc", "balanced_acc", "acc"))]
        lines.append(f"| {row['condition']} | {row['test_set']} | {row['videos']} | " + " | ".join(cells) + " |")
    lines += ["", "| difference | test set | metric | mean | 95 % interval |", "|---|---|---|---|---|"]
    for d in report["differences"]:
        lines.append(f"| {d['condition']} - {d['baseline']} | {d['test_set']} | {d['metric']} | {d['mean']:+.3f} | "
                     f"[{d['low']:+.3f}, {d['high']:+.3f}] |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/detect_study"))
    parser.add_argument("--segments", type=int, default=14)
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--steps", type=int, default=400, help="detector training steps (every condition)")
    parser.add_argument("--carrier-steps", type=int, default=600,
                        help="carrier fit budget per video (the default's 2400 take 9 minutes per 33-frame fit here)")
    parser.add_argument("--val-every", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--r50-steps", type=int, default=2, help="timed I3D-R50 training steps (0: skip)")
    parser.add_argument("--project-videos", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ffpp, splits, celebdf = build_tree(args.work, args.segments, args.frames)
    build_s = time.perf_counter() - start
    run = args.work / "run"
    run.mkdir(exist_ok=True)
    base = {"videos": {}, "results": "results", "face": {"preview": False},
            "carrier": {"fit": {"steps": args.carrier_steps}},
            "ffpp": {"root": str(ffpp), "methods": [METHOD], "compression": "c23"}}
    (run / "config.yaml").write_text(yaml.safe_dump(base))
    refined = [f"results/refined_sequences/{METHOD}-NICe/c23/videos/{p.name}"
               for p in sorted((ffpp / "manipulated_sequences" / METHOD / "c23" / "videos").glob("*.mp4"))]
    refine_s = _snakemake(run, "refine.log", args.cores, *refined)

    index = run / "index.json"
    subprocess.run(["nice-core", "detect", "index", "--ffpp", str(ffpp), "--method", METHOD, "--compression", "c23",
                    *[a for split, path in splits.items() for a in ("--split", f"{split}={path}")],
                    "--refined", str(run / "results"), "--celebdf", str(celebdf), "-o", str(index)], check=True)
    detector = {"index": str(index), "seeds": args.seeds,
                "train": {"steps": args.steps, "val_every": args.val_every}}
    (run / "study.yaml").write_text(yaml.safe_dump({**base, "detector": detector}))
    # the target before --configfile, which takes every word after it as a config file
    study_s = _snakemake(run, "study.log", args.cores, "results/detect/report/detection.html",
                         "--configfile", str(run / "study.yaml"))

    results = run / "results"
    report = json.loads((results / "detect" / "report" / "detection.json").read_text())
    costs = rule_costs(results)
    evals = [json.loads(p.read_text()) for p in sorted((results / "detect" / "evals").glob("*.json"))]
    costs["detect_eval"]["videos"] = float(sum(len(r["videos"]) for r in evals))
    train_step_s = costs["detect_train"]["mean_s"] / args.steps
    r50 = r50_step_seconds(args.r50_steps, 8, 16, 112) if args.r50_steps else None
    runs = 3 * 3  # the paper's three conditions at three seeds
    result = {"segments": args.segments, "frames": args.frames, "steps": args.steps, "seeds": args.seeds,
              "carrier_steps": args.carrier_steps,
              "cores": args.cores, "wall_s": {"build": build_s, "refine": refine_s, "study": study_s},
              "costs": costs, "small_train_step_s": train_step_s, "r50_train_step_s": r50,
              "report": {k: report[k] for k in ("rows", "differences", "watermark_probe", "encoding_parity",
                                                  "left_out")},
              "projection_small": projection(costs, args.frames, 3000, train_step_s, args.project_videos, runs),
              "projection_r50": (projection(costs, args.frames, 3000, r50, args.project_videos, runs)
                                 if r50 else None)}
    print("\n".join(_table(report)))
    for p in report["watermark_probe"]:
        print(f"watermark probe {p['condition']} on {p['test_set']}: change {p['change']:+.4f}, "
              f"spread {p['spread'] if p['spread'] is None else round(p['spread'], 4)}, within: {p['within_spread']}")
    for p in report["encoding_parity"]:
        print(f"encoding parity, {p['videos']}: {'one path' if p['one_path'] else 'DIFFERS'} {p['by_source']}")
    print(f"left out: {[f['id'] for f in report['left_out']]}")
    print(f"wall: tree {build_s:.0f} s, refine {refine_s:.0f} s, study {study_s:.0f} s")
    for rule, cost in sorted(costs.items()):
        print(f"  {rule}: {cost['jobs']} jobs, {cost['s']:.0f} s ({cost['mean_s']:.1f} s each), "
              f"peak {cost['max_rss_mb']:.0f} MB")
    print(f"small detector: {train_step_s:.3f} s/step; I3D-R50: "
          + (f"{r50:.2f} s/step (batch 8, 16 x 112 px)" if r50 else "not timed"))
    for name in ("projection_small", "projection_r50"):
        if result[name]:
            parts = ", ".join(f"{k} {v:.1f}" for k, v in result[name]["node_hours"].items())
            print(f"{name}: {result[name]['total_node_hours']:.0f} node-hours ({parts})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""The cost curve: wall time and peak memory of every workflow stage for clips of growing length.

For each ``--seconds`` length the bundled sample is looped to that length (``ffmpeg -stream_loop -1 -t S``,
H.264 CRF 18; every loop point is a hard cut, so a 10-minute clip has about 31 of them) and given a proxy of
its own: the same clip with a global synthetic colour edit (``eq`` and ``hue`` filters). The person is
swapped with nobody; what is measured does not depend on the proxy's content, only on its size. The whole
default workflow then runs on it (``snakemake --cores N``: probe, tracking, the target's flow, proxy check,
3D prior, carrier fit, re-compositing, evaluation, provenance, report), one length at a time.

Per stage it reports Snakemake's own benchmark record (``results/benchmarks/<rule>/*.tsv``): wall seconds
``s`` and ``max_rss``, the peak of the summed resident memory of the job's whole process tree (Python and
the ffmpeg it runs), sampled by Snakemake. The 3 GB bar of issue 17 applies to every stage.

Each length has its own folder under ``--work``; a run that is interrupted continues where it stopped when
started again (Snakemake keeps finished jobs), and a length already in the ``--json`` file is not rerun.
``--plot`` draws time and peak memory against clip length (log-log).

    python bench/cost_curve.py --seconds 10 30 120 600 --json docs/cost_curve.json --plot docs/cost_curve.png
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"
BAR_MB = 3 * 1024  # issue 17: peak memory <= 3 GB in every stage
#: The stages in chain order (Snakemake's rule names); rules missing from a run are left out.
STAGES = ("extract", "track", "motion", "proxy_check", "prior3d", "carrier", "composite", "evaluate",
          "provenance")


def make_clip(seconds: float, target: Path, proxy: Path) -> None:
    """The sample looped to ``seconds`` (no audio) and its colour-edited proxy."""
    from nice_core.io import ffmpeg_exe

    encode = ["-map", "0:v:0", "-an", "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    if not target.is_file():
        partial = target.with_suffix(".partial.mp4")
        subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-stream_loop", "-1", "-i", str(SAMPLE), "-t",
                        f"{seconds:g}", *encode, str(partial)], check=True)
        partial.rename(target)
    if not proxy.is_file():
        partial = proxy.with_suffix(".partial.mp4")
        subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-i", str(target), "-vf",
                        "eq=saturation=1.25:gamma_r=1.08,hue=h=6", *encode, str(partial)], check=True)
        partial.rename(proxy)


def frame_count(video: Path) -> int:
    from nice_core.io.reader import VideoReader

    with VideoReader(video) as reader:
        return len(reader)


def run_workflow(folder: Path, name: str, target: Path, proxy: Path, cores: int, extra: list[str]) -> float:
    """Run the default workflow on one clip in ``folder``; return the wall time of this call (of what was
    left to do, when an interrupted run is continued: the table sums the jobs' own times instead)."""
    config = {"videos": {"sample": None, name: {"target": str(target), "proxy": str(proxy)}},
              "results": "results"}
    config_file = folder / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    start = time.perf_counter()
    with open(folder / "snakemake.log", "a") as log:
        subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
                        "--directory", str(folder), "--configfile", str(config_file), "--cores", str(cores),
                        "--rerun-triggers", "mtime", *extra], check=True, stdout=log, stderr=subprocess.STDOUT)
    return time.perf_counter() - start


def stage_costs(results: Path) -> dict[str, dict[str, float]]:
    """Per rule: wall seconds and peak RSS (MB) summed/maxed over its jobs (Snakemake's benchmark files)."""
    costs: dict[str, dict[str, float]] = {}
    bench = results / "benchmarks"
    for tsv in sorted(bench.rglob("*.tsv")):
        rule = tsv.relative_to(bench).parts[0]
        with open(tsv) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        entry = costs.setdefault(rule, {"s": 0.0, "max_rss_mb": 0.0, "jobs": 0})
        for row in rows:
            entry["s"] += float(row["s"])
            entry["jobs"] += 1
            if row["max_rss"] not in ("NA", ""):
                entry["max_rss_mb"] = max(entry["max_rss_mb"], float(row["max_rss"]))
    return costs


def carrier_steps(results: Path) -> int | None:
    """The optimizer steps of the fit (from its state.json), or None."""
    for state in results.rglob("state.json"):
        try:
            return int(json.loads(state.read_text())["total_steps"])
        except (KeyError, ValueError, OSError):
            continue
    return None


def measure(seconds: float, work: Path, cores: int, extra: list[str]) -> dict:
    folder = work / f"{seconds:g}s"
    folder.mkdir(parents=True, exist_ok=True)
    target, proxy = folder / "target.mp4", folder / "proxy.mp4"
    make_clip(seconds, target, proxy)
    wall = run_workflow(folder, f"loop{seconds:g}s", target, proxy, cores, extra)
    results = folder / "results"
    return {"seconds": seconds, "frames": frame_count(target), "cores": cores, "call_wall_s": wall,
            "carrier_steps": carrier_steps(results), "stages": stage_costs(results),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def print_table(rows: list[dict]) -> None:
    stages = [s for s in STAGES if any(s in r["stages"] for r in rows)]
    print("| stage | " + " | ".join(f"{r['seconds']:g} s ({r['frames']} frames)" for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for stage in stages:
        cells = []
        for r in rows:
            c = r["stages"].get(stage)
            cells.append("—" if c is None else f"{c['s']:.0f} s, {c['max_rss_mb']:.0f} MB")
        print(f"| {stage} | " + " | ".join(cells) + " |")
    print("| all stages (sum of job times) | " + " | ".join(f"{sum(c['s'] for c in r['stages'].values()):.0f} s"
                                                          for r in rows) + " |")
    print("| carrier steps | " + " | ".join(str(r["carrier_steps"]) for r in rows) + " |")
    worst = max((c["max_rss_mb"], s, r["seconds"]) for r in rows for s, c in r["stages"].items())
    verdict = "within" if worst[0] <= BAR_MB else "OVER"
    print(f"\nlargest peak: {worst[0]:.0f} MB ({worst[1]}, {worst[2]:g} s clip): {verdict} the {BAR_MB} MB bar")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    lengths = [r["seconds"] for r in rows]
    for stage in STAGES:
        points = [(r["seconds"], r["stages"][stage]) for r in rows if stage in r["stages"]]
        if not points:
            continue
        ax_t.plot([p[0] for p in points], [max(p[1]["s"], 0.1) for p in points], marker="o", label=stage)
        ax_m.plot([p[0] for p in points], [p[1]["max_rss_mb"] for p in points], marker="o", label=stage)
    ax_m.axhline(BAR_MB, color="k", linestyle="--", linewidth=1, label="3 GB bar")
    for ax, label in ((ax_t, "wall time (s)"), (ax_m, "peak RSS of the job's process tree (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(lengths, [f"{s:g} s" for s in lengths])
        ax.set_xlabel("clip length")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    ax_m.legend(fontsize=7, loc="upper left")
    fig.suptitle("nice-core workflow per stage on the looped sample (640x360, 2 CPU cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 30, 120, 600])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cost_curve"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--json", type=Path, help="results file: read (lengths in it are not rerun) and updated")
    parser.add_argument("--plot", type=Path, help="write the plot here (PNG)")
    parser.add_argument("--snakemake-args", default="", help="extra snakemake arguments")
    args = parser.parse_args()

    done = json.loads(args.json.read_text()) if args.json and args.json.is_file() else []
    for seconds in args.seconds:
        if any(r["seconds"] == seconds for r in done):
            continue
        done.append(measure(seconds, args.work, args.cores, args.snakemake_args.split()))
        done.sort(key=lambda r: r["seconds"])
        if args.json:
            args.json.write_text(json.dumps(done, indent=1) + "\n")
    rows = [r for r in done if r["seconds"] in args.seconds]
    print_table(rows)
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()

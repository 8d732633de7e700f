#!/usr/bin/env python
"""Kill ``nice-core refine`` (and the workflow) at random points, rerun, and check nothing was lost.

Set-up: a short clip cut from the bundled sample (``--frames``, default 24) and its self-swap proxy
(``nice-core swap``), a small carrier fit (``--epochs 4 --size 64``, 8 base channels) so one run takes
seconds, and ``SOURCE_DATE_EPOCH`` fixed so outputs are byte-reproducible. First one uninterrupted run
gives the reference output. Then, ``--trials`` times: start the same command, send SIGINT, SIGTERM or
SIGKILL (drawn at random) at a random moment of its run time, rerun it to the end, and check that

* the rerun's output is byte-identical to the reference (SHA-256; for the workflow, carrier checkpoints
  are compared by their tensors and state without the fit's timings, which differ between any two runs),
* nothing partial is left next to it (``*.partial``, ffmpeg ``*.log``, lock files), and the hidden work
  folder is gone once the rerun succeeded.

With ``--workflow N`` the same is done N times for ``snakemake --cores 2`` on the clip (one video): the
whole results tree, minus logs and benchmarks (they record times), must equal an uninterrupted run's,
file by file.

    python bench/fault_injection.py --trials 20 --workflow 3 --seed 0
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"
FIT = ["--epochs", "4", "--size", "64", "--set", "unet_base_channels=8", "--set", "unet_depth=3",
       "--set", "loss_perceptual_weight=0"]
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Partial files, ffmpeg logs and lock files under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.endswith((".partial", ".lock")) or (p.name.startswith(".") and p.suffix == ".log"))


def run(cmd: list[str], env: dict, cwd: Path, kill_after: float | None = None,
        sig: int = signal.SIGTERM) -> tuple[int, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, sig) if sig == signal.SIGKILL else proc.send_signal(sig)
    code = proc.wait()
    return code, time.perf_counter() - start


def make_inputs(folder: Path, frames: int, env: dict) -> tuple[Path, Path]:
    from nice_core.io import ffmpeg_exe

    clip, proxy = folder / "clip.mp4", folder / "proxy.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(SAMPLE), "-frames:v", str(frames), "-c:v",
                    "libx264", "-crf", "18", "-an", str(clip)], check=True)
    subprocess.run([sys.executable, "-m", "nice_core", "swap", "--identity", str(clip), "--target", str(clip),
                    "-o", str(proxy), "-q"], check=True, env=env)
    return clip, proxy


def refine_trials(folder: Path, clip: Path, proxy: Path, trials: int, rng: random.Random, env: dict) -> list[dict]:
    out_dir = folder / "refine"
    out_dir.mkdir()
    cmd = [sys.executable, "-m", "nice_core", "refine", "--target", str(clip), "--proxy", str(proxy), "-q", *FIT]
    code, reference_s = run([*cmd, "-o", str(out_dir / "reference.mp4")], env, folder)
    assert code == 0, "the uninterrupted run failed"
    reference = sha256(out_dir / "reference.mp4")
    results = []
    for trial in range(trials):
        output = out_dir / f"trial{trial}.mp4"
        sig, at = rng.choice(SIGNALS), rng.uniform(0.3, 1.0) * reference_s
        killed_code, _ = run([*cmd, "-o", str(output)], env, folder, kill_after=at, sig=sig)
        rerun_code, _ = run([*cmd, "-o", str(output)], env, folder)
        work = out_dir / f".{output.name}.work"
        ok = rerun_code == 0 and output.is_file() and sha256(output) == reference
        left = leftovers(out_dir) + ([str(work)] if work.exists() else [])
        results.append({"trial": trial, "signal": signal.Signals(sig).name, "at_s": round(at, 2),
                        "killed_exit": killed_code, "identical": ok, "left": left})
        print(f"refine trial {trial}: {signal.Signals(sig).name} at {at:.1f} s (exit {killed_code}), rerun "
              f"{'identical' if ok else 'DIFFERENT'}, left: {left or 'nothing'}", flush=True)
        output.unlink(missing_ok=True)
    return results


#: Keys of a carrier checkpoint's state that record how long things took (they differ between any two runs).
TIMING_KEYS = ("train_seconds", "seconds", "device", "threads")


def _h5_digest(path: Path, root: Path) -> str:
    """SHA-256 of an HDF5 store's datasets and attributes (values, not byte layout), with ``root`` spelled
    ``<results>`` (the store records the proxy's path, which lies in the run's own results folder)."""
    import h5py

    digest = hashlib.sha256()

    def attrs(obj) -> None:
        for key in sorted(obj.attrs):
            digest.update(key.encode() + str(obj.attrs[key]).replace(str(root), "<results>").encode())

    with h5py.File(path, "r") as h5:
        attrs(h5)

        def visit(name: str, obj) -> None:
            digest.update(name.encode())
            attrs(obj)
            if isinstance(obj, h5py.Dataset):
                digest.update(obj[()].tobytes())

        h5.visititems(visit)
    return digest.hexdigest()


def _content_digest(path: Path, root: Path) -> str:
    """SHA-256 of what a file means: a carrier's tensors (not its metadata, which holds the fit's timings),
    a checkpoint state without its timings, an HDF5 store's values, JSON with the results folder's own path
    spelled ``<results>`` (each trial has its own folder), any other file byte for byte."""
    import json

    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        tensors = load_file(str(path))
        digest = hashlib.sha256()
        for key in sorted(tensors):
            digest.update(key.encode() + tensors[key].tobytes())
        return digest.hexdigest()
    if path.suffix == ".h5":
        return _h5_digest(path, root)
    if path.suffix == ".json":
        def strip(value):
            if isinstance(value, dict):
                return {k: strip(v) for k, v in value.items() if k not in TIMING_KEYS or path.name != "state.json"}
            if isinstance(value, list):
                return [strip(v) for v in value]
            return value.replace(str(root), "<results>") if isinstance(value, str) else value

        return hashlib.sha256(json.dumps(strip(json.loads(path.read_text())), sort_keys=True).encode()).hexdigest()
    return sha256(path)


def tree_digest(results: Path) -> dict[str, str]:
    """Every result file's content digest (logs, Snakemake's benchmarks and the report record times; a
    provenance record holds its creation time and the other files' byte hashes, which these digests cover)."""
    skip = ("logs", "benchmarks", "report")
    return {str(p.relative_to(results)): _content_digest(p, results) for p in sorted(results.rglob("*"))
            if p.is_file() and p.relative_to(results).parts[0] not in skip and not p.name.startswith(".")
            and p.name != "provenance.json"}


def workflow_trials(folder: Path, clip: Path, runs: int, rng: random.Random, env: dict) -> list[dict]:
    import yaml

    def config(results: Path) -> Path:
        path = results.with_suffix(".yaml")
        path.write_text(yaml.safe_dump({"videos": {"sample": None, "clip": str(clip)}, "results": str(results),
                                        "face": {"crop_size": 64, "preview": False},
                                        "carrier": {"fit": {"size": 64, "epochs": 4, "unet_base_channels": 8,
                                                            "unet_depth": 3, "loss_perceptual_weight": 0.0}}}))
        return path

    def snakemake(results: Path) -> list[str]:
        return [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--cores", "2",
                "--configfile", str(config(results)), "--rerun-incomplete", "--keep-going", "-q"]

    reference_dir = folder / "wf-reference"
    code, reference_s = run(snakemake(reference_dir), env, REPO)
    assert code == 0, "the uninterrupted workflow run failed"
    reference = tree_digest(reference_dir)
    results = []
    for trial in range(runs):
        target = folder / f"wf-trial{trial}"
        sig, at = rng.choice(SIGNALS), rng.uniform(0.2, 0.9) * reference_s
        killed_code, _ = run(snakemake(target), env, REPO, kill_after=at, sig=sig)
        if sig == signal.SIGKILL:  # Snakemake's own lock stays after SIGKILL; a user runs --unlock
            subprocess.run([*snakemake(target), "--unlock"], env=env, cwd=REPO, capture_output=True)
        rerun_code, _ = run(snakemake(target), env, REPO)
        digest = tree_digest(target)
        same = rerun_code == 0 and digest == reference
        diff = sorted(k for k in set(digest) | set(reference) if digest.get(k) != reference.get(k))
        results.append({"trial": trial, "signal": signal.Signals(sig).name, "at_s": round(at, 2),
                        "identical": same, "different": diff, "left": leftovers(target)})
        print(f"workflow trial {trial}: {signal.Signals(sig).name} at {at:.1f} s, rerun "
              f"{'identical' if same else 'DIFFERENT ' + str(diff[:3])}, left: {leftovers(target) or 'nothing'}",
              flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10, help="killed refine runs")
    parser.add_argument("--workflow", type=int, default=0, help="killed workflow runs")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1767225600", "OMP_NUM_THREADS": "1"}
    folder = Path(tempfile.mkdtemp(prefix="fault_injection."))
    try:
        clip, proxy = make_inputs(folder, args.frames, env)
        refine = refine_trials(folder, clip, proxy, args.trials, rng, env)
        flow = workflow_trials(folder, clip, args.workflow, rng, env) if args.workflow else []
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    good = sum(r["identical"] and not r["left"] for r in refine)
    print(f"\nrefine: {good}/{len(refine)} killed runs reran to a byte-identical output with nothing left behind")
    if flow:
        good_wf = sum(r["identical"] and not r["left"] for r in flow)
        print(f"workflow: {good_wf}/{len(flow)} killed runs reran to an identical results tree with nothing left")


if __name__ == "__main__":
    main()

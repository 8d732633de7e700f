#!/usr/bin/env python
"""Warm start across methods: does a second method of the same target need fewer carrier steps?

FF++ holds 4-5 manipulated videos of each original (one per method): the same target frames, a different
proxy. Here a clip of ``bench/refine_quality.py`` is the first method, and the same clip made again under
another seed (``<clip>-m2``: another edit and other proxy faults on the same target frames; only clips
whose camera does not depend on the seed qualify: static and pan) is the second. For each clip the second
method is fitted cold at the budgets ``--cold`` and warm, from the first method's fitted carrier (its
``nice-core refine`` run of variant ``--first``, e.g. ``b2400`` of ``bench/fit_budget.py``), at the budgets
``--warm``; all are scored against the second method's clean edit G2. The issue's bar: keep the warm start
if it needs at least 2x fewer steps than a cold fit for equal e_stab, PSNR to G2 and detail.

    python bench/warm_start.py --cold 2400 1200 --warm 600 300
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_budget import KEYS, _fmt, load_results, run_variants  # noqa: E402
from refine_quality import CLIPS, make_clip, run_refine  # noqa: E402

#: Clips whose target does not depend on the seed (no hand-held shake), and the second method's seed offset.
SAME_TARGET = ("tune-static", "eval-static-a", "eval-static-b", "eval-move-b")
SECOND_SEED = 100


def second_method(clip: str) -> str:
    """Register ``<clip>-m2``: the same frames and camera, another edit and proxy (seed + 100)."""
    name = f"{clip}-m2"
    CLIPS[name] = {**CLIPS[clip], "seed": CLIPS[clip]["seed"] + SECOND_SEED}
    return name


def same_frames(a: Path, b: Path) -> bool:
    from nice_core.io import VideoReader

    with VideoReader(a) as x, VideoReader(b) as y:
        return all(np.array_equal(f, g) for (_, f), (_, g) in zip(x.iter_frames(), y.iter_frames()))


def first_carrier(folder: Path, variant: str, common: list[str], extra: list[str]) -> Path:
    """The first method's fitted carrier (its refine run, made here if the budget bench has not)."""
    run_refine(folder, variant, [*common, *extra])
    found = sorted((folder / f"work_{variant}").rglob("carrier.safetensors"))
    if not found:
        raise SystemExit(f"no carrier.safetensors under {folder / f'work_{variant}'}")
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs="+", choices=SAME_TARGET, default=list(SAME_TARGET))
    parser.add_argument("--work", type=Path, default=Path("/tmp/refine_quality"))
    parser.add_argument("--first", default="b2400", help="the first method's refine variant (its tag)")
    parser.add_argument("--first-args", default="", help="its extra refine arguments, if it must be made")
    parser.add_argument("--cold", type=int, nargs="+", default=[2400, 1200])
    parser.add_argument("--warm", type=int, nargs="+", default=[600, 300])
    parser.add_argument("--refine-args", default="", help="arguments every run gets (e.g. --threads 1)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    common = args.refine_args.split()
    results = load_results(args.json)
    for clip in args.clips:
        folder = make_clip(clip, args.work)
        carrier = first_carrier(folder, args.first, common, args.first_args.split())
        second = make_clip(second_method(clip), args.work)
        if not same_frames(folder / "target.mp4", second / "target.mp4"):
            raise SystemExit(f"{clip}: the second method's target differs from the first's")
        runs = {f"cold{n}": ["--set", f"steps={n}"] for n in args.cold}
        runs.update({f"warm{n}": ["--set", f"steps={n}", "--init", str(carrier)] for n in args.warm})
        run_variants(results, clip, second, runs, common, args.json, label=f"{clip}-m2")

    names = [f"cold{n}" for n in args.cold] + [f"warm{n}" for n in args.warm]
    print("\n| clip (second method) | run | " + " | ".join(k[0] for k in KEYS) + " | steps |")
    print("|---|---|" + "---:|" * (len(KEYS) + 1))
    for clip, rows in results.items():
        for name in names:
            if name in rows:
                r = rows[name]
                cells = " | ".join(_fmt(k, r[k], d) for _, k, d in KEYS)
                print(f"| {clip}-m2 | {name} | {cells} | {r['steps']} |")
    reference = names[0]
    print(f"\n| run | mean dPSNR(.,G2) vs {reference} | worst | mean e_stab ratio | mean detail ratio |")
    print("|---|---:|---:|---:|---:|")
    for name in names[1:]:
        both = [rows for rows in results.values() if name in rows and reference in rows]
        if both:
            d = [r[name]["psnr_g"] - r[reference]["psnr_g"] for r in both]
            e = [r[name]["e_stab"] / r[reference]["e_stab"] for r in both]
            q = [r[name]["detail"] / r[reference]["detail"] for r in both]
            print(f"| {name} | {np.mean(d):+.2f} | {min(d):+.2f} | {np.mean(e):.3f} | {np.mean(q):.3f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""How many carrier steps does a video need? Step budgets and stop rules swept over every flicker benchmark.

Each variant is ``NAME=REFINE_ARGS`` (extra ``nice-core refine`` arguments, e.g. ``b1200=--set steps=1200``);
the first variant is the reference. Every variant runs on every clip of ``bench/refine_quality.py`` (the
tuning and the evaluation clips: the issue asks for all of them) and is scored against the clean edit G with
the same functions as that bench. Printed per clip and variant: PSNR to G (face, inner, ring), e_stab x1e3,
detail ratio, fine-detail transfer, the fit's optimizer steps and seconds; then, per variant, the mean and
the worst clip's difference to the reference. A variant "keeps the quality" when on every clip its PSNR to G
is within ``--tolerance`` dB of the reference's and its e_stab within 10 %.

    python bench/fit_budget.py --variants "b2400=" "b1200=--set steps=1200" "b600=--set steps=600"
    # two processes, one thread each, half the clips each (the quality does not depend on the split):
    OMP_NUM_THREADS=1 python bench/fit_budget.py --clips tune-move eval-static-a eval-static-b \\
        --refine-args "--threads 1" --json a.json --variants ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refine_quality import CLIPS, make_clip, run_refine, score  # noqa: E402

KEYS = (("PSNR(.,G)", "psnr_g", 2), ("inner", "psnr_inner", 2), ("ring", "psnr_ring", 2),
        ("e_stab x1e3", "e_stab", 3), ("detail", "detail", 3), ("FDT", "fdt", 3))


def fit_record(info: dict) -> dict:
    """The fit's steps and seconds from ``nice-core refine --json``."""
    fit_s = info.get("seconds", {}).get("fitting")
    return {"steps": info.get("steps"), "fit_s": None if fit_s is None else round(fit_s, 1)}


def load_results(out: Path | None) -> dict:
    """Earlier results (runs already in them are not redone), or none."""
    return json.loads(out.read_text()) if out is not None and out.is_file() else {}


def run_variants(results: dict, key: str, folder: Path, variants: dict[str, list[str]], common: list[str],
                 out: Path | None, label: str | None = None) -> None:
    """Refine and score every variant on the clip in ``folder`` into ``results[key]`` (those already there
    are skipped), printing each row (as ``label``) and saving ``out`` after each."""
    for name, extra in variants.items():
        if name in results.get(key, {}):
            continue
        video, info = run_refine(folder, name, [*common, *extra])
        row = {**score(video, folder), **fit_record(info)}
        results.setdefault(key, {})[name] = row
        print(f"{label or key} {name}: " + ", ".join(f"{text} {_fmt(k, row[k], digits)}" for text, k, digits in KEYS)
              + f", steps {row['steps']}, fit {row['fit_s']} s", flush=True)
        if out is not None:
            out.write_text(json.dumps(results, indent=1) + "\n")


def run(clips: list[str], variants: dict[str, list[str]], work: Path, common: list[str], out: Path | None) -> dict:
    results = load_results(out)
    for clip in clips:
        run_variants(results, clip, make_clip(clip, work), variants, common, out)
    return results


def _fmt(key: str, value, digits: int) -> str:
    if value is None:
        return "-"
    return f"{1e3 * value if key == 'e_stab' else value:.{digits}f}"


def summarise(results: dict, names: list[str], tolerance: float) -> None:
    print("\n| clip | variant | " + " | ".join(k[0] for k in KEYS) + " | steps | fit s |")
    print("|---|---|" + "---:|" * (len(KEYS) + 2))
    for clip, rows in results.items():
        for name in names:
            if name in rows:
                r = rows[name]
                print(f"| {clip} | {name} | " + " | ".join(_fmt(k, r[k], d) for _, k, d in KEYS)
                      + f" | {r['steps']} | {r['fit_s']} |")
    reference = names[0]
    print(f"\n| variant | clips | mean dPSNR(.,G) | worst dPSNR(.,G) | mean e_stab ratio | worst e_stab ratio "
          f"| mean dFDT | mean steps | keeps the quality (±{tolerance} dB, e_stab ±10 %) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name in names:
        both = [rows for rows in results.values() if name in rows and reference in rows]
        if not both:
            continue
        dpsnr = [rows[name]["psnr_g"] - rows[reference]["psnr_g"] for rows in both]
        ratio = [rows[name]["e_stab"] / rows[reference]["e_stab"] for rows in both]
        dfdt = [(rows[name]["fdt"] or 0) - (rows[reference]["fdt"] or 0) for rows in both]
        steps = [rows[name]["steps"] or 0 for rows in both]
        keeps = all(abs(d) <= tolerance for d in dpsnr) and all(0.9 <= r <= 1.1 for r in ratio)
        worst = min(dpsnr, key=lambda d: d)
        print(f"| {name} | {len(both)} | {np.mean(dpsnr):+.2f} | {worst:+.2f} | {np.mean(ratio):.3f} | "
              f"{max(ratio, key=lambda r: abs(r - 1)):.3f} | {np.mean(dfdt):+.3f} | {np.mean(steps):.0f} | "
              f"{'yes' if keeps else 'no'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", required=True, help="NAME=REFINE_ARGS; the first is the reference")
    parser.add_argument("--clips", nargs="+", choices=list(CLIPS), default=list(CLIPS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/refine_quality"))
    parser.add_argument("--refine-args", default="", help="arguments every variant gets (e.g. --threads 1)")
    parser.add_argument("--tolerance", type=float, default=0.3, help="dB of PSNR to G a variant may lose")
    parser.add_argument("--json", type=Path, help="results (read first: finished runs are not redone)")
    parser.add_argument("--merge", type=Path, nargs="*", default=[], help="only summarise these result files")
    args = parser.parse_args()

    variants = {}
    for item in args.variants:
        name, _, extra = item.partition("=")
        variants[name] = extra.split()
    if args.merge:
        results: dict = {}
        for path in args.merge:
            for clip, rows in json.loads(path.read_text()).items():
                results.setdefault(clip, {}).update(rows)
    else:
        results = run(args.clips, variants, args.work, args.refine_args.split(), args.json)
    summarise(results, list(variants), args.tolerance)


if __name__ == "__main__":
    main()

"""The study's report: the table over seeds, the paired differences, ROC curves and what was left out, as
JSON, CSV and one offline HTML page.

Inputs are the eval records of :func:`~nice_core.detect.run.evaluate_detector` (one per condition, seed and
test set). Every number is a mean over seeds with a two-sided 95 % Student-t interval; a difference
``B - A`` is taken seed by seed (the conditions share seeds and clip plans) before it is summarised.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nice_core.detect.study import REPORTED, summarise
from nice_core.detect.train import FORMAT
from nice_core.errors import InputError
from nice_core.io.atomic import atomic_output, write_json

__all__ = ["encoding_parity", "load_records", "watermark_probe", "write_study_report"]

LABELS = {"auc": "AUC", "balanced_acc": "balanced accuracy", "acc": "accuracy at 0.5"}
#: One colour per condition, in order of their names (the report's line colours).
PALETTE = ("#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599")


def load_records(paths: Sequence[str | Path]) -> list[dict]:
    """Read eval records, refusing a file that is not one or a (condition, seed, test set) given twice."""
    records, seen = [], {}
    for path in map(Path, paths):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            key = (record["condition"], record["seed"], record["test_set"])
            ok = record.get("format") == FORMAT and isinstance(record["metrics"], dict)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InputError(f"{path}: not a detector eval record ({err})") from None
        if not ok:
            raise InputError(f"{path}: not a detector eval record (format {record.get('format')!r})")
        if key in seen:
            raise InputError(f"{path} and {seen[key]} both hold condition {key[0]}, seed {key[1]}, test set {key[2]}")
        seen[key] = path
        records.append(record)
    if not records:
        raise InputError("no eval records to report")
    return records


def _left_out(records: Sequence[Mapping], failures: Sequence[Mapping]) -> list[dict]:
    out = {(f["id"], f["reason"]): {"id": f["id"], "reason": f["reason"]} for r in records for f in r["left_out"]}
    for f in failures:
        out.setdefault((f["id"], f["reason"]), {"id": f["id"], "reason": f["reason"]})
    return sorted(out.values(), key=lambda f: f["id"])


def _csv(summary: Mapping) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["kind", "condition", "baseline", "test_set", "metric", "mean", "ci95_low", "ci95_high", "seeds"])
    for row in summary["rows"]:
        for metric in REPORTED:
            m = row["metrics"][metric]
            writer.writerow(["mean", row["condition"], "", row["test_set"], metric, *_round(m)])
    for d in summary["differences"]:
        writer.writerow(["paired difference", d["condition"], d["baseline"], d["test_set"], d["metric"], *_round(d)])
    return buffer.getvalue()


def _round(m: Mapping) -> list:
    return [f"{m['mean']:.4f}", f"{m['low']:.4f}", f"{m['high']:.4f}", m["n"]]


def _roc_charts(records: Sequence[Mapping]) -> list[str]:
    from nice_core.report.charts import Curve, curve_chart

    conditions = sorted({r["condition"] for r in records})
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(conditions)}
    charts = []
    for test_set in sorted({r["test_set"] for r in records}):
        curves = [Curve(f"{r['condition']} seed {r['seed']} (AUC {r['metrics']['auc']:.3f})", r["roc"]["fpr"],
                        r["roc"]["tpr"], colour[r["condition"]])
                  for r in sorted(records, key=lambda r: (r["condition"], r["seed"])) if r["test_set"] == test_set]
        charts.append(curve_chart(curves, title=f"ROC, {test_set}", x_label="false positive rate (reals called fake)",
                                  y_label="true positive rate", diagonal=True))
    return charts


def watermark_probe(records: Sequence[Mapping]) -> list[dict]:
    """Per condition and test set with probe results: the mean change of the reals' mean fake score when they
    carry the watermark, and the seed-to-seed spread of that score (its standard deviation over seeds); the
    detector does not key on the mark when the change is within the spread."""
    out = []
    for condition, test_set in sorted({(r["condition"], r["test_set"]) for r in records if "watermark_probe" in r}):
        group = [r["watermark_probe"] for r in records
                 if (r["condition"], r["test_set"]) == (condition, test_set) and "watermark_probe" in r]
        change = float(np.mean([p["change"] for p in group]))
        spread = float(np.std([p["mean_fake_score"] for p in group], ddof=1)) if len(group) > 1 else None
        out.append({"condition": condition, "test_set": test_set, "seeds": len(group), "change": change,
                    "spread": spread, "within_spread": None if spread is None else abs(change) <= spread})
    return out


def encoding_parity(records: Sequence[Mapping]) -> list[dict]:
    """Per condition (its training videos) and per test set: how each source's videos were encoded
    (``{source: {encoding: videos}}``) and whether the reals and the fakes share one set of encodings
    (``None``: not recorded for some). Where they do not, a detector can separate the classes by compression
    or by the mark, not by the face."""
    out, seen = [], set()
    for r in sorted(records, key=lambda r: (r["condition"], r["seed"], r["test_set"])):
        enc = r.get("encodings")
        if enc is None:
            continue
        for what, key in ((f"training of {r['condition']}", ("train", r["condition"])),
                          (f"test set {r['test_set']}", ("test", r["test_set"]))):
            if key in seen:
                continue
            seen.add(key)
            by_source = enc[key[0]]
            reals = {e for src, counts in by_source.items() if src == "original" for e in counts}
            fakes = {e for src, counts in by_source.items() if src != "original" for e in counts}
            known = "unknown" not in reals | fakes  # clips cut before nice-core recorded it
            out.append({"videos": what, "by_source": by_source, "one_path": reals == fakes if known else None})
    return out


def _cell(m: Mapping) -> dict:
    return {"mean": f"{m['mean']:.3f}", "interval": f"[{m['low']:.3f}, {m['high']:.3f}]", "n": m["n"]}


def write_study_report(records: Sequence[Mapping], out_dir: str | Path, baseline: str = "A",
                       failures: Sequence[Mapping] = (), title: str = "NICe detection study") -> dict[str, Path]:
    """Write ``detection.json``, ``detection.csv`` and ``detection.html`` into ``out_dir``; return their paths.

    Args:
        records: eval records (:func:`load_records`).
        baseline: the condition the paired differences subtract.
        failures: more videos left out (``id``, ``reason``), e.g. ones whose clips could not be cut.
    """
    from nice_core.report.html import render

    out_dir = Path(out_dir)
    summary = summarise(records, baseline)
    left_out = _left_out(records, failures)
    inits = sorted({r.get("init") or "from scratch" for r in records})
    steps = sorted({r.get("steps") for r in records})
    probe = watermark_probe(records)
    parity = encoding_parity(records)
    data = {"format": "nice-core-detect-report/1", "baseline": baseline, "start_weights": inits, "steps": steps,
            **summary, "watermark_probe": probe, "encoding_parity": parity, "left_out": left_out,
            "runs": [{k: r[k] for k in ("condition", "seed", "test_set", "model_sha256", "metrics")} for r in records]}
    paths = {"json": out_dir / "detection.json", "csv": out_dir / "detection.csv", "html": out_dir / "detection.html"}
    write_json(paths["json"], data)
    with atomic_output(paths["csv"]) as tmp:
        tmp.write_text(_csv(summary))
    rows = [{"condition": r["condition"], "test_set": r["test_set"], "seeds": r["seeds"], "videos": r["videos"],
             "cells": [_cell(r["metrics"][m]) for m in REPORTED]} for r in summary["rows"]]
    differences = [{**d, "label": LABELS[d["metric"]], **_cell(d),
                    "css": "better" if d["low"] > 0 else "worse" if d["high"] < 0 else ""}
                   for d in summary["differences"]]
    page = render("detect.html.j2", title=title, rows=rows, columns=[LABELS[m] for m in REPORTED],
                  differences=differences, baseline=baseline, charts=_roc_charts(records), left_out=left_out,
                  inits=inits, steps=steps, n_runs=len(records), probe=probe, parity=parity)
    with atomic_output(paths["html"]) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return paths

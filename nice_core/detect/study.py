"""The experiment of the detection study: conditions, their training and test sets, and the numbers over seeds.

A *condition* is the set of sources a detector trains on (A = originals + per-frame swaps, B = originals +
refined, C = all three, or any the user names). Every condition trains with the same seeds, the same step
budget and the same clip plan (a video's clips are fixed by its tracking store, not by the condition), so a
difference between two conditions at one seed is a paired difference. Test sets are fixed lists of videos:
the FF++ test split with the per-frame and the refined fakes apart, and Celeb-DF v2's test list.

Everything here is plain Python and numpy (no torch): the CLI and the workflow call it around
:func:`~nice_core.detect.train.train_detector` and :func:`~nice_core.detect.train.score_clips`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nice_core.config import default
from nice_core.detect.index import SOURCES, VideoEntry
from nice_core.errors import InputError

__all__ = ["CONDITIONS", "PARITY_AS", "TEST_SETS", "REPORTED", "Interval", "clips_path", "condition_entries",
           "entries_of_test_set", "interval", "paired_differences", "parity_role", "summarise"]

#: The paper's conditions (A: originals + per-frame swaps, B: originals + refined, C: all three): the sources
#: each trains on, from the schema's ``detector.conditions``.
CONDITIONS: dict[str, tuple[str, ...]] = {name: tuple(sources)
                                          for name, sources in default("detector.conditions").items()}
#: Test set -> (data set, the fake sources in it); the reals are that data set's real test videos.
TEST_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ffpp-per-frame": ("ffpp", ("per-frame",)),
    "ffpp-refined": ("ffpp", ("refined",)),
    "celebdf": ("celebdf", ("external",)),
}
#: The numbers the report gives a mean and an interval over seeds for.
REPORTED = ("auc", "balanced_acc", "acc")
#: How a re-encoded copy is labelled (:func:`~nice_core.detect.parity.reencode_for_parity`): ``real`` (the
#: parity payload, not synthetic), ``fake`` (a per-frame swap: a synthetic output's label), ``probe`` (a real
#: video marked like a synthetic output: the watermark probe's stand-in, showing what the mark alone does).
PARITY_AS = ("real", "fake", "probe")


def parity_role(entry: VideoEntry) -> str | None:
    """How the workflow re-encodes ``entry`` for encoding parity: an FF++ original as ``real``, an FF++
    per-frame swap as ``fake``; ``None`` for the rest (the refined fakes are nice-core's outputs already;
    Celeb-DF is a test set of which nothing is nice-core's, scored as found)."""
    if entry.dataset != "ffpp":
        return None
    return {"original": "real", "per-frame": "fake"}.get(entry.source)


def clips_path(clips_dir: str | Path, entry: VideoEntry) -> Path:
    """Where ``entry``'s clips file lives under ``clips_dir`` (its id is a relative path: ``ffpp/...``)."""
    return Path(clips_dir) / f"{entry.id}.h5"


def check_condition(name: str, sources: Sequence[str]) -> tuple[str, ...]:
    """``sources`` as a condition's tuple, refused with one line when it names an unknown source or lacks a
    real and a fake one."""
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise InputError(f"condition {name}: unknown source {unknown[0]!r} (one of {', '.join(SOURCES)})")
    if "original" not in sources or len(set(sources)) < 2:
        raise InputError(f"condition {name}: needs 'original' and at least one fake source, got {list(sources)}")
    return tuple(dict.fromkeys(sources))


def condition_entries(entries: Sequence[VideoEntry], sources: Sequence[str], split: str) -> list[VideoEntry]:
    """The FF++ videos of ``split`` a condition with ``sources`` trains (``train``) or is chosen (``val``) on."""
    return [e for e in entries if e.dataset == "ffpp" and e.split == split and e.source in sources]


def entries_of_test_set(entries: Sequence[VideoEntry], test_set: str) -> list[VideoEntry]:
    """The videos of one of :data:`TEST_SETS`: that data set's real test videos and the named fakes."""
    if test_set not in TEST_SETS:
        raise InputError(f"unknown test set {test_set!r} (one of {', '.join(TEST_SETS)})")
    dataset, fakes = TEST_SETS[test_set]
    return [e for e in entries if e.dataset == dataset and e.split == "test"
            and (e.label == 0 or e.source in fakes)]


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its two-sided 95 % Student-t interval (``low == high == mean`` for one seed)."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


#: Two-sided 97.5 % quantiles of Student's t for 1..30 degrees of freedom (beyond: 1.96).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def interval(values: Iterable[float]) -> Interval:
    """Mean and 95 % t-interval of ``values`` (seeds are few: the t quantile, not 1.96)."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], np.float64)
    if x.size == 0:
        raise ValueError("no values to summarise")
    mean = float(x.mean())
    if x.size == 1:
        return Interval(mean, mean, mean, 1)
    t = _T975[x.size - 2] if x.size - 1 <= len(_T975) else 1.96
    half = t * float(x.std(ddof=1)) / math.sqrt(x.size)
    return Interval(mean, mean - half, mean + half, int(x.size))


def paired_differences(results: Sequence[Mapping], baseline: str, metric: str) -> dict[tuple[str, str], Interval]:
    """``(condition, test set) -> interval of (condition - baseline)`` over the seeds both were run with.

    Args:
        results: eval records (``condition``, ``seed``, ``test_set``, ``metrics``).
        baseline: the condition subtracted (``A``).
        metric: a key of ``metrics``.
    """
    by_key = {(r["condition"], r["test_set"], r["seed"]): r["metrics"].get(metric) for r in results}
    out = {}
    for condition, test_set in sorted({(c, t) for c, t, _ in by_key if c != baseline}):
        diffs = [by_key[(condition, test_set, s)] - by_key[(baseline, test_set, s)]
                 for c, t, s in sorted(by_key) if (c, t) == (condition, test_set)
                 and by_key.get((baseline, test_set, s)) is not None and by_key[(c, t, s)] is not None]
        if diffs:
            out[(condition, test_set)] = interval(diffs)
    return out


def summarise(results: Sequence[Mapping], baseline: str = "A") -> dict:
    """The study's table from its eval records: per condition and test set the mean and interval over seeds
    of :data:`REPORTED`, and the paired differences to ``baseline`` (JSON-ready)."""
    rows = []
    for condition, test_set in sorted({(r["condition"], r["test_set"]) for r in results}):
        group = [r for r in results if (r["condition"], r["test_set"]) == (condition, test_set)]
        row = {"condition": condition, "test_set": test_set, "seeds": sorted(r["seed"] for r in group),
               "videos": group[0]["metrics"].get("n"),
               "metrics": {m: interval(r["metrics"][m] for r in group).to_dict() for m in REPORTED}}
        rows.append(row)
    differences = []
    if any(r["condition"] == baseline for r in results):
        for metric in REPORTED:
            for (condition, test_set), value in paired_differences(results, baseline, metric).items():
                differences.append({"condition": condition, "baseline": baseline, "test_set": test_set,
                                    "metric": metric, **value.to_dict()})
    return {"rows": rows, "differences": differences}

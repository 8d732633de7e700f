"""Detection metrics: AUC, AP, EER and accuracies from scores, and video scores from clip scores.

Convention throughout the detection study: ``label`` 1 is fake, 0 is real; ``score`` is the detector's
probability that the clip or video is fake, in ``[0, 1]`` (any real-valued score works for the ranking
metrics). A video is called fake at threshold ``t`` when ``score >= t``.

* :func:`roc_auc` is the Mann-Whitney statistic: the probability that a random fake scores above a random
  real, ties counting one half (average ranks), so it is exact for tied scores.
* :func:`average_precision` is the step-wise area under the precision-recall curve taken at every distinct
  score (tied scores form one step), as in scikit-learn's ``average_precision_score``.
* :func:`equal_error_rate` is where the false-negative rate equals the false-positive rate on the ROC
  curve through the distinct thresholds, linearly interpolated between the two points that bracket it.
* :func:`threshold_at_best_balanced_accuracy` picks the operating point on a *validation* split; the test
  split is then scored at it (never chosen on the test split).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "DetectionScores",
    "average_precision",
    "detection_scores",
    "equal_error_rate",
    "roc_auc",
    "roc_curve",
    "threshold_at_best_balanced_accuracy",
    "video_scores",
]


def _check(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"labels and scores must be 1-D of one length, got shapes {y.shape} and {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 (real) or 1 (fake), got {sorted(set(y.tolist()) - {0, 1})[:3]}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return y.astype(np.int64), s


def _both_classes(y: np.ndarray, what: str) -> None:
    if y.min(initial=1) == y.max(initial=0) or y.size == 0:
        raise ValueError(f"{what} needs both real (0) and fake (1) labels, got {int(y.sum())} fake of {y.size}")


def roc_auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve, ``P(score_fake > score_real) + P(tie) / 2``, in ``[0, 1]``."""
    y, s = _check(labels, scores)
    _both_classes(y, "AUC")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    # Average rank (1-based) of each run of tied scores.
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + b + 1) / 2.0
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(labels: Sequence[int] | np.ndarray,
              scores: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` at every distinct score, highest first, starting at ``(0, 0, +inf)``."""
    y, s = _check(labels, scores)
    _both_classes(y, "the ROC curve")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_run = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(y)[last_of_run]
    fp = np.cumsum(1 - y)[last_of_run]
    tpr = np.r_[0.0, tp / y.sum()]
    fpr = np.r_[0.0, fp / (y.size - y.sum())]
    return fpr, tpr, np.r_[np.inf, s[last_of_run]]


def average_precision(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """``sum_n (R_n - R_{n-1}) P_n`` over the distinct thresholds, in ``[0, 1]`` (fake is the positive class)."""
    y, s = _check(labels, scores)
    _both_classes(y, "AP")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_run = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(y)[last_of_run].astype(np.float64)
    called = (np.flatnonzero(last_of_run) + 1).astype(np.float64)
    precision, recall = tp / called, tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def equal_error_rate(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """The rate where ``FNR = FPR`` on the ROC curve (linear between the bracketing points), in ``[0, 1]``."""
    fpr, tpr, _ = roc_curve(labels, scores)
    gap = (1.0 - tpr) - fpr  # FNR - FPR: 1 at the curve's start, -1 at its end, never rising
    k = int(np.flatnonzero(gap <= 0)[0])
    if gap[k] == 0:
        return float(fpr[k])
    # Between points k-1 (gap > 0) and k (gap < 0): where the straight segment crosses FNR = FPR.
    t = gap[k - 1] / (gap[k - 1] - gap[k])
    return float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))


def threshold_at_best_balanced_accuracy(labels: Sequence[int] | np.ndarray,
                                        scores: Sequence[float] | np.ndarray) -> float:
    """The threshold (one of the scores) that maximises balanced accuracy on these (validation) scores;
    ties go to the threshold nearest 0.5."""
    y, s = _check(labels, scores)
    _both_classes(y, "a threshold")
    candidates = np.unique(s)
    best = max(candidates, key=lambda t: (_balanced(y, s, t), -abs(t - 0.5)))
    return float(best)


def _rates(y: np.ndarray, s: np.ndarray, threshold: float) -> tuple[float, float]:
    """(accuracy on fakes = TPR, accuracy on reals = TNR); NaN for a class that is absent."""
    fake = s >= threshold
    tpr = float(fake[y == 1].mean()) if (y == 1).any() else float("nan")
    tnr = float((~fake[y == 0]).mean()) if (y == 0).any() else float("nan")
    return tpr, tnr


def _balanced(y: np.ndarray, s: np.ndarray, threshold: float) -> float:
    tpr, tnr = _rates(y, s, threshold)
    return (tpr + tnr) / 2.0


class DetectionScores(dict):
    """The metrics of one test set as a plain ``dict`` (JSON-ready): ``auc``, ``ap``, ``eer``, ``acc``
    (at 0.5), ``balanced_acc``, ``real_acc``, ``fake_acc`` (at 0.5), ``acc_at_val``,
    ``balanced_acc_at_val`` (at the validation threshold, when given), ``threshold``, ``n``, ``n_fake``."""


def detection_scores(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray,
                     val_threshold: float | None = None) -> DetectionScores:
    """Every metric of :class:`DetectionScores` for one set of (video or clip) scores."""
    y, s = _check(labels, scores)
    _both_classes(y, "the detection metrics")
    tpr, tnr = _rates(y, s, 0.5)
    out = DetectionScores(auc=roc_auc(y, s), ap=average_precision(y, s), eer=equal_error_rate(y, s),
                          acc=float(((s >= 0.5) == (y == 1)).mean()), balanced_acc=(tpr + tnr) / 2.0,
                          real_acc=tnr, fake_acc=tpr, n=int(y.size), n_fake=int(y.sum()))
    if val_threshold is not None:
        out.update(threshold=float(val_threshold),
                   acc_at_val=float(((s >= val_threshold) == (y == 1)).mean()),
                   balanced_acc_at_val=_balanced(y, s, val_threshold))
    return out


def video_scores(clip_scores: Iterable[tuple[str, float]] | Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Per video, the mean of its clips' probabilities: ``{video: score}`` from ``(video, clip score)``
    pairs or ``{video: [clip scores]}``."""
    grouped: dict[str, list[float]] = {}
    items = ((v, c) for v, cs in clip_scores.items() for c in cs) if isinstance(clip_scores, Mapping) else clip_scores
    for video, score in items:
        grouped.setdefault(video, []).append(float(score))
    return {video: float(np.mean(values)) for video, values in grouped.items()}

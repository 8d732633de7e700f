"""The detection study's metrics against values worked out by hand (ties included)."""

from __future__ import annotations

import numpy as np
import pytest

from nice_core.detect.metrics import (
    average_precision,
    detection_scores,
    equal_error_rate,
    roc_auc,
    threshold_at_best_balanced_accuracy,
    video_scores,
)

# Two reals (0.1, 0.4) and two fakes (0.35, 0.8): of the 4 (fake, real) pairs, 3 are ordered right.
LABELS, SCORES = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]


def test_auc_counts_ordered_pairs_and_half_ties() -> None:
    assert roc_auc(LABELS, SCORES) == pytest.approx(0.75)
    # Fakes 0.5 and 0.9, reals 0.5 and 0.2: pairs 0.5 (tie) + 1 + 1 + 1 of 4.
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)
    assert roc_auc([0, 1], [0.3, 0.3]) == pytest.approx(0.5)
    assert roc_auc([1, 0], [0.9, 0.1]) == 1.0 and roc_auc([0, 1], [0.9, 0.1]) == 0.0


def test_average_precision_steps_over_distinct_scores() -> None:
    # Called fake from the top: 0.8 (P 1, R 1/2), 0.4 (P 1/2), 0.35 (P 2/3, R 1): 1/2 * 1 + 1/2 * 2/3.
    assert average_precision(LABELS, SCORES) == pytest.approx(5 / 6)
    # A tie of a fake and a real at 0.5 is one step: 0.9 (P 1, R 1/2), then {0.5, 0.5} (P 2/3, R 1).
    assert average_precision([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(5 / 6)


def test_equal_error_rate_on_and_between_curve_points() -> None:
    # ROC through (0, 1/2) then (1/2, 1/2): FNR = FPR = 1/2 at that point.
    assert equal_error_rate(LABELS, SCORES) == pytest.approx(0.5)
    assert equal_error_rate([0, 1], [0.2, 0.8]) == 0.0
    # Reals 0.1, 0.2, 0.9 and a fake 0.8: the curve jumps from (1/3, 0) to (1/3, 1): FNR crosses 1/3 there.
    assert equal_error_rate([0, 0, 0, 1], [0.1, 0.2, 0.9, 0.8]) == pytest.approx(1 / 3)


def test_threshold_is_chosen_for_balanced_accuracy_and_near_half_on_ties() -> None:
    # At 0.2 and at 0.9 the balanced accuracy is 3/4; 0.2 is nearer 0.5.
    assert threshold_at_best_balanced_accuracy([0, 0, 1, 1], [0.1, 0.3, 0.2, 0.9]) == pytest.approx(0.2)


def test_detection_scores_reports_every_metric_and_the_validation_threshold() -> None:
    # Celeb-DF-like imbalance: always answering "fake" scores 0.75 accuracy but 0.5 balanced accuracy.
    labels = [1, 1, 1, 0]
    scores = detection_scores(labels, [0.9, 0.8, 0.7, 0.6], val_threshold=0.65)
    assert scores["acc"] == pytest.approx(0.75) and scores["balanced_acc"] == pytest.approx(0.5)
    assert (scores["real_acc"], scores["fake_acc"]) == (0.0, 1.0)
    assert scores["auc"] == 1.0 and scores["acc_at_val"] == 1.0 and scores["balanced_acc_at_val"] == 1.0
    assert (scores["n"], scores["n_fake"]) == (4, 3)


def test_video_score_is_the_mean_of_its_clips() -> None:
    assert video_scores([("a", 0.2), ("b", 1.0), ("a", 0.6)]) == pytest.approx({"a": 0.4, "b": 1.0})
    assert video_scores({"a": [0.0, 1.0]}) == {"a": 0.5}


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="both real"):
        roc_auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        roc_auc([0, 2], [0.2, 0.3])
    with pytest.raises(ValueError, match="one length"):
        roc_auc([0, 1], [0.2])
    with pytest.raises(ValueError, match="finite"):
        roc_auc([0, 1], [0.2, np.nan])

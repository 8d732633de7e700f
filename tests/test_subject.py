import numpy as np
import pytest

from nice_core.face.subject import (
    SubjectRule,
    SubjectTracker,
    box_iou,
    choose_subject,
    gap_runs,
    interpolate_run,
)


def face_at(x: float, y: float, size: float) -> np.ndarray:
    pts = np.zeros((478, 3), np.float32)
    pts[:, 0] = np.linspace(x, x + size, 478)
    pts[:, 1] = np.linspace(y, y + size, 478)
    return pts


def test_rule_parsing():
    assert SubjectRule.parse("largest") == SubjectRule()
    assert SubjectRule.parse("index:2") == SubjectRule(mode="index", index=2)
    assert SubjectRule.parse("ref.png") == SubjectRule(mode="reference", reference="ref.png")
    with pytest.raises(ValueError, match="index:N"):
        SubjectRule.parse("index:two")


def test_choose_largest_index_and_reference():
    faces = [face_at(400, 50, 60), face_at(50, 50, 120), face_at(250, 50, 80)]
    assert choose_subject(faces, SubjectRule()) == 1
    assert choose_subject(faces, SubjectRule(mode="index", index=0)) == 1  # leftmost
    assert choose_subject(faces, SubjectRule(mode="index", index=2)) == 0  # rightmost
    assert choose_subject(faces, SubjectRule(mode="index", index=3)) is None
    distances = {400: 0.2, 50: 0.9, 250: 0.7}
    pick = choose_subject(faces, SubjectRule(mode="reference", reference="x"),
                          lambda f: distances[int(f[0, 0])])
    assert pick == 0


def test_tracker_sticks_to_its_subject_when_a_larger_face_appears():
    tracker = SubjectTracker(SubjectRule(), reacquire_after=3)
    subject = face_at(100, 100, 80)
    assert tracker.update([subject]) is subject
    intruder = face_at(400, 50, 200)
    moved = face_at(105, 102, 80)
    assert tracker.update([intruder, moved]) is moved
    # Lost for a while, the subject is re-chosen by the rule only after `reacquire_after` misses.
    for _ in range(3):
        assert tracker.update([intruder]) is None
    assert tracker.update([intruder]) is intruder


def test_gap_runs_only_inside_and_short():
    present = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0], bool)
    assert gap_runs(present, max_gap=2) == [(3, 5)]
    assert gap_runs(present, max_gap=4) == [(3, 5), (6, 10)]


def test_interpolation_is_linear():
    out = interpolate_run(np.array([0.0, 10.0]), np.array([4.0, 30.0]), 3)
    assert out.tolist() == [[1.0, 15.0], [2.0, 20.0], [3.0, 25.0]]


def test_iou():
    a = np.array([0, 0, 10, 10.0])
    assert box_iou(a, a) == 1.0
    assert box_iou(a, np.array([20, 20, 30, 30.0])) == 0.0
    assert box_iou(a, np.array([5, 0, 15, 10.0])) == pytest.approx(1 / 3)

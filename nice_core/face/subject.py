"""Following one subject through a clip, and filling short gaps in its track.

The subject is chosen once, on the first frame with a face, by one of three rules:

* ``largest``: the largest face (the default);
* ``index:N``: the N-th face counted from the left of the frame;
* a reference image: the face whose identity embedding is nearest to the reference's.

After that, each frame's subject is the face that overlaps the previous subject box most. If the subject
is lost for longer than ``reacquire_after`` frames, or after a shot cut (:meth:`SubjectTracker.cut`), it is
chosen again by the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: A face must overlap the last subject box by this IoU to continue the track.
TRACK_MIN_IOU = 0.3


def face_box(landmarks: np.ndarray) -> np.ndarray:
    """``(x0, y0, x1, y1)`` bounding box of ``(N, 2+)`` landmarks."""
    pts = np.asarray(landmarks)[:, :2]
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)]).astype(np.float64)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class SubjectRule:
    """How the tracked subject is chosen. Parse user text with :meth:`parse`."""

    mode: str = "largest"
    index: int = 0
    reference: str | None = None

    @classmethod
    def parse(cls, text: str) -> SubjectRule:
        """``"largest"``, ``"index:N"`` or a path to a reference image."""
        text = str(text).strip()
        if text == "largest":
            return cls()
        if text.startswith("index:"):
            try:
                index = int(text.split(":", 1)[1])
            except ValueError:
                raise ValueError(f"subject must be 'largest', 'index:N' or an image path, got {text!r}") from None
            if index < 0:
                raise ValueError(f"subject index must be >= 0, got {index}")
            return cls(mode="index", index=index)
        return cls(mode="reference", reference=text)


def choose_subject(faces: list[np.ndarray], rule: SubjectRule,
                   distance_to_reference: Callable[[np.ndarray], float] | None = None) -> int | None:
    """Index into ``faces`` of the subject by ``rule``; ``None`` if the rule cannot pick one here."""
    if not faces:
        return None
    if rule.mode == "largest":
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in map(face_box, faces)]
        return int(np.argmax(areas))
    if rule.mode == "index":
        order = np.argsort([face_box(f)[[0, 2]].mean() for f in faces])
        return int(order[rule.index]) if rule.index < len(faces) else None
    if distance_to_reference is None:
        raise ValueError("a reference subject needs distance_to_reference")
    return int(np.argmin([distance_to_reference(face) for face in faces]))


def reference_distance(rule: SubjectRule) -> Callable[[np.ndarray], Callable[[np.ndarray], float]] | None:
    """For a reference rule, ``frame -> (face landmarks -> embedding distance to the reference image)``;
    ``None`` for the other rules."""
    if rule.mode != "reference":
        return None
    from nice_core.face.identity import embedding_distance, face_embedding, reference_embedding

    reference = reference_embedding(rule.reference)
    return lambda frame: (lambda face: embedding_distance(face_embedding(frame, face), reference))


class SubjectTracker:
    """Picks the subject's landmarks out of each frame's faces.

    Args:
        rule: how to choose the subject.
        reacquire_after: frames without the subject before it is chosen again by ``rule``.

    For a reference rule, :meth:`update` takes ``distance_to_reference``, bound to the current frame.
    """

    def __init__(self, rule: SubjectRule, reacquire_after: int) -> None:
        self.rule = rule
        self.reacquire_after = reacquire_after
        self._box: np.ndarray | None = None
        self._missing = 0

    def cut(self) -> None:
        """A shot cut: forget the subject's box, so the next frame chooses the subject by the rule again."""
        self._box = None
        self._missing = 0

    def update(self, faces: list[np.ndarray],
               distance_to_reference: Callable[[np.ndarray], float] | None = None) -> np.ndarray | None:
        """The subject's ``(478, 3)`` landmarks in this frame, or ``None``."""
        pick = None
        if self._box is not None and faces:
            overlaps = [box_iou(self._box, face_box(f)) for f in faces]
            best = int(np.argmax(overlaps))
            if overlaps[best] >= TRACK_MIN_IOU:
                pick = best
        if pick is None and (self._box is None or self._missing >= self.reacquire_after):
            pick = choose_subject(faces, self.rule, distance_to_reference)
        if pick is None:
            self._missing += 1
            return None
        self._box = face_box(faces[pick])
        self._missing = 0
        return faces[pick]


def gap_runs(present: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of missing frames that is at most ``max_gap`` long and has a
    present frame on both sides (leading and trailing gaps have nothing to interpolate from)."""
    present = np.asarray(present, dtype=bool)
    missing = np.flatnonzero(np.diff(np.concatenate([[0], (~present).astype(np.int8), [0]])))
    runs = []
    for start, stop in zip(missing[::2], missing[1::2]):
        if start > 0 and stop < len(present) and stop - start <= max_gap:
            runs.append((int(start), int(stop)))
    return runs


def interpolate_run(before: np.ndarray, after: np.ndarray, length: int) -> np.ndarray:
    """Linear interpolation of ``length`` arrays strictly between ``before`` and ``after``."""
    weights = (np.arange(1, length + 1) / (length + 1)).reshape(-1, *([1] * before.ndim))
    return (1 - weights) * before[None] + weights * after[None]

"""Per-frame face and hand landmarks from mediapipe's bundled models (no download at run time).

Face: the 478-point face mesh with irises (``refine_landmarks=True``); points 468-477 are the irises.
Hands: the 21-point hand model, used to keep a hand in front of the face out of the face mask.
Coordinates are returned in pixels of the frame; the mesh's ``z`` is scaled like ``x`` (by the width).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from functools import lru_cache
from typing import TextIO

import numpy as np

# The landmark counts live with the store's layout, which must not import this package (it is imported here).
from nice_core.store import N_HAND_LANDMARKS, N_LANDMARKS  # noqa: F401  (re-exported)

# Landmark indices in mediapipe's face-mesh topology. "Right"/"left" are the subject's.
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)
RIGHT_IRIS_CENTER = 468
LEFT_IRIS_CENTER = 473
MOUTH_CORNERS = (61, 291)
NOSE_TIP = 1
CHIN = 152


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[TextIO]:
    """Silence the C++ log lines mediapipe writes to file descriptor 2 (graph start-up notes, not errors).

    They can come from mediapipe's own threads at any time while a model runs, so the whole detection pass
    runs inside this context. It yields a text stream on the real stderr for progress bars.
    """
    os.environ.setdefault("GLOG_minloglevel", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    console = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        os.dup2(devnull, 2)
        yield console
    finally:
        console.flush()
        os.dup2(saved, 2)
        for fd in (saved, devnull):
            os.close(fd)
        console.close()


@lru_cache(maxsize=1)
def face_oval_indices() -> tuple[int, ...]:
    """The face-oval landmark indices as one closed polygon, in order around the face."""
    from nice_core.face.connections import face_mesh_connections

    edges = list(face_mesh_connections().FACEMESH_FACE_OVAL)
    following = dict(edges)
    start = edges[0][0]
    order = [start]
    while (nxt := following[order[-1]]) != start:
        order.append(nxt)
    return tuple(order)


class FaceMeshDetector:
    """Wraps ``mediapipe.solutions.face_mesh.FaceMesh`` in video (tracking) mode.

    Args:
        max_faces: most faces reported per frame.
        min_detection_confidence, min_tracking_confidence: mediapipe's thresholds in ``[0, 1]``.
        static_image_mode: detect afresh on every frame (for unrelated still images).
    """

    def __init__(self, max_faces: int = 4, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, static_image_mode: bool = False) -> None:
        for name, value in (("min_detection_confidence", min_detection_confidence),
                            ("min_tracking_confidence", min_tracking_confidence)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        with native_stderr_silenced():
            import mediapipe as mp

            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=static_image_mode, max_num_faces=max_faces, refine_landmarks=True,
                min_detection_confidence=min_detection_confidence,
                min_tracking_confidence=min_tracking_confidence)
            # The graph opens its models on its own threads, which log after the constructor returns; one
            # frame through it waits for them, so their notes fall inside the silenced stretch.
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))

    def detect(self, frame: np.ndarray) -> list[np.ndarray]:
        """Faces in an ``(H, W, 3)`` ``uint8`` RGB frame, each a ``(478, 3)`` ``float32`` pixel array."""
        height, width = frame.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(frame))
        faces = []
        for face in result.multi_face_landmarks or []:
            points = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)
            points *= np.array([width, height, width], dtype=np.float32)
            faces.append(points)
        return faces

    def close(self) -> None:
        self._mesh.close()


class HandDetector:
    """Wraps ``mediapipe.solutions.hands.Hands`` (light model) in video mode."""

    def __init__(self, max_hands: int = 2, min_detection_confidence: float = 0.5) -> None:
        with native_stderr_silenced():
            import mediapipe as mp

            self._hands = mp.solutions.hands.Hands(
                static_image_mode=False, max_num_hands=max_hands, model_complexity=0,
                min_detection_confidence=min_detection_confidence)
            self._hands.process(np.zeros((64, 64, 3), np.uint8))  # see FaceMeshDetector

    def detect(self, frame: np.ndarray) -> list[np.ndarray]:
        """Hands in an RGB frame, each a ``(21, 2)`` ``float32`` array of pixel coordinates."""
        height, width = frame.shape[:2]
        result = self._hands.process(np.ascontiguousarray(frame))
        return [np.array([(p.x * width, p.y * height) for p in hand.landmark], dtype=np.float32)
                for hand in result.multi_hand_landmarks or []]

    def close(self) -> None:
        self._hands.close()

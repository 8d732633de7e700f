"""The identity input of the 3D prior stage: its most frontal faces, cropped like the target's.

An identity is a still or a clip of the person swapped in (FF++ gives the source video). Its faces are
found with the swapper's own loader (:func:`~nice_core.proxy.swap.load_identity`: the most frontal frames of
up to 64 spread over a clip), then aligned and cropped exactly as the tracker crops the target, so both
unwrap onto the same UV layout at the same resolution.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nice_core.errors import InputError

__all__ = ["identity_crops"]


def identity_crops(path: str | Path, crop_size: int, count: int, min_face: int, crop_scale: float = 1.0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``count`` aligned crops of the identity's most frontal faces.

    Args:
        path: the identity image or clip.
        crop_size: the target's crop side.
        count: how many faces to keep.
        min_face: the smallest face (the landmarks' bounding-box width, in the identity's pixels) whose
            detail is worth measuring.
        crop_scale: the tracker's ``face.crop_scale``.

    Returns:
        ``(crops (K, S, S, 3) uint8, vertices (K, 468, 3) float32 in crop pixels, ranks (K,))``; ranks
        number the faces from the most frontal.

    Raises:
        InputError: unreadable, or every face smaller than ``min_face``. NoFaceError: no face at all.
    """
    from nice_core.face.alignment import alignment_params, crop_matrix, warp_crop
    from nice_core.face.subject import face_box
    from nice_core.prior3d.uv import crop_vertices
    from nice_core.proxy.swap import load_identity

    faces = load_identity(path, count)
    boxes = [face_box(f.landmarks) for f in faces]
    widths = [float(box[2] - box[0]) for box in boxes]
    kept = [f for f, w in zip(faces, widths) if w >= min_face]
    if not kept:
        raise InputError(f"the identity {path} is too small: its face is {max(widths):.0f} px wide, the 3D prior "
                         f"needs at least {min_face} px (prior3d.min_identity_face)")
    crops, vertices = [], []
    for face in kept:
        matrix = crop_matrix(alignment_params(face.landmarks, crop_scale), crop_size)
        crops.append(warp_crop(face.image, matrix, crop_size))
        vertices.append(crop_vertices(face.landmarks, matrix))
    return np.stack(crops), np.stack(vertices), np.arange(len(kept))

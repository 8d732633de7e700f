"""Paste a processed crop back into its full frame through the inverse crop transform.

Pixels where the warped mask is exactly zero are copied from the frame untouched (bit-identical);
only pixels inside the mask's support are blended.

Two modes:

* replace (default): the processed crop itself is warped back and blended in. Its detail is limited to the
  crop's resolution: where the face is larger in the frame than the crop, the finest detail is lost.
* residual (``original_crop`` given): only the *change* the crop received (processed minus original) is
  warped back and added to the frame. Detail finer than the crop's resolution survives, and an unchanged
  crop gives back the frame exactly.
"""

from __future__ import annotations

import numpy as np

from nice_core.face.alignment import invert_affine


def paste_back(frame: np.ndarray, crop: np.ndarray, mask: np.ndarray, matrix: np.ndarray,
               original_crop: np.ndarray | None = None) -> np.ndarray:
    """Blend ``crop`` into ``frame`` where ``mask`` is positive.

    Args:
        frame: ``(H, W, 3)`` ``uint8`` RGB full frame (not modified).
        crop: ``(S, S, 3)`` ``uint8`` RGB crop, aligned with ``matrix``.
        mask: ``(S, S)`` float mask in ``[0, 1]`` (or ``uint8`` in ``[0, 255]``).
        matrix: ``(2, 3)`` frame -> crop affine matrix.
        original_crop: ``(S, S, 3)`` ``uint8`` crop the processing started from; given, the residual
            ``crop - original_crop`` is pasted instead of the crop (see the module notes).

    Returns:
        A new ``(H, W, 3)`` ``uint8`` frame.
    """
    import cv2

    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    size = crop.shape[0]
    if crop.shape != (size, size, 3) or mask.shape != (size, size):
        raise ValueError(f"crop {crop.shape} and mask {mask.shape} must be (S, S, 3) and (S, S)")
    if original_crop is not None and original_crop.shape != crop.shape:
        raise ValueError(f"original_crop {original_crop.shape} must match crop {crop.shape}")
    alpha = mask.astype(np.float32) / (255.0 if mask.dtype == np.uint8 else 1.0)
    height, width = frame.shape[:2]
    inverse = invert_affine(np.asarray(matrix, dtype=np.float64))
    # Warp only the region the crop can reach, not the whole frame.
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], dtype=np.float64)
    reach = corners @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = np.maximum(np.floor(reach.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(reach.max(axis=0)).astype(int) + 2, [width, height])
    out = frame.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    shifted = inverse.copy()
    shifted[:, 2] -= (x0, y0)
    box = (int(x1 - x0), int(y1 - y0))
    weight = cv2.warpAffine(alpha, shifted, box, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0.0)
    weight = np.clip(weight, 0.0, 1.0)[..., None]
    region = out[y0:y1, x0:x1]
    if original_crop is None:
        warped = cv2.warpAffine(crop, shifted, box, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        blended = np.round(region * (1.0 - weight) + warped * weight)
    else:
        change = crop.astype(np.float32) - original_crop.astype(np.float32)
        warped = cv2.warpAffine(change, shifted, box, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        blended = np.round(region + warped * weight)
    blended = np.clip(blended, 0, 255).astype(np.uint8)
    inside = weight[..., 0] > 0
    region[inside] = blended[inside]
    return out

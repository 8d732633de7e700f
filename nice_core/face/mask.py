"""Soft face masks in crop coordinates: the face oval, feathered, minus any hand in front of the face."""

from __future__ import annotations

import numpy as np

from nice_core.face.landmarks import face_oval_indices

# Hand landmarks that outline the palm (wrist and finger bases) and the finger chains, mediapipe order.
_FINGERS = ((0, 1, 2, 3, 4), (0, 5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (0, 17, 18, 19, 20))
_PALM = (0, 1, 5, 9, 13, 17)


def _blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma) if sigma > 0 else mask


def polygon_mask(polygon: np.ndarray, shape: tuple[int, int], radius: float) -> np.ndarray:
    """Feathered mask of a polygon.

    Args:
        polygon: ``(K, 2)`` vertices in pixels.
        shape: ``(height, width)`` of the mask.
        radius: width of the soft edge in pixels. The polygon is shrunk by that much before blurring, so
            the mask reaches zero at the polygon's edge and never bleeds past it.

    Returns:
        ``(height, width)`` ``float32`` in ``[0, 1]``.
    """
    import cv2

    mask = np.zeros(shape, dtype=np.float32)
    cv2.fillPoly(mask, [np.round(np.asarray(polygon) * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    if radius > 0:
        k = 2 * int(np.ceil(radius)) + 1
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        mask = _blur(mask, radius / 3)  # 3 sigma = radius: the blur ends where the erosion began
    return np.clip(mask, 0.0, 1.0)


def face_oval_mask(crop_landmarks: np.ndarray, size: int, feather: float) -> np.ndarray:
    """Feathered face-oval mask of a square crop.

    Args:
        crop_landmarks: ``(478, 2+)`` landmarks in crop pixels.
        size: crop side in pixels.
        feather: width of the soft edge as a fraction of ``size`` (see :func:`polygon_mask`).

    Returns:
        ``(size, size)`` ``float32`` in ``[0, 1]``.
    """
    polygon = np.asarray(crop_landmarks)[list(face_oval_indices()), :2]
    return polygon_mask(polygon, (size, size), max(0.0, feather * size))


def hand_mask(hands: list[np.ndarray], shape: tuple[int, int], radius: float) -> np.ndarray:
    """Soft mask of hands, from ``(21, 2)`` hand landmarks in pixels; ``shape`` ``(H, W)``, in ``[0, 1]``.

    The palm is filled and each finger drawn as a thick stroke whose width follows the palm's size.
    It is dilated by ``radius`` pixels so a face mask's soft edge stays off the fingers.
    """
    import cv2

    mask = np.zeros(shape, dtype=np.float32)
    for hand in hands:
        hand = np.asarray(hand, dtype=np.float64)
        palm = hand[list(_PALM)]
        width = max(2, int(round(0.35 * np.linalg.norm(hand[5] - hand[17]))))
        cv2.fillPoly(mask, [np.round(cv2.convexHull(palm.astype(np.float32))[:, 0]).astype(np.int32)], 1.0)
        for chain in _FINGERS:
            cv2.polylines(mask, [np.round(hand[list(chain)]).astype(np.int32)], False, 1.0,
                          thickness=width, lineType=cv2.LINE_AA)
    if radius > 0 and mask.any():
        k = 2 * int(np.ceil(radius)) + 1
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        mask = _blur(mask, radius / 3)  # 3 sigma = radius: the soft edge ends where the dilation began
    return np.clip(mask, 0.0, 1.0)


def face_mask(crop_landmarks: np.ndarray, crop_hands: list[np.ndarray], size: int,
              feather: float) -> np.ndarray:
    """Face-oval mask with hands removed, ``(size, size)`` ``float32`` in ``[0, 1]``."""
    mask = face_oval_mask(crop_landmarks, size, feather)
    if crop_hands:
        mask *= 1.0 - hand_mask(crop_hands, (size, size), feather * size)
    return mask

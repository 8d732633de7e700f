"""Registering each proxy crop to its target crop: undo the swap's per-frame pixel misalignment.

Why: per-frame swappers paste their face where that frame's landmarks put it, and landmarks jitter by a
pixel or two, so the proxy's face moves against the target's from frame to frame. The carrier averages
what it is shown over the clip; averaging a face that jitters by 1.5 px blurs exactly the fine detail a
swap brings (spots, lines, brow hair), and its fit then learns a blurred identity.

How: the translation of the proxy crop against the target crop is found by phase correlation
(``cv2.phaseCorrelate``) of their high-passed grey images (minus a Gaussian blur, sigma 3 px), windowed by
the feathered face mask, so only the face's structure (eyes, nose, mouth, outline) decides. The swap
changes identity, not position: the shared structure dominates, and a symmetric change (eyes further
apart) has no net shift. The face region of the proxy crop is shifted back (sub-pixel, ``INTER_CUBIC``);
outside the grown face mask the crop is kept. A shift above ``max_shift`` px or a weak correlation peak
(response below :data:`MIN_RESPONSE`) is not trusted, and the crop is kept as it is.
"""

from __future__ import annotations

import numpy as np

from nice_core.metrics.image import grey

__all__ = ["MIN_RESPONSE", "register_proxy_crop"]

#: Phase-correlation peak below which a shift is not trusted.
MIN_RESPONSE = 0.05


def _high_pass(crop: np.ndarray) -> np.ndarray:
    import cv2

    luma = grey(crop)
    return luma - cv2.GaussianBlur(luma, (0, 0), 3.0)


def register_proxy_crop(proxy: np.ndarray, target: np.ndarray, mask: np.ndarray,
                        max_shift: float = 4.0) -> tuple[np.ndarray, tuple[float, float], float]:
    """The proxy crop with its face shifted onto the target's.

    Args:
        proxy, target: ``(S, S, 3)`` uint8 crops of the same frame.
        mask: ``(S, S)`` face mask (uint8 0-255 or float 0-1).
        max_shift: largest shift, in pixels, that is corrected.

    Returns:
        ``(registered, (dx, dy), response)``: the registered ``(S, S, 3)`` uint8 crop, the shift that was
        found (the proxy's face sits at ``+ (dx, dy)`` from the target's; ``(0, 0)`` when not trusted) and the
        correlation peak.
    """
    import cv2

    weight = mask.astype(np.float32) / (255.0 if mask.dtype == np.uint8 else 1.0)
    if weight.sum() < 16:
        return proxy, (0.0, 0.0), 0.0
    size = proxy.shape[0]
    window = cv2.GaussianBlur(weight, (0, 0), 0.02 * size)
    (dx, dy), response = cv2.phaseCorrelate(_high_pass(target) * window, _high_pass(proxy) * window)
    if response < MIN_RESPONSE or np.hypot(dx, dy) > max_shift or (abs(dx) < 0.05 and abs(dy) < 0.05):
        return proxy, (0.0, 0.0), float(response)
    back = cv2.warpAffine(proxy, np.array([[1, 0, -dx], [0, 1, -dy]], np.float64), (size, size),
                          flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    k = 2 * int(0.04 * size) + 1
    region = cv2.dilate(weight, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    region = cv2.GaussianBlur(region, (0, 0), 0.01 * size)[..., None]
    out = np.round(back.astype(np.float32) * region + proxy.astype(np.float32) * (1 - region))
    return out.astype(np.uint8), (float(dx), float(dy)), float(response)

"""A visible "SYNTHETIC" label for published videos and images (``--visible-label``)."""

from __future__ import annotations

import numpy as np

VISIBLE_TEXT = "SYNTHETIC - AI face edit"


def draw_visible_label(frame: np.ndarray, text: str = VISIBLE_TEXT) -> np.ndarray:
    """A copy of an RGB frame with ``text`` in a dark box in the bottom-left corner, sized to the frame."""
    import cv2

    out = frame.copy()
    height, width = out.shape[:2]
    scale = max(0.35, min(width, height) / 720)
    thickness = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    margin = int(8 * scale) + 2
    x0, y1 = margin, height - margin
    y0 = y1 - th - base - 2 * margin // 2
    box = out[max(y0, 0):y1, x0:min(x0 + tw + margin, width)]
    box[:] = (box * 0.35).astype(np.uint8)
    cv2.putText(out, text, (x0 + margin // 2, y1 - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                thickness, cv2.LINE_AA)
    return out

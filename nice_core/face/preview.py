"""Drawing for the tracking preview video: landmarks, the crop box, hands."""

from __future__ import annotations

import numpy as np

from nice_core.face.alignment import crop_corners


def draw_preview(frame: np.ndarray, landmarks: np.ndarray | None, params: np.ndarray | None,
                 hands: list[np.ndarray], detected: bool) -> np.ndarray:
    """A copy of an RGB frame with the subject's landmarks (green; yellow when gap-filled), the crop box
    (red) and any hands (blue) drawn on it."""
    import cv2

    out = frame.copy()
    if landmarks is None or params is None:
        cv2.putText(out, "no face", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 64, 64), 2, cv2.LINE_AA)
        return out
    colour = (0, 255, 0) if detected else (255, 220, 0)
    for x, y in np.round(landmarks[:, :2]).astype(int):
        cv2.circle(out, (int(x), int(y)), 1, colour, -1)
    corners = np.round(crop_corners(params)).astype(np.int32)
    cv2.polylines(out, [corners], True, (255, 0, 0), 2, cv2.LINE_AA)
    cv2.circle(out, tuple(int(v) for v in corners[0]), 4, (255, 0, 0), -1)  # marks the crop's top-left
    for hand in hands:
        for x, y in np.round(hand).astype(int):
            cv2.circle(out, (int(x), int(y)), 3, (0, 128, 255), -1)
    return out

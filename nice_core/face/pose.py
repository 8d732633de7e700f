"""Head pose (yaw, pitch, roll in degrees) from face-mesh landmarks with OpenCV's solvePnP.

The 3D model is a generic six-point face (nose tip, chin, outer eye corners, mouth corners) in camera
axes: x right, y down, z away from the camera, so a frontal, upright face has zero rotation. The camera
is a pinhole with focal length = the larger image side and its principal point at the image centre.
Angles: yaw about the vertical axis, pitch about the horizontal axis, roll in the image plane.
"""

from __future__ import annotations

import numpy as np

from nice_core.face.landmarks import CHIN, MOUTH_CORNERS, NOSE_TIP

# Generic face points (arbitrary units, about 0.4 mm) for the landmarks listed in _POSE_LANDMARKS.
_MODEL_POINTS = np.array([
    (0.0, 0.0, 0.0),          # nose tip
    (0.0, 330.0, 65.0),       # chin
    (-225.0, -170.0, 135.0),  # outer corner of the eye on the image's left (subject's right)
    (225.0, -170.0, 135.0),   # outer corner of the eye on the image's right
    (-150.0, 150.0, 125.0),   # mouth corner, image left
    (150.0, 150.0, 125.0),    # mouth corner, image right
], dtype=np.float64)
_POSE_LANDMARKS = (NOSE_TIP, CHIN, 33, 263, MOUTH_CORNERS[0], MOUTH_CORNERS[1])


def rotation_to_euler(rotation: np.ndarray) -> np.ndarray:
    """``(yaw, pitch, roll)`` in degrees from a ``(3, 3)`` rotation matrix (R = Rz(roll) Ry(yaw) Rx(pitch))."""
    yaw = np.arcsin(np.clip(-rotation[2, 0], -1.0, 1.0))
    pitch = np.arctan2(rotation[2, 1], rotation[2, 2])
    roll = np.arctan2(rotation[1, 0], rotation[0, 0])
    return np.degrees([yaw, pitch, roll])


def head_pose(landmarks: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Head pose of one face.

    Args:
        landmarks: ``(478, 2+)`` pixel coordinates.
        frame_size: ``(height, width)`` of the frame.

    Returns:
        ``(3,)`` ``float32``: yaw, pitch, roll in degrees; NaN if solvePnP fails.
    """
    import cv2

    height, width = frame_size
    focal = float(max(height, width))
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float64)
    image_points = np.asarray(landmarks, dtype=np.float64)[list(_POSE_LANDMARKS), :2]
    # Start from a frontal face in front of the camera at the distance its size implies; without a guess
    # the solver sometimes lands on the mirrored solution (roll near 180 degrees).
    eye_span = float(np.linalg.norm(image_points[3] - image_points[2])) or 1.0
    rvec0 = np.zeros((3, 1))
    tvec0 = np.array([[0.0], [0.0], [focal * 450.0 / eye_span]])
    ok, rvec, _ = cv2.solvePnP(_MODEL_POINTS, image_points, camera, None, rvec0, tvec0,
                               useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return np.full(3, np.nan, dtype=np.float32)
    rotation, _ = cv2.Rodrigues(rvec)
    return rotation_to_euler(rotation).astype(np.float32)

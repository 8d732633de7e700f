"""Attribute differences between a video and its target, per frame: gaze, head pose, landmark NME.

* **Gaze** (degrees): eye-in-head gaze from the irises. Per eye, the iris centre's offset from the midpoint
  of the eye corners, along the face's horizontal and vertical axes, divided by an eyeball radius of 0.4 x
  the eye's width, gives ``sin`` of the horizontal and vertical gaze angles; the unit gaze vectors of both
  eyes are averaged. The error is the angle between the target's and the video's gaze vectors.
* **Head pose** (degrees): yaw, pitch and roll from :func:`nice_core.face.pose.head_pose`; the error is the
  mean absolute difference over the three angles.
* **2D landmark NME**: mean distance between corresponding face-mesh landmarks (478, irises included),
  divided by the target's inter-ocular distance (outer eye corners 33 and 263).
* **3D landmark NME**: the same on the mesh's (x, y, z) coordinates (z in the mesh's own scale, like x),
  divided by the 3D inter-ocular distance.
"""

from __future__ import annotations

import numpy as np

from nice_core.face.landmarks import LEFT_EYE_CORNERS, LEFT_IRIS_CENTER, RIGHT_EYE_CORNERS, RIGHT_IRIS_CENTER
from nice_core.face.pose import head_pose

EYEBALL_RADIUS_PER_EYE_WIDTH = 0.4
OUTER_EYE_CORNERS = (33, 263)


def gaze_vector(landmarks: np.ndarray) -> np.ndarray:
    """Unit eye-in-head gaze vector ``(3,)`` from ``(478, 2+)`` landmarks (x right, y down, z into the face)."""
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    across = pts[LEFT_EYE_CORNERS[1]] - pts[RIGHT_EYE_CORNERS[0]]
    across /= np.linalg.norm(across) + 1e-9
    down = np.array([-across[1], across[0]])
    vectors = []
    for corners, iris in ((RIGHT_EYE_CORNERS, RIGHT_IRIS_CENTER), (LEFT_EYE_CORNERS, LEFT_IRIS_CENTER)):
        a, b = pts[corners[0]], pts[corners[1]]
        radius = EYEBALL_RADIUS_PER_EYE_WIDTH * np.linalg.norm(b - a) + 1e-9
        offset = pts[iris] - (a + b) / 2
        sx = np.clip(offset @ across / radius, -0.99, 0.99)
        sy = np.clip(offset @ down / radius, -0.99, 0.99)
        vectors.append(np.array([sx, sy, np.sqrt(max(1e-9, 1 - sx**2 - sy**2))]))
    mean = np.mean(vectors, axis=0)
    return mean / np.linalg.norm(mean)


def gaze_error_deg(target: np.ndarray, video: np.ndarray) -> float:
    cos = float(np.clip(gaze_vector(target) @ gaze_vector(video), -1.0, 1.0))
    return float(np.degrees(np.arccos(cos)))


def pose_error_deg(target: np.ndarray, video: np.ndarray, frame_size: tuple[int, int]) -> float:
    return float(np.mean(np.abs(head_pose(target, frame_size) - head_pose(video, frame_size))))


def landmark_nme(target: np.ndarray, video: np.ndarray, dims: int = 2) -> float:
    """Normalised mean error over all landmarks in ``dims`` (2 or 3) dimensions."""
    t = np.asarray(target, dtype=np.float64)[:, :dims]
    v = np.asarray(video, dtype=np.float64)[:, :dims]
    interocular = np.linalg.norm(t[OUTER_EYE_CORNERS[0]] - t[OUTER_EYE_CORNERS[1]]) + 1e-9
    return float(np.linalg.norm(t - v, axis=1).mean() / interocular)

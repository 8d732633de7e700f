"""Similarity alignment of a face to a square crop, and its temporal smoothing.

A face's alignment is four numbers per frame, ``(cx, cy, log_half_size, angle)``: the crop's centre in
frame pixels, the log of half its side, and its in-plane rotation in radians. They follow the FFHQ
recipe (eye-corner and mouth-corner midpoints), which frames the whole face with some hair and neck and
does not move with gaze, because it uses eye *corners*, not irises.

Smoothing is a zero-phase Gaussian over time on those four numbers, with sigma given in seconds so it
does not depend on the frame rate. Why this filter: the pipeline is offline, so the smoother may look
ahead and need not lag like a causal filter (One-Euro, Kalman) would; a Gaussian has no overshoot or
ringing (a Savitzky-Golay or sharp low-pass can swing past a fast head turn); and it has one parameter.
``bench/crop_jitter.py`` measures the jitter it removes and the lag it costs.
"""

from __future__ import annotations

import numpy as np

from nice_core.face.landmarks import LEFT_EYE_CORNERS, MOUTH_CORNERS, RIGHT_EYE_CORNERS


def alignment_params(landmarks: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """FFHQ-style crop parameters from face-mesh landmarks.

    Args:
        landmarks: ``(478, 2+)`` pixel coordinates.
        scale: multiplies the crop side (1.0 = FFHQ framing).

    Returns:
        ``(4,)`` ``float64``: ``cx, cy, log(half side), angle`` (radians, image x-axis to eye line).
    """
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    eye_right = pts[list(RIGHT_EYE_CORNERS)].mean(axis=0)
    eye_left = pts[list(LEFT_EYE_CORNERS)].mean(axis=0)
    mouth = pts[list(MOUTH_CORNERS)].mean(axis=0)
    eye_avg = (eye_right + eye_left) / 2
    eye_to_eye = eye_left - eye_right
    eye_to_mouth = mouth - eye_avg
    x_axis = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x_axis /= np.hypot(*x_axis)
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8) * scale
    center = eye_avg + eye_to_mouth * 0.1
    return np.array([center[0], center[1], np.log(half), np.arctan2(x_axis[1], x_axis[0])])


def crop_matrix(params: np.ndarray, size: int) -> np.ndarray:
    """The ``(2, 3)`` affine mapping frame pixels to a ``size x size`` crop for one set of params."""
    cx, cy, log_half, angle = (float(v) for v in params)
    k = size / (2.0 * np.exp(log_half))
    cos, sin = np.cos(angle) * k, np.sin(angle) * k
    # p_crop = k * R(-angle) @ (p - c) + size / 2
    return np.array([[cos, sin, size / 2 - cos * cx - sin * cy],
                     [-sin, cos, size / 2 + sin * cx - cos * cy]], dtype=np.float64)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a ``(2, 3)`` affine matrix."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``(N, 2)`` points through a ``(2, 3)`` affine matrix."""
    points = np.asarray(points, dtype=np.float64)[:, :2]
    return points @ matrix[:, :2].T + matrix[:, 2]


def crop_corners(params: np.ndarray) -> np.ndarray:
    """The crop square's four corners in frame pixels, ``(4, 2)``, clockwise from top-left."""
    matrix = invert_affine(crop_matrix(params, 1))
    return apply_affine(matrix, np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64))


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised Gaussian taps of ``sigma`` (frames), radius ``ceil(3 sigma)`` (at least 1)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return taps / taps.sum()


def valid_runs(valid: np.ndarray, shots: np.ndarray | None = None) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of ``valid`` frames that stays within one shot (``shots``: each frame's
    shot number, :func:`nice_core.face.shots.shot_ids`; ``None``: one shot)."""
    valid = np.asarray(valid, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
    runs = []
    for start, stop in zip(edges[::2], edges[1::2]):
        cuts = [] if shots is None else (np.flatnonzero(np.diff(np.asarray(shots)[start:stop])) + start + 1).tolist()
        bounds = [int(start), *cuts, int(stop)]
        runs += list(zip(bounds[:-1], bounds[1:]))
    return runs


def smooth_params(params: np.ndarray, valid: np.ndarray, sigma_frames: float,
                  shots: np.ndarray | None = None) -> np.ndarray:
    """Zero-phase Gaussian smoothing of ``(N, 4)`` alignment params over each run of valid frames.

    Runs are smoothed separately (a face that disappears and comes back elsewhere must not be averaged
    across the gap), and so are the shots a run spans (``shots``, each frame's shot number: never across a
    cut). Ends are padded by repeating the edge value, so a run's first and last crops are not pulled toward
    zero. Angles are unwrapped first. Invalid rows are returned unchanged.
    """
    params = np.asarray(params, dtype=np.float64)
    out = params.copy()
    if sigma_frames <= 0:
        return out
    kernel = gaussian_kernel(sigma_frames)
    radius = len(kernel) // 2
    for start, stop in valid_runs(valid, shots):
        run = params[start:stop].copy()
        run[:, 3] = np.unwrap(run[:, 3])
        padded = np.pad(run, ((radius, radius), (0, 0)), mode="edge")
        for column in range(run.shape[1]):
            out[start:stop, column] = np.convolve(padded[:, column], kernel, mode="valid")
    return out


def smooth_series(values: np.ndarray, valid: np.ndarray, sigma: float, shots: np.ndarray | None = None) -> np.ndarray:
    """Zero-phase Gaussian smoothing of ``(N, K)`` values over time, each run of ``valid`` frames apart,
    and each shot of a run apart (``shots``, as :func:`smooth_params`).

    Ends are padded with the edge value; invalid rows are returned unchanged. ``sigma`` in frames.
    """
    out = np.asarray(values, dtype=np.float64).copy()
    if sigma <= 0:
        return out
    kernel = gaussian_kernel(sigma)
    radius = len(kernel) // 2
    for start, stop in valid_runs(valid, shots):
        padded = np.pad(out[start:stop], ((radius, radius), (0, 0)), mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, len(kernel), axis=0)
        out[start:stop] = windows @ kernel
    return out


def warp_crop(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """A frame's ``(size, size, 3)`` crop through a ``(2, 3)`` frame -> crop matrix, as the tracker makes it
    (bicubic, edge pixels repeated), so a proxy frame's crop lines up with the target's."""
    import cv2

    return cv2.warpAffine(frame, np.asarray(matrix, np.float64), (size, size), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE)

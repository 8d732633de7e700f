import numpy as np
import pytest

from nice_core.face.alignment import (
    alignment_params,
    apply_affine,
    crop_corners,
    crop_matrix,
    invert_affine,
    smooth_params,
)
from nice_core.face.landmarks import LEFT_EYE_CORNERS, MOUTH_CORNERS, RIGHT_EYE_CORNERS


def synthetic_landmarks(center=(300.0, 200.0), eye_span=60.0, angle=0.0) -> np.ndarray:
    """Landmarks with only the points alignment uses placed: eyes level, mouth below, then rotated."""
    pts = np.zeros((478, 3), np.float32)
    local = {}
    for i in RIGHT_EYE_CORNERS:
        local[i] = (-eye_span / 2, 0.0)
    for i in LEFT_EYE_CORNERS:
        local[i] = (eye_span / 2, 0.0)
    local[MOUTH_CORNERS[0]], local[MOUTH_CORNERS[1]] = (-20.0, 70.0), (20.0, 70.0)
    c, s = np.cos(angle), np.sin(angle)
    for i, (x, y) in local.items():
        pts[i, :2] = (center[0] + c * x - s * y, center[1] + s * x + c * y)
    return pts


def test_params_follow_position_size_and_rotation():
    base = alignment_params(synthetic_landmarks())
    moved = alignment_params(synthetic_landmarks(center=(340.0, 180.0)))
    assert moved[:2] - base[:2] == pytest.approx([40.0, -20.0], abs=1e-6)
    bigger = alignment_params(synthetic_landmarks(eye_span=120.0))
    assert np.exp(bigger[2]) > np.exp(base[2]) * 1.5
    turned = alignment_params(synthetic_landmarks(angle=0.3))
    assert turned[3] - base[3] == pytest.approx(0.3, abs=1e-6)
    assert alignment_params(synthetic_landmarks(), scale=1.5)[2] == pytest.approx(base[2] + np.log(1.5))


def test_crop_matrix_maps_the_square_to_the_crop():
    params = np.array([320.0, 180.0, np.log(100.0), 0.4])
    matrix = crop_matrix(params, 256)
    assert apply_affine(matrix, np.array([[320.0, 180.0]]))[0] == pytest.approx([128.0, 128.0])
    corners = apply_affine(matrix, crop_corners(params))
    assert corners == pytest.approx(np.array([[0, 0], [256, 0], [256, 256], [0, 256]]), abs=1e-6)
    back = apply_affine(invert_affine(matrix), apply_affine(matrix, np.array([[10.0, 20.0]])))
    assert back[0] == pytest.approx([10.0, 20.0])


def test_smoothing_removes_jitter_and_keeps_steady_motion():
    rng = np.random.default_rng(0)
    n = 200
    truth = np.stack([np.linspace(100, 300, n), np.full(n, 200.0), np.full(n, np.log(80.0)), np.zeros(n)], 1)
    noisy = truth + rng.normal(0, [2.0, 2.0, 0.01, 0.01], size=(n, 4))
    smooth = smooth_params(noisy, np.ones(n, bool), sigma_frames=3.0)
    jitter = lambda p: np.sqrt(np.mean(np.diff(p[:, 0], 2) ** 2))  # noqa: E731
    assert jitter(smooth) < jitter(noisy) / 5
    # Zero phase: no lag on a ramp away from the ends.
    assert np.abs(smooth[20:-20, 0] - truth[20:-20, 0]).mean() < 0.6
    # Edge padding: the ends are not pulled toward zero.
    assert abs(smooth[0, 0] - truth[0, 0]) < 3


def test_smoothing_keeps_runs_apart_and_unwraps_angles():
    params = np.zeros((30, 4))
    params[:10, 0], params[20:, 0] = 0.0, 100.0
    params[:10, 3] = np.where(np.arange(10) % 2, np.pi - 0.01, -np.pi + 0.01)  # jitter across +-pi
    valid = np.zeros(30, bool)
    valid[:10] = valid[20:] = True
    params[10:20] = np.nan
    out = smooth_params(params, valid, sigma_frames=2.0)
    # Each run keeps its own level (to rounding: the kernel's weights sum to 1 only in floating point).
    np.testing.assert_allclose(out[:10, 0], 0.0, atol=1e-9)
    np.testing.assert_allclose(out[20:, 0], 100.0, atol=1e-9)
    assert np.all(np.isnan(out[10:20]))
    assert np.all(np.abs(np.cos(out[:10, 3]) + 1) < 1e-3)  # stays near +-pi, never averages to 0

"""The fine-detail transfer score, the face regions and the crop-sequence measures (pure functions, synthetic
images)."""

import numpy as np
import pytest

from nice_core.metrics.image import face_regions, fine_detail_transfer, fine_structure, fine_transfer_terms


def _images(seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:96]
    target = np.clip(120 + 30 * np.sin(xx / 17.0) + rng.normal(0, 3, (96, 96)), 0, 255)
    spots = np.zeros((96, 96))
    for x, y in rng.uniform(15, 80, (12, 2)):
        spots += 60 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 4.0)
    clean = np.clip(target - spots, 0, 255)
    rgb = lambda a: np.repeat(np.round(a)[..., None], 3, 2).astype(np.uint8)  # noqa: E731
    return rgb(target), rgb(clean), np.ones((96, 96), bool)


def _score(output, clean, target, mask):
    return fine_detail_transfer([fine_transfer_terms(output, clean, target, mask)])


def test_all_none_and_half_of_the_change():
    target, clean, mask = _images()
    assert _score(clean, clean, target, mask) == pytest.approx(1.0)
    assert _score(target, clean, target, mask) == pytest.approx(0.0, abs=1e-9)
    half = np.round((target.astype(float) + clean) / 2).astype(np.uint8)
    assert _score(half, clean, target, mask) == pytest.approx(0.5, abs=0.03)


def test_blur_and_misplacement_lose_detail_but_a_smooth_tone_change_does_not_count():
    import cv2

    target, clean, mask = _images()
    blurred = cv2.GaussianBlur(clean, (0, 0), 2.0)
    shifted = np.roll(clean, 2, axis=1)
    assert _score(blurred, clean, target, mask) < 0.5
    assert _score(shifted, clean, target, mask) < 0.6
    toned = np.clip(target.astype(int) + 20, 0, 255).astype(np.uint8)  # global change: no fine structure
    assert abs(_score(toned, clean, target, mask)) < 0.02


def test_pooling_over_frames_and_no_change():
    target, clean, mask = _images()
    terms = [fine_transfer_terms(clean, clean, target, mask), fine_transfer_terms(target, clean, target, mask)]
    assert fine_detail_transfer(terms) == pytest.approx(0.5)
    assert fine_detail_transfer([fine_transfer_terms(target, target, target, mask)]) is None
    assert fine_transfer_terms(clean, clean, target, np.zeros_like(mask)) is None
    assert fine_structure(np.full((20, 20), 7.0)) == pytest.approx(np.zeros((20, 20)), abs=1e-4)


def test_face_regions_partition_the_grown_oval():
    from nice_core.face.landmarks import face_oval_indices

    landmarks = np.zeros((478, 3))
    oval = list(face_oval_indices())
    angle = np.linspace(0, 2 * np.pi, len(oval), endpoint=False)
    landmarks[oval, 0] = 100 + 40 * np.cos(angle)
    landmarks[oval, 1] = 100 + 50 * np.sin(angle)
    regions = face_regions(landmarks, (200, 200))
    assert not (regions["inner"] & regions["ring"]).any()
    assert ((regions["inner"] | regions["ring"]) == regions["face"]).all()
    assert regions["face"][100, 100 + 42] and regions["ring"][100, 100 + 42]  # just past the oval: in the ring
    assert regions["inner"][100, 100] and not regions["face"][100, 150]


def test_crop_sequence_measures_are_the_per_frame_ones_pooled():
    from nice_core.metrics import crops
    from nice_core.metrics.image import detail, masked_psnr

    rng = np.random.default_rng(3)
    a = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    b = [np.clip(f.astype(int) + rng.integers(-9, 10, f.shape), 0, 255).astype(np.uint8) for f in a]
    masks = [np.zeros((32, 32), np.uint8) for _ in range(3)]
    for m in masks:
        m[4:28, 6:26] = 255
    inside = masks[0] > 127
    # One frame: exactly the per-frame measure; equal masks: the pooled MSE of all frames.
    assert crops.sequence_psnr(a[:1], b[:1], masks[:1]) == pytest.approx(masked_psnr(a[0], b[0], inside))
    assert crops.sequence_detail(a[:1], masks[:1]) == pytest.approx(detail(a[0], inside), rel=1e-5)
    mse = np.mean([((x.astype(float) - y) ** 2)[inside].mean() for x, y in zip(a, b)])
    assert crops.sequence_psnr(a, b, masks) == pytest.approx(10 * np.log10(255.0**2 / mse))
    assert crops.sequence_psnr(a, a, masks) == 100.0  # capped, as the video metrics are
    # A still sequence has no frame difference and no edit flicker; float masks in [0, 1] count the same.
    still = [a[0]] * 3
    assert crops.frame_difference(still, masks) == 0.0
    assert crops.edit_flicker(b, a, [m / 255.0 for m in masks]) > 0 == crops.edit_flicker(still, still, masks)

"""The swap region: where the proxy consistently differs from the target (pure functions, synthetic crops)."""

import numpy as np

from nice_core.carrier.region import RegionAccumulator, paste_mask


def _disc(size, radius, centre=None):
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = centre or (size / 2, size / 2)
    return ((yy - cy) ** 2 + (xx - cx) ** 2) <= radius**2


def test_a_consistent_change_past_the_face_is_in_and_a_one_frame_fault_is_not():
    size, rng = 128, np.random.default_rng(0)
    face = _disc(size, 30)
    wider = _disc(size, 36) & ~face  # a band just past the face: the swap widens the face
    accumulator = RegionAccumulator(size)
    for t in range(20):
        target = np.full((size, size, 3), 90, np.uint8) + rng.integers(0, 3, (size, size, 3), dtype=np.uint8)
        proxy = target.copy()
        proxy[face] += 25
        if t % 5:  # 80% of the frames
            proxy[wider] += 40
        if t == 7:  # a one-frame fault far outside the face
            proxy[_disc(size, 8, (110, 20))] += 80
        accumulator.add(target, proxy, (face * 255).astype(np.uint8))
    region = accumulator.region()
    assert region.dtype == np.float32 and region.shape == (size, size)
    assert region[64, 64 + 33] > 0.9 and region[64, 64] > 0.9
    assert region[110, 20] < 0.01  # the fault did not repeat
    assert region[64, 64 + 50] < 0.01  # nothing changed there


def test_paste_mask_keeps_the_face_and_keeps_hands_out():
    size = 64
    face = np.zeros((size, size), np.uint8)
    face[20:44, 20:44] = 255
    region = np.zeros((size, size), np.float32)
    region[10:54, 10:54] = 1.0
    assert np.array_equal(paste_mask(face, None, [], 2.0), face / 255.0)
    grown = paste_mask(face, region, [], 2.0)
    assert grown[12, 12] == 1.0 and grown[30, 30] == 1.0 and grown[5, 5] == 0.0
    hand = np.array([[12.0 + (k % 5), 12.0 + k // 5] for k in range(21)])
    with_hand = paste_mask(face, region, [hand], 2.0)
    assert with_hand[14, 14] < 0.1 and with_hand[30, 30] == 1.0


def test_registration_undoes_a_sub_pixel_shift_of_the_face():
    import cv2

    from nice_core.carrier.register import register_proxy_crop

    rng = np.random.default_rng(1)
    size = 128
    noise = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 2.0)
    target = np.repeat(np.clip(128 + 400 * noise, 0, 255)[..., None], 3, 2).astype(np.uint8)
    mask = (_disc(size, 40) * 255).astype(np.uint8)
    shift = (1.3, -0.7)
    moved = cv2.warpAffine(target, np.array([[1, 0, shift[0]], [0, 1, shift[1]]]), (size, size),
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    registered, found, response = register_proxy_crop(moved, target, mask)
    assert np.allclose(found, shift, atol=0.15) and response > 0.3
    inside = _disc(size, 30)
    before = np.abs(moved.astype(float) - target)[inside].mean()
    after = np.abs(registered.astype(float) - target)[inside].mean()
    assert after < 0.25 * before
    far = cv2.warpAffine(target, np.array([[1.0, 0, 9], [0, 1, 0]]), (size, size), borderMode=cv2.BORDER_REPLICATE)
    kept, found, _ = register_proxy_crop(far, target, mask, max_shift=4.0)
    assert found == (0.0, 0.0) and np.array_equal(kept, far)
    unrelated = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    assert register_proxy_crop(unrelated, target, mask)[1] == (0.0, 0.0)

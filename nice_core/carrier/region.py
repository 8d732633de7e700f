"""The swap region: where the proxy consistently differs from the target, in crop space.

Why: the tracker's face mask is the target's own feathered face oval, and it fades out *inside* that oval.
Swappers change more: a wider or narrower jaw, fuller cheeks, a forehead line, and their blend reaches past
the target's outline. Pasting only through the target's oval throws those changes away (on the evaluation
clips the outer ring of the face stayed at the target, ``docs/carrier.md``). The region where the proxy
differs from the target in most frames is the swap's own footprint; flicker and one-frame faults are not in
it, because they do not repeat.

How (:class:`RegionAccumulator`, fed while the proxy's crops are cached): per frame with a face, a crop
pixel *changed* when the grey difference of the proxy and target crops, both blurred (Gaussian, 1% of the
crop side), is above :data:`CHANGE_LEVEL` grey levels; its *share* is the fraction of frames where it
changed. The region is ``share >= 0.5`` inside the union of the clip's face masks grown by
:data:`REACH` of the crop side, feathered (Gaussian, 1.5% of the side), shape ``(S, S)`` float32 in
``[0, 1]``. :func:`paste_mask` combines it with one frame's face mask, keeping the frame's hands out.
"""

from __future__ import annotations

import numpy as np

from nice_core.metrics.image import grey

__all__ = ["CHANGE_LEVEL", "REACH", "RegionAccumulator", "crop_hands", "paste_mask", "store_paste_mask"]

#: Grey levels (of 255) above which a blurred crop pixel counts as changed by the swap.
CHANGE_LEVEL = 6.0
#: How far past the clip's face masks the region may reach, as a fraction of the crop side.
REACH = 0.06
#: Share of frames a pixel must change in to be part of the region.
SHARE = 0.5


def _grey_blur(crop: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(grey(crop), (0, 0), sigma)


class RegionAccumulator:
    """Streams ``(target crop, proxy crop, face mask)`` triples and returns the swap region."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.changed = np.zeros((size, size), np.float64)
        self.faces = np.zeros((size, size), bool)
        self.frames = 0

    def add(self, target: np.ndarray, proxy: np.ndarray, mask: np.ndarray) -> None:
        """One frame: ``(S, S, 3)`` uint8 crops and its ``(S, S)`` face mask (uint8 or float)."""
        sigma = 0.01 * self.size
        self.changed += np.abs(_grey_blur(proxy, sigma) - _grey_blur(target, sigma)) > CHANGE_LEVEL
        level = 127 if mask.dtype == np.uint8 else 0.5
        self.faces |= mask > level
        self.frames += 1

    def region(self) -> np.ndarray:
        """The feathered region ``(S, S)`` float32 in ``[0, 1]`` (zeros before any frame)."""
        import cv2

        if self.frames == 0:
            return np.zeros((self.size, self.size), np.float32)
        k = 2 * int(REACH * self.size) + 1
        near = cv2.dilate(self.faces.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        core = ((self.changed / self.frames >= SHARE) & (near > 0)).astype(np.float32)
        return np.clip(cv2.GaussianBlur(core, (0, 0), 0.015 * self.size), 0.0, 1.0)


def paste_mask(face: np.ndarray, region: np.ndarray | None, crop_hands: list[np.ndarray],
               feather_px: float) -> np.ndarray:
    """One frame's paste mask ``(S, S)`` float32 in ``[0, 1]``: the face mask, grown by the swap region
    where no hand is in front (``crop_hands``: ``(21, 2)`` hand landmarks in crop pixels)."""
    from nice_core.face.mask import hand_mask

    face = face.astype(np.float32) / (255.0 if face.dtype == np.uint8 else 1.0)
    if region is None:
        return face
    grown = region
    if crop_hands:
        grown = region * (1.0 - hand_mask(crop_hands, face.shape, feather_px))
    return np.maximum(face, grown)


def crop_hands(store, index: int, matrix: np.ndarray) -> list[np.ndarray]:
    """Frame ``index``'s hands (the store's ``hands``, frame pixels) in crop pixels through ``matrix``."""
    from nice_core.face.alignment import apply_affine

    return [apply_affine(matrix, hand) for hand in store["hands"][index] if not np.isnan(hand).any()]


def store_paste_mask(store, index: int, region: np.ndarray | None, matrix: np.ndarray) -> np.ndarray:
    """:func:`paste_mask` of frame ``index`` of an open store: where the carrier's output shows, and so where
    the fit's loss counts in full."""
    return paste_mask(store["masks"][index], region, crop_hands(store, index, matrix), 0.02 * store.crop_size)

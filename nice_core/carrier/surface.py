"""Surface coordinates: where on the face each crop pixel lies, for the carrier's identity texture.

Why: a swap's fine identity detail (spots, lines, eyebrow texture) is fixed on the *skin*. A UNet that only
sees the target crop must infer "a mole belongs 30 px left of the nostril" from the surrounding skin, which
is uniform exactly where such marks sit; the fit learns the swap's global tone at once and the marks never
(``docs/carrier.md``, "Why the carrier reverted"). Surface coordinates say where each pixel is on the face, so
a texture indexed by them (:class:`~nice_core.carrier.unet.CarrierUNet` with ``texture_channels``) can hold
the identity's static detail, shared by every frame; whatever flickers from frame to frame cannot be stored
there, which is the carrier's stabilisation in a pose-free space (the idea of NICe Sec. 3.2.2's UV losses).

How: the tracked landmarks in crop pixels, smoothed over time (zero-phase Gaussian, ``sigma_frames``; the
crops themselves follow a smoothed alignment), span the face mesh (:mod:`nice_core.face.mesh`, eye and mouth
holes closed). The canonical layout is the per-coordinate median of those landmarks over the clip. Per
frame, a piecewise-affine map over the mesh triangles sends each crop pixel to its canonical position;
:func:`surface_grid` returns it as a ``grid_sample`` grid in ``[-1, 1]`` with the mesh coverage. Cost: a few
ms per 256 px frame; nothing is cached, memory holds ``(N, 478, 2)`` float32 landmarks.
"""

from __future__ import annotations

import numpy as np

from nice_core.face.alignment import apply_affine, smooth_series
from nice_core.face.mesh import extended_points, piecewise_affine_maps

__all__ = ["SurfaceCoords"]


class SurfaceCoords:
    """Surface coordinates of one video's crops (see the module notes).

    Args:
        landmarks: ``(N, 478, 2+)`` landmarks in frame pixels (the store's ``landmarks``).
        transforms: ``(N, 2, 3)`` frame -> crop affines (the store's ``transforms``).
        has_face: ``(N,)`` bool.
        crop_size: the store's crop side.
        sigma_frames: temporal smoothing of the landmarks.
        shots: ``(N,)`` each frame's shot number (the store's ``shot``): no smoothing across a cut.
    """

    def __init__(self, landmarks: np.ndarray, transforms: np.ndarray, has_face: np.ndarray, crop_size: int,
                 sigma_frames: float = 2.0, shots: np.ndarray | None = None) -> None:
        has_face = np.asarray(has_face, bool)
        if not has_face.any():
            raise ValueError("no frame has a face")
        n = len(has_face)
        crop = np.zeros((n, landmarks.shape[1], 2), np.float64)
        for i in np.flatnonzero(has_face):
            crop[i] = apply_affine(np.asarray(transforms[i], np.float64), np.asarray(landmarks[i])[:, :2])
        flat = smooth_series(crop.reshape(n, -1), has_face, sigma_frames, shots)
        self.crop_landmarks = flat.reshape(crop.shape).astype(np.float32)
        self.canonical = extended_points(np.median(self.crop_landmarks[has_face], axis=0))
        self.crop_size = int(crop_size)
        self.has_face = has_face

    @classmethod
    def from_store(cls, store, sigma_frames: float = 2.0) -> SurfaceCoords:
        """From an open :class:`~nice_core.store.FaceStore`."""
        return cls(store["landmarks"][:], store["transforms"][:], store["has_face"][:], store.crop_size,
                   sigma_frames, store.shots())

    def grid(self, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index``'s ``(size, size, 2)`` float32 grid (canonical x, y in ``[-1, 1]`` of the crop, for
        ``grid_sample`` with ``align_corners=False``) and its ``(size, size)`` float32 mesh coverage in
        ``[0, 1]`` (outside the mesh the grid holds the pixel's own crop position).

        The map is piecewise affine, hence continuous: it is computed at half of ``size`` (at least 32
        px) and upsampled bilinearly, which is exact inside each triangle up to the upsampling of its edges
        and softens the coverage's edge by a pixel or two; it costs about 10 ms instead of 20 ms at 256 px.
        """
        import cv2

        coarse = min(size, max(32, size // 2))
        grid, covered = self._grid(index, coarse)
        if coarse == size:
            return grid, covered
        return (cv2.resize(grid, (size, size), interpolation=cv2.INTER_LINEAR),
                cv2.resize(covered, (size, size), interpolation=cv2.INTER_LINEAR))

    def _grid(self, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        scale = size / self.crop_size
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
        gx, gy = (xs + 0.5) / scale, (ys + 0.5) / scale
        covered = np.zeros((size, size), np.float32)
        if self.has_face[index]:
            target = extended_points(self.crop_landmarks[index]) * scale
            map_x, map_y, inside = piecewise_affine_maps(self.canonical * scale, target, (0, 0, size, size))
            gx = np.where(inside, (map_x + 0.5) / scale, gx)
            gy = np.where(inside, (map_y + 0.5) / scale, gy)
            covered = inside.astype(np.float32)
        grid = np.stack([gx, gy], -1) * (2.0 / self.crop_size) - 1.0
        return grid.astype(np.float32), covered

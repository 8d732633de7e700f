"""Stability error e_stab (the NICe paper's Sec. 4.1, after Lai et al., ECCV 2018), restricted to the face.

For frames t = 1..T-1 of a video V, with optical flow computed on the *target* video X (the ground-truth
motion, since the output should move exactly as the original did):

* ``b_t`` = backward flow X_t -> X_{t-1} and ``f_t`` = forward flow X_{t-1} -> X_t, OpenCV DIS (preset
  MEDIUM) on grey frames; flow works offline and needs no weights; ``b_t`` is kept at half precision (the
  per-target cache's, :mod:`nice_core.metrics.motion`);
* ``W(V_{t-1})`` = V_{t-1} sampled at ``x + b_t(x)`` (bilinear): the previous output frame moved to t;
* ``M_t`` = face mask of X_t (filled face-oval polygon from the face mesh) AND not occluded, where a pixel is
  occluded when the flows disagree (Sundaram et al. 2010, the constants Lai et al. use):
  ``|b + f(x + b)|^2 > 0.01 (|b|^2 + |f(x + b)|^2) + 0.5``, or when ``x + b`` leaves the frame;
* ``e_t`` = mean over pixels of ``M_t`` and over RGB of ``(V_t - W(V_{t-1}))^2``, with RGB in ``[0, 1]``;
* ``e_stab`` = mean of ``e_t`` over frames where ``M_t`` holds at least :data:`MIN_MASK_PIXELS` pixels.

The per-frame curve has ``None`` at t = 0 and where the face is missing.
"""

from __future__ import annotations

import numpy as np

OCCLUSION_ALPHA = 0.01
OCCLUSION_BETA = 0.5
MIN_MASK_PIXELS = 64


def _dis():
    import cv2

    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


class TargetMotion:
    """Flow of the target between consecutive frames, computed once and applied to any number of videos.

    The backward flow is kept at half precision (:func:`target_flow`), as the per-target cache
    (:mod:`nice_core.metrics.motion`) stores it, so a cached and a computed evaluation agree bit for bit.
    """

    def __init__(self) -> None:
        self._dis = _dis()
        self._previous_grey: np.ndarray | None = None
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def flow(self, target_frame: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Feed the next target frame; its ``(backward, valid)`` (:func:`target_flow`), ``None`` for the first."""
        import cv2

        grey = cv2.cvtColor(target_frame, cv2.COLOR_RGB2GRAY)
        previous, self._previous_grey = self._previous_grey, grey
        if previous is None:
            return None
        return target_flow(self._dis, grey, previous)

    def step(self, target_frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Feed the next target frame; returns ``(sample_x, sample_y, valid)`` maps for warping the previous
        frame onto this one, or ``None`` for the first frame."""
        found = self.flow(target_frame)
        return None if found is None else self.maps(*found)

    def maps(self, backward: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sample_x, sample_y, valid)`` from a ``(2, H, W)`` backward flow and its ``(H, W)`` validity."""
        height, width = valid.shape
        if self._grid is None or self._grid[0].shape != (height, width):
            self._grid = tuple(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))
        xs, ys = self._grid
        return xs + backward[0].astype(np.float32), ys + backward[1].astype(np.float32), valid


def target_flow(dis, grey: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The backward flow ``b_t`` of one frame pair and where it is valid (the module notes' occlusion test).

    Args:
        dis: an OpenCV DIS optical-flow object.
        grey, previous: ``(H, W)`` uint8 grey frames ``X_t`` and ``X_{t-1}``.

    Returns:
        ``backward``: ``(2, H, W)`` float16 displacements in pixels (half precision: 1/1024 px at the flows
        of a face clip, far below DIS's own accuracy, and half the size to cache); ``valid``: ``(H, W)``
        bool, not occluded and inside the frame (decided on the full-precision flows).
    """
    import cv2

    backward = dis.calc(grey, previous, None)
    forward = dis.calc(previous, grey, None)
    height, width = grey.shape
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = xs + backward[..., 0], ys + backward[..., 1]
    forward_at = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    round_trip = ((backward + forward_at) ** 2).sum(-1)
    bound = OCCLUSION_ALPHA * ((backward**2).sum(-1) + (forward_at**2).sum(-1)) + OCCLUSION_BETA
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return np.moveaxis(backward, -1, 0).astype(np.float16), (round_trip <= bound) & inside


def warp_error(current: np.ndarray, previous: np.ndarray, motion: tuple[np.ndarray, np.ndarray, np.ndarray],
               mask: np.ndarray) -> float | None:
    """``e_t`` for one frame pair: masked mean squared RGB error in ``[0, 1]`` units; ``None`` if too few pixels."""
    import cv2

    map_x, map_y, valid = motion
    region = valid & mask
    if region.sum() < MIN_MASK_PIXELS:
        return None
    warped = cv2.remap(previous.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    diff = (current.astype(np.float32) - warped) / 255.0
    return float((diff[region] ** 2).mean())


def mean_or_none(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None

"""Crop-space measures of a carrier's output over a sequence: stability, fidelity and detail in the mask.

All take sequences of aligned ``(S, S, 3)`` ``uint8`` crops of consecutive frames (the store's crops, the
proxy's crops warped with the same transforms, the carrier's outputs) and ``(S, S)`` masks (``uint8`` in
``[0, 255]`` or float in ``[0, 1]``). A pixel counts when its mask is above 0.5 (in both frames, for
frame-to-frame measures). They are development measures for the carrier (its tests and
``bench/carrier_fit.py``); the per-frame terms are :mod:`nice_core.metrics.image`'s, so a crop-space number
and a video-level one mean the same thing.

* :func:`frame_difference`: mean over frame pairs of the mean squared difference ``V[t] - V[t-1]`` inside
  the mask (``[0, 1]`` units). Crops follow the smoothed alignment, so the target's own value is the motion
  the face really makes; a stable output has about the target's value, a flickering one more.
* :func:`edit_flicker`: the same for the edit ``V - X`` (``X`` the target crops), which takes the motion
  out: 0 for an edit that does not change over time.
* :func:`sequence_psnr`: :func:`~nice_core.metrics.image.masked_psnr` over all masked pixels of all frames.
* :func:`sequence_detail`: :func:`~nice_core.metrics.image.detail` over all masked pixels of all frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nice_core.metrics.image import laplacian_magnitude, psnr_from_mse

__all__ = ["edit_flicker", "frame_difference", "sequence_detail", "sequence_psnr"]


def _inside(masks: Sequence[np.ndarray], t: int, pair: bool = False) -> np.ndarray:
    def above_half(mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask)
        return (mask.astype(np.float32) / 255.0 if mask.dtype == np.uint8 else mask) > 0.5

    inside = above_half(masks[t])
    return inside & above_half(masks[t - 1]) if pair else inside


def frame_difference(crops: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """Mean over ``t >= 1`` of the masked mean squared ``crops[t] - crops[t-1]``, RGB in ``[0, 1]``."""
    values = []
    for t in range(1, len(crops)):
        inside = _inside(masks, t, pair=True)
        if inside.any():
            d = (crops[t].astype(np.float32) - crops[t - 1].astype(np.float32)) / 255.0
            values.append(float((d[inside] ** 2).mean()))
    return float(np.mean(values)) if values else float("nan")


def edit_flicker(crops: Sequence[np.ndarray], targets: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """:func:`frame_difference` of the edit ``crops - targets`` (motion removed)."""
    values = []
    for t in range(1, len(crops)):
        inside = _inside(masks, t, pair=True)
        if inside.any():
            e_now = crops[t].astype(np.float32) - targets[t].astype(np.float32)
            e_before = crops[t - 1].astype(np.float32) - targets[t - 1].astype(np.float32)
            values.append(float((((e_now - e_before) / 255.0)[inside] ** 2).mean()))
    return float(np.mean(values)) if values else float("nan")


def sequence_psnr(a: Sequence[np.ndarray], b: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """PSNR (dB, peak 255, capped as :func:`~nice_core.metrics.image.masked_psnr`) between two crop
    sequences over every masked pixel of every frame."""
    total, count = 0.0, 0
    for t in range(len(a)):
        inside = _inside(masks, t)
        d = a[t].astype(np.float64) - b[t].astype(np.float64)
        total += float((d[inside] ** 2).sum())
        count += int(inside.sum()) * 3
    return psnr_from_mse(total / max(count, 1))


def sequence_detail(crops: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """Mean ``|Laplacian|`` (grey levels, :func:`~nice_core.metrics.image.laplacian_magnitude`) over every
    masked pixel of every frame."""
    total, count = 0.0, 0
    for t in range(len(crops)):
        inside = _inside(masks, t)
        total += float(laplacian_magnitude(crops[t])[inside].sum())
        count += int(inside.sum())
    return total / max(count, 1)

"""Crop-space measures of a carrier's output: stability, fidelity and detail inside the face mask.

All take sequences of aligned ``(S, S, 3)`` ``uint8`` crops of consecutive frames (the store's crops, the
proxy's crops warped with the same transforms, the carrier's outputs) and ``(S, S)`` masks. A pixel counts
when its mask is above 0.5 (in both frames, for frame-to-frame measures). These are development measures
for the carrier (its tests and ``bench/carrier_fit.py``); the video-level metrics (e_stab on target flow,
identity, attributes) are :mod:`nice_core.metrics`.

* :func:`frame_difference`: mean over frame pairs of the mean squared difference ``V[t] - V[t-1]`` inside
  the mask (``[0, 1]`` units). Crops follow the smoothed alignment, so the target's own value is the motion
  the face really makes; a stable output has about the target's value, a flickering one more.
* :func:`edit_flicker`: the same for the edit ``V - X`` (``X`` the target crops), which takes the motion
  out: 0 for an edit that does not change over time.
* :func:`masked_psnr`: PSNR over all masked pixels of all frames.
* :func:`detail`: mean absolute Laplacian (3x3, of the grey image) inside the mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["detail", "edit_flicker", "frame_difference", "masked_psnr"]


def _inside(masks: Sequence[np.ndarray], t: int, pair: bool) -> np.ndarray:
    m = np.asarray(masks[t], np.float32)
    m = m / 255.0 if np.asarray(masks[t]).dtype == np.uint8 else m
    if pair:
        p = np.asarray(masks[t - 1], np.float32)
        p = p / 255.0 if np.asarray(masks[t - 1]).dtype == np.uint8 else p
        return (m > 0.5) & (p > 0.5)
    return m > 0.5


def frame_difference(crops: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """Mean over ``t >= 1`` of the masked mean squared ``crops[t] - crops[t-1]``, RGB in ``[0, 1]``."""
    values = []
    for t in range(1, len(crops)):
        inside = _inside(masks, t, True)
        if inside.any():
            d = (crops[t].astype(np.float32) - crops[t - 1].astype(np.float32)) / 255.0
            values.append(float((d[inside] ** 2).mean()))
    return float(np.mean(values)) if values else float("nan")


def edit_flicker(crops: Sequence[np.ndarray], targets: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """:func:`frame_difference` of the edit ``crops - targets`` (motion removed)."""
    values = []
    for t in range(1, len(crops)):
        inside = _inside(masks, t, True)
        if inside.any():
            e_now = crops[t].astype(np.float32) - targets[t].astype(np.float32)
            e_before = crops[t - 1].astype(np.float32) - targets[t - 1].astype(np.float32)
            values.append(float((((e_now - e_before) / 255.0)[inside] ** 2).mean()))
    return float(np.mean(values)) if values else float("nan")


def masked_psnr(a: Sequence[np.ndarray], b: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """PSNR (dB, peak 255) between two crop sequences over every masked pixel."""
    total, count = 0.0, 0
    for t in range(len(a)):
        inside = _inside(masks, t, False)
        d = a[t].astype(np.float64) - b[t].astype(np.float64)
        total += float((d[inside] ** 2).sum())
        count += int(inside.sum()) * 3
    mse = total / max(count, 1)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def detail(crops: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """Mean ``|Laplacian|`` (grey levels) inside the masks over all frames."""
    import cv2

    total, count = 0.0, 0
    for t in range(len(crops)):
        inside = _inside(masks, t, False)
        grey = cv2.cvtColor(crops[t], cv2.COLOR_RGB2GRAY).astype(np.float32)
        lap = np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=1))
        total += float(lap[inside].sum())
        count += int(inside.sum())
    return total / max(count, 1)

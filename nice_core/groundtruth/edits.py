"""Edit families of the flicker benchmark: what face swappers change, as consistent edits of one face.

A swap replaces the target's identity; what changes is (1) geometry near the face outline (jaw and cheek
width), (2) interior geometry (eye distance, nose and mouth width), (3) skin tone and texture, and (4) fine
identity detail the target lacks (spots, lines, eyebrows). :func:`edit_geometry` moves landmarks for (1)
and (2); :class:`DetailLayer` draws (3)'s texture and (4)'s marks once, in a pose-free canvas, and
:func:`apply_detail` maps the layer onto every frame through the face mesh (a piecewise-affine warp over
the landmark triangles), so the marks move with the skin, with expressions and pose, and stay as stable as
the landmarks that carry them (the benchmark smooths those over time).

The canvas: the reference frame's landmarks under the similarity that puts the eye centres at
``(CANVAS / 2 -+ IOD / 2, EYE_Y)``. Sizes below are fractions of the inter-ocular distance (IOD), so the
edits scale with the face. All randomness comes from the caller's generator (the benchmark seeds it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nice_core.face.mesh import extended_points, piecewise_affine_maps

__all__ = ["CANVAS", "IOD", "DetailLayer", "apply_detail", "edit_geometry", "face_axes", "make_detail_layer"]

CANVAS = 512
IOD = 128.0
EYE_Y = 220.0
#: Per-channel weight of a darkening mark (R, G, B): melanin-like marks darken blue most.
MARK_COLOUR = np.array([0.8, 1.0, 1.15], np.float32)


def face_axes(points: np.ndarray, regions: dict[str, list[int]]) -> tuple[np.ndarray, np.ndarray, float]:
    """``(across, down, iod)``: unit vectors along the eye line and down the face, and the eye distance."""
    eye_l, eye_r = points[regions["left_eye"]].mean(0), points[regions["right_eye"]].mean(0)
    iod = float(np.linalg.norm(eye_l - eye_r))
    across = (eye_l - eye_r) / max(iod, 1e-6)
    down = np.array([-across[1], across[0]])
    return across, down, iod


def _scale_along(points: np.ndarray, centre: np.ndarray, axis: np.ndarray, factor: np.ndarray | float) -> np.ndarray:
    """``points`` with their component along ``axis`` (about ``centre``) scaled by ``factor``."""
    along = (points - centre) @ axis
    return points + np.outer(along * (np.asarray(factor) - 1), axis)


def edit_geometry(points: np.ndarray, regions: dict[str, list[int]], outline: float = 0.0,
                  interior: float = 0.0) -> np.ndarray:
    """Landmarks ``(K, 2)`` moved by the outline and interior geometry families.

    * ``outline``: the face 7% wider at the cheeks and jaw (oval points below the eye line, fading in
      from the eyes down), per unit strength;
    * ``interior``: eyes 10% further apart, the nose 15% and the mouth 10% wider, per unit strength.
    """
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    out = pts.copy()
    across, down, iod = face_axes(pts, regions)
    if outline:
        oval = regions["oval"]
        eyes = 0.5 * (pts[regions["left_eye"]].mean(0) + pts[regions["right_eye"]].mean(0))
        centre = pts[oval].mean(0)
        height = np.clip((pts[oval] - eyes) @ down / (0.6 * iod) + 0.3, 0.0, 1.0)
        out[oval] = _scale_along(pts[oval], centre, across, 1 + 0.07 * outline * height)
    if interior:
        for side, sign in (("left_eye", 1.0), ("right_eye", -1.0)):
            out[regions[side]] += sign * across * 0.05 * iod * interior
        for part, factor in (("nose", 0.15), ("lips", 0.10)):
            idx = regions[part]
            out[idx] = _scale_along(pts[idx], pts[idx].mean(0), across, 1 + factor * interior)
    return out


def _canvas_similarity(points: np.ndarray, regions: dict[str, list[int]]) -> np.ndarray:
    """The ``(2, 3)`` similarity that maps frame points to the canvas (eyes at fixed canvas positions)."""
    eye_l, eye_r = points[regions["left_eye"]].mean(0), points[regions["right_eye"]].mean(0)
    src = np.stack([eye_r, eye_l])
    dst = np.array([[CANVAS / 2 - IOD / 2, EYE_Y], [CANVAS / 2 + IOD / 2, EYE_Y]])
    s_vec, d_vec = src[1] - src[0], dst[1] - dst[0]
    scale = np.linalg.norm(d_vec) / max(np.linalg.norm(s_vec), 1e-6)
    angle = np.arctan2(d_vec[1], d_vec[0]) - np.arctan2(s_vec[1], s_vec[0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.concatenate([rot, (dst[0] - rot @ src[0])[:, None]], axis=1)


@dataclass(frozen=True)
class DetailLayer:
    """A pose-free detail layer: ``delta`` ``(CANVAS, CANVAS, 3)`` float32 multiplicative change of the skin
    (``image * (1 + delta)``), drawn over the canvas mesh ``canon`` (extended points, ``(V, 2)``)."""

    delta: np.ndarray
    canon: np.ndarray
    marks: dict


def _skin_region(canon_lm: np.ndarray, regions: dict[str, list[int]]) -> np.ndarray:
    """Canvas mask ``(CANVAS, CANVAS)`` in ``[0, 1]``: the face oval without eyes, brows and lips."""
    import cv2

    mask = np.zeros((CANVAS, CANVAS), np.float32)
    cv2.fillPoly(mask, [np.round(_hull(canon_lm[regions["oval"]])).astype(np.int32)], 1.0)
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(0.12 * IOD),) * 2))
    for part, grow in (("left_eye", 0.16), ("right_eye", 0.16), ("lips", 0.10), ("left_brow", 0.06),
                       ("right_brow", 0.06)):
        hole = np.zeros_like(mask)
        cv2.fillPoly(hole, [np.round(_hull(canon_lm[regions[part]])).astype(np.int32)], 1.0)
        k = 2 * int(grow * IOD) + 1
        mask *= 1 - cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return mask


def _hull(points: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.convexHull(np.asarray(points, np.float32)).reshape(-1, 2)


def _sample_points(allowed: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    ys, xs = np.nonzero(allowed > 0.99)
    if len(xs) == 0 or count == 0:
        return np.zeros((0, 2))
    pick = rng.choice(len(xs), size=count, replace=len(xs) < count)
    return np.stack([xs[pick], ys[pick]], 1).astype(np.float64) + rng.random((count, 2))


def _spots(count: int, allowed: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """Dark round spots (moles, freckles): radius 2-4.5% of the IOD, 25-50% darker."""
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)
    dark = np.zeros((CANVAS, CANVAS), np.float32)
    records = []
    for x, y in _sample_points(allowed, count, rng):
        radius, depth = rng.uniform(0.02, 0.045) * IOD, rng.uniform(0.25, 0.5)
        dark = np.maximum(dark, depth * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * (radius / 1.5) ** 2)))
        records.append({"xy": [round(float(x), 1), round(float(y), 1)], "radius": round(float(radius), 2),
                        "depth": round(float(depth), 3)})
    return dark, records


def _lines(count: int, allowed: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """Thin curved lines (wrinkles, scars): 30-60% of the IOD long, about 1.5% of it wide, 20-35% darker."""
    import cv2

    dark = np.zeros((CANVAS, CANVAS), np.float32)
    records = []
    for x, y in _sample_points(allowed, count, rng):
        length, angle, bend = rng.uniform(0.3, 0.6) * IOD, rng.uniform(-0.6, 0.6), rng.uniform(-0.15, 0.15) * IOD
        depth = rng.uniform(0.2, 0.35)
        t = np.linspace(-0.5, 0.5, 24)
        direction, normal = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
        curve = np.array([x, y]) + np.outer(t * length, direction) + np.outer(bend * (1 - 4 * t**2), normal)
        stroke = np.zeros_like(dark)
        cv2.polylines(stroke, [np.round(curve * 16).astype(np.int32)], False, 1.0, thickness=2,
                      lineType=cv2.LINE_AA, shift=4)
        dark = np.maximum(dark, depth * cv2.GaussianBlur(stroke, (0, 0), 0.8))
        records.append({"xy": [round(float(x), 1), round(float(y), 1)], "length": round(float(length), 1),
                        "depth": round(float(depth), 3)})
    return dark * allowed, records


def _brows(canon_lm: np.ndarray, regions: dict[str, list[int]], strength: float,
           rng: np.random.Generator) -> np.ndarray:
    """Thicker, darker eyebrows with a hair-like streak texture."""
    import cv2

    dark = np.zeros((CANVAS, CANVAS), np.float32)
    for part in ("left_brow", "right_brow"):
        hull = _hull(canon_lm[regions[part]])
        stroke = np.zeros_like(dark)
        cv2.fillPoly(stroke, [np.round(hull).astype(np.int32)], 1.0)
        k = 2 * int(0.05 * IOD) + 1
        stroke = cv2.dilate(stroke, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        dark = np.maximum(dark, cv2.GaussianBlur(stroke, (0, 0), 0.02 * IOD))
    hairs = cv2.GaussianBlur(rng.random((CANVAS, CANVAS)).astype(np.float32), (0, 0), sigmaX=3.0, sigmaY=0.6)
    hairs = (hairs - hairs.min()) / max(float(np.ptp(hairs)), 1e-6)
    return dark * (0.25 + 0.2 * hairs) * strength


def _texture(allowed: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Band-pass skin texture (pores): +-5% per unit strength, inside the skin."""
    import cv2

    noise = rng.standard_normal((CANVAS, CANVAS)).astype(np.float32)
    band = cv2.GaussianBlur(noise, (0, 0), 1.2) - cv2.GaussianBlur(noise, (0, 0), 3.0)
    band /= max(float(band.std()), 1e-6)
    return 0.05 * strength * band * cv2.GaussianBlur(allowed, (0, 0), 4.0)


def make_detail_layer(reference: np.ndarray, regions: dict[str, list[int]], rng: np.random.Generator, *,
                      spots: int = 0, lines: int = 0, brows: float = 0.0, texture: float = 0.0,
                      mark_strength: float = 1.0) -> DetailLayer:
    """The clip's detail layer, drawn once over the canvas of ``reference`` landmarks ``(478, 2+)``.

    Args:
        reference: the landmarks that define the canvas (a frame of the clip, after the geometry edit).
        regions: landmark index lists (``left_eye``, ``right_eye``, ``lips``, ``oval``, ``*_brow``).
        rng: the generator every mark is drawn from.
        spots, lines: how many of each; brows, texture: strengths (0 = off).
        mark_strength: scales the darkening of spots, lines and brows.
    """
    import cv2

    pts = extended_points(reference)
    sim = _canvas_similarity(np.asarray(reference, np.float64)[:, :2], regions)
    canon = pts @ sim[:, :2].T + sim[:, 2]
    canon_lm = np.asarray(reference, np.float64)[:, :2] @ sim[:, :2].T + sim[:, 2]
    allowed = _skin_region(canon_lm, regions)
    spot_dark, spot_records = _spots(spots, allowed, rng)
    line_dark, line_records = _lines(lines, allowed, rng)
    brow_dark = _brows(canon_lm, regions, brows, rng) if brows else np.zeros_like(spot_dark)
    dark = np.maximum(np.maximum(spot_dark, line_dark), brow_dark) * mark_strength
    delta = -dark[..., None] * MARK_COLOUR
    if texture:
        delta = delta + _texture(allowed, texture, rng)[..., None]
    delta = cv2.GaussianBlur(np.clip(delta, -0.7, 0.3).astype(np.float32), (0, 0), 0.5)
    return DetailLayer(delta=delta, canon=canon, marks={"spots": spot_records, "lines": line_records})


def apply_detail(image: np.ndarray, layer: DetailLayer, landmarks: np.ndarray, weight: np.ndarray,
                 box: tuple[int, int, int, int]) -> np.ndarray:
    """``image`` ``(H, W, 3)`` uint8 with the layer mapped onto the face of ``landmarks``, inside ``box``,
    scaled by ``weight`` ``(H, W)`` in ``[0, 1]`` (the skin mask: no marks on hands in front of the face)."""
    import cv2

    x0, y0, x1, y1 = box
    map_x, map_y, covered = piecewise_affine_maps(layer.canon, extended_points(landmarks), box)
    delta = cv2.remap(layer.delta, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    delta *= (covered * weight[y0:y1, x0:x1])[..., None]
    out = image.copy()
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(np.round(region * (1 + delta)), 0, 255).astype(np.uint8)
    return out

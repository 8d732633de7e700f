"""The face's shape, pose-normalised: tracked mesh vertices brought onto the canonical face by a weighted
similarity (Procrustes) fit on its rigid points.

What remains after removing position, rotation and scale is the face's geometry in the canonical model's
units (mediapipe's canonical face, :mod:`nice_core.prior3d.topology`): the shape code of the ``mesh``
backend. The fit uses the canonical model's own Procrustes landmarks and weights (forehead, nose bridge,
cheekbones: points that expressions move little), so a smile changes the mouth's vertices, not the frame
the whole face is measured in.
"""

from __future__ import annotations

import numpy as np

from nice_core.prior3d.topology import canonical_mesh

__all__ = ["shape_code", "shape_distance", "similarity_fit"]


def similarity_fit(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray,
                                                                                          np.ndarray]:
    """The weighted least-squares similarity ``target ~ scale * source @ rotation.T + shift`` (Umeyama).

    Args:
        source, target: ``(K, 3)`` corresponding points.
        weights: ``(K,)`` non-negative, not all 0.

    Returns:
        ``(scale, rotation (3, 3), shift (3,))``; the rotation is proper (no reflection).
    """
    w = np.asarray(weights, np.float64)
    w = w / w.sum()
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mu_s, mu_d = w @ src, w @ dst
    a, b = src - mu_s, dst - mu_d
    cov = (b * w[:, None]).T @ a
    u, sing, vt = np.linalg.svd(cov)
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ fix @ vt
    var = float(w @ (a * a).sum(axis=1))
    scale = float(np.trace(np.diag(sing) @ fix) / max(var, 1e-12))
    return scale, rotation, mu_d - scale * rotation @ mu_s


def shape_code(vertices: np.ndarray) -> np.ndarray:
    """``(468, 3)`` vertices (crop pixels, :func:`~nice_core.prior3d.uv.crop_vertices`) -> ``(468, 3)``
    ``float32`` positions on the canonical face (its units, centimetres), pose and scale removed."""
    mesh = canonical_mesh()
    ids = mesh.procrustes_ids
    points = np.asarray(vertices, np.float64)
    scale, rotation, shift = similarity_fit(points[ids], mesh.vertices[ids].astype(np.float64),
                                            mesh.procrustes_weights)
    return (scale * points @ rotation.T + shift).astype(np.float32)


def shape_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Root-mean-square distance between two shape codes, in the canonical face's units."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(np.sqrt((diff * diff).sum(axis=-1).mean()))

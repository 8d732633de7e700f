"""The UV unwrap of the canonical face mesh: a fixed raster of the UV square, and per frame where each texel
lies in the crop, how deep, which way its surface faces, and whether the camera sees it.

Why UV: a face's static detail (a mole, a wrinkle, an eyebrow's texture) sits at one place on the skin. In
the crop it moves with the head; in UV space it stays on one texel, so statistics over frames (a median of
what a jittering proxy shows) and comparisons between two faces (the carrier's output against the identity)
are made per texel, pose-free.

The raster is fixed per UV resolution ``U``: every texel centre inside a triangle of the canonical mesh's UV
layout (:mod:`nice_core.prior3d.topology`) gets that triangle and its barycentric weights. The ``T`` covered
texels are kept as a flat list (``UVRaster.texels`` indexes the ``U x U`` square, row-major, row 0 at the
top of the texture image); per-texel values are ``(..., T)`` tensors, :meth:`UVRaster.to_map` turns them into
``(..., U, U)`` maps for storage and display. Per frame, a texel's crop position is the barycentric blend of
its triangle's tracked vertices (:func:`texel_points`), which makes the unwrap (:func:`unwrap`, a
``grid_sample``) differentiable in the image: gradients of a UV-space loss flow into the carrier's output.

Coordinates: crop pixels, x right, y down, the tracker's ``z`` (mediapipe's depth, scaled like x; smaller is
nearer the camera) scaled with the crop. The camera looks along +z, so a surface facing it has a normal with
negative z. Visibility (:func:`texel_visibility`) is the cosine between the texel's normal and the view
direction where the texel passes a depth test against the nearest surface at its crop position, else 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from nice_core.prior3d.topology import canonical_mesh

__all__ = [
    "UVRaster",
    "crop_vertices",
    "texel_normals",
    "texel_planes",
    "texel_points",
    "texel_visibility",
    "unwrap",
    "uv_raster",
    "vertex_normals",
]

#: Mesh vertices (mediapipe's 468; the tracker's 10 iris points are not part of the mesh).
N_VERTICES = 468


@dataclass(frozen=True)
class UVRaster:
    """The covered texels of a ``size x size`` UV raster.

    Attributes:
        size: ``U``, texels per side.
        texels: ``(T,)`` int64 flat indices into the ``U x U`` square (row-major, row 0 at the top).
        triangle: ``(T,)`` int64 index of the canonical mesh triangle each texel lies in.
        bary: ``(T, 3)`` float32 barycentric weights of its three vertices (each row sums to 1).
        corners: ``(T, 3)`` int64 the three vertex indices (``triangles[triangle]``).
        skin: ``(T,)`` bool, texels away from the eyes and the mouth (where static detail is measured: eyelids
            and lips change with every expression).
    """

    size: int
    texels: np.ndarray
    triangle: np.ndarray
    bary: np.ndarray
    corners: np.ndarray
    skin: np.ndarray

    @property
    def count(self) -> int:
        """``T``, the number of covered texels."""
        return int(len(self.texels))

    def to_map(self, values: np.ndarray | Tensor, fill: float = 0.0) -> np.ndarray:
        """``(..., T)`` per-texel values -> ``(..., U, U)`` ``float32`` map, ``fill`` where no triangle is."""
        values = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
        out = np.full((*values.shape[:-1], self.size * self.size), fill, np.float32)
        out[..., self.texels] = values
        return out.reshape(*values.shape[:-1], self.size, self.size)

    def from_map(self, image: np.ndarray) -> np.ndarray:
        """``(..., U, U)`` map -> ``(..., T)`` values at the covered texels."""
        image = np.asarray(image)
        return image.reshape(*image.shape[:-2], self.size * self.size)[..., self.texels]


def _texture_rows(uv: np.ndarray, size: int) -> np.ndarray:
    """UV coordinates -> continuous texel coordinates ``(column, row)`` (mediapipe's v grows downwards)."""
    return np.stack([uv[:, 0] * size, uv[:, 1] * size], axis=1)


def _rasterize_uv(points: np.ndarray, triangles: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per texel centre of a ``size x size`` grid, the triangle containing it (-1: none) and barycentrics."""
    owner = np.full(size * size, -1, np.int64)
    bary = np.zeros((size * size, 3), np.float32)
    for index, tri in enumerate(triangles):
        a, b, c = points[tri]
        lo = np.maximum(np.floor(np.minimum(np.minimum(a, b), c) - 0.5), 0).astype(int)
        hi = np.minimum(np.ceil(np.maximum(np.maximum(a, b), c) + 0.5), size).astype(int)
        cols, rows = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]))
        p = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)
        v0, v1, v2 = b - a, c - a, p - a
        det = v0[0] * v1[1] - v0[1] * v1[0]
        if abs(det) < 1e-12:
            continue
        w1 = (v2[:, 0] * v1[1] - v2[:, 1] * v1[0]) / det
        w2 = (v0[0] * v2[:, 1] - v0[1] * v2[:, 0]) / det
        w0 = 1.0 - w1 - w2
        inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
        flat = rows.ravel()[inside] * size + cols.ravel()[inside]
        owner[flat] = index
        bary[flat] = np.stack([w0, w1, w2], axis=1)[inside]
    return owner, bary


def _skin_texels(points: np.ndarray, covered: np.ndarray, size: int, margin: float) -> np.ndarray:
    """``(U*U,)`` bool: covered texels farther than ``margin`` (a fraction of ``U``) from the eye and mouth
    holes of the mesh."""
    import cv2

    from nice_core.face.mesh import mesh_topology

    _, holes = mesh_topology()
    mask = np.zeros((size, size), np.uint8)
    for loop in holes:
        polygon = np.round(points[list(loop)] * 16).astype(np.int32)
        cv2.fillPoly(mask, [polygon], 255, shift=4)
    radius = max(1, int(round(margin * size)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    near = cv2.dilate(mask, kernel).reshape(-1) > 0
    return covered & ~near


@lru_cache(maxsize=4)
def uv_raster(size: int, feature_margin: float = 0.03) -> UVRaster:
    """The fixed raster of the canonical mesh's UV layout at ``size x size`` texels.

    Args:
        size: ``U``, in ``[16, 1024]``.
        feature_margin: texels within this fraction of ``U`` of the eye and mouth holes are not skin.

    Raises:
        ValueError: ``size`` out of range.
    """
    if not 16 <= int(size) <= 1024:
        raise ValueError(f"UV size must be in [16, 1024], got {size}")
    size = int(size)
    mesh = canonical_mesh()
    points = _texture_rows(mesh.uv.astype(np.float64), size)
    owner, bary = _rasterize_uv(points, mesh.triangles, size)
    covered = owner >= 0
    skin = _skin_texels(points, covered, size, feature_margin)
    texels = np.flatnonzero(covered)
    triangle = owner[texels]
    return UVRaster(size=size, texels=texels, triangle=triangle, bary=bary[texels],
                    corners=mesh.triangles[triangle].astype(np.int64), skin=skin[texels])


def crop_vertices(landmarks: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Tracked landmarks in frame pixels -> mesh vertices in crop pixels.

    Args:
        landmarks: ``(478, 3)`` (or ``(468, 3)``) the store's landmarks: x, y in frame pixels, z scaled like x.
        transform: ``(2, 3)`` the frame -> crop similarity (the store's ``transforms``).

    Returns:
        ``(468, 3)`` ``float32``: x, y in crop pixels, z scaled by the same factor.
    """
    points = np.asarray(landmarks, np.float64)[:N_VERTICES]
    matrix = np.asarray(transform, np.float64)
    if points.shape != (N_VERTICES, 3) or matrix.shape != (2, 3):
        raise ValueError(f"need (>=468, 3) landmarks and a (2, 3) transform, got {np.shape(landmarks)} and "
                         f"{np.shape(transform)}")
    scale = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    xy = points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    return np.concatenate([xy, points[:, 2:] * scale], axis=1).astype(np.float32)


def texel_planes(values: Tensor, raster: UVRaster) -> Tensor:
    """Per-texel values ``(B, C, T)`` -> ``(B, C, U, U)`` planes, 0 outside the layout; differentiable (the
    torch counterpart of :meth:`UVRaster.to_map`, for blurs and pooling in the UV plane)."""
    batch, channels, _ = values.shape
    index = torch.from_numpy(raster.texels).to(values.device)
    planes = torch.zeros(batch, channels, raster.size * raster.size, dtype=values.dtype, device=values.device)
    return planes.index_copy(2, index, values).view(batch, channels, raster.size, raster.size)


def texel_points(vertices: Tensor, raster: UVRaster) -> Tensor:
    """Each texel's position: the barycentric blend of its triangle's vertices.

    Args:
        vertices: ``(B, 468, D)`` vertex positions (``D = 2`` or ``3``).

    Returns:
        ``(B, T, D)``.
    """
    corners = torch.from_numpy(raster.corners).to(vertices.device)
    bary = torch.from_numpy(raster.bary).to(vertices)
    return (vertices[:, corners] * bary[None, :, :, None]).sum(dim=2)


def vertex_normals(vertices: Tensor) -> Tensor:
    """Unit vertex normals ``(B, 468, 3)`` of ``(B, 468, 3)`` vertices, oriented towards the camera (-z).

    Area-weighted sums of the adjacent triangles' normals. Each face's overall orientation is chosen so its
    area-weighted mean normal points at the camera, whatever the triangles' winding: a tracked face faces the
    camera.
    """
    triangles = torch.from_numpy(canonical_mesh().triangles.astype(np.int64)).to(vertices.device)
    a, b, c = (vertices[:, triangles[:, k]] for k in range(3))
    face = torch.cross(b - a, c - a, dim=-1)  # (B, F, 3), length = twice the area
    sign = torch.where(face[..., 2].sum(dim=1, keepdim=True) > 0, -1.0, 1.0).to(face)
    face = face * sign[..., None]
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals = normals.index_add(1, triangles[:, k], face)
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


def texel_normals(vertices: Tensor, raster: UVRaster) -> Tensor:
    """Unit normals ``(B, T, 3)`` at the texels: vertex normals blended barycentrically."""
    return torch.nn.functional.normalize(texel_points(vertex_normals(vertices), raster), dim=-1, eps=1e-12)


def texel_visibility(points: Tensor, normals: Tensor, crop_size: int, depth_size: int = 64,
                     tolerance: float = 0.03) -> Tensor:
    """How well the camera sees each texel, in ``[0, 1]``.

    A texel is hidden when another part of the face is nearer the camera at its crop position: the texels
    are splatted into a ``depth_size`` depth buffer at their crop positions (the nearest wins, i.e. a
    z-buffer of the mesh sampled at the texels), and a texel deeper than its cell's nearest by more than
    ``tolerance`` x the crop side is hidden. A seen texel's weight is the cosine between its normal and the
    direction to the camera (grazing texels count less, back-facing ones not at all).

    Args:
        points: ``(B, T, 3)`` texel positions in crop pixels (:func:`texel_points` of :func:`crop_vertices`).
        normals: ``(B, T, 3)`` unit normals (:func:`texel_normals`).
        crop_size: the crop side the positions are in.

    Returns:
        ``(B, T)`` ``float32``.
    """
    batch, count = points.shape[:2]
    cell = crop_size / depth_size
    col = (points[..., 0] / cell).floor().clamp(0, depth_size - 1).long()
    row = (points[..., 1] / cell).floor().clamp(0, depth_size - 1).long()
    flat = row * depth_size + col
    inside = (points[..., 0] >= 0) & (points[..., 0] < crop_size) & (points[..., 1] >= 0) & \
        (points[..., 1] < crop_size)
    depth = points[..., 2].detach()
    buffer = torch.full((batch, depth_size * depth_size), float("inf"), dtype=depth.dtype, device=depth.device)
    buffer = buffer.scatter_reduce(1, flat, depth, reduce="amin")
    nearest = buffer.gather(1, flat)
    seen = (depth <= nearest + tolerance * crop_size) & inside
    facing = (-normals[..., 2]).clamp(0.0, 1.0)
    return (facing * seen).to(torch.float32)


def unwrap(images: Tensor, points: Tensor, crop_size: int) -> Tensor:
    """Sample images at texel positions: the UV texture, differentiable in ``images``.

    Args:
        images: ``(B, C, H, W)`` crops (any side: positions are scaled from ``crop_size`` pixels).
        points: ``(B, T, 2+)`` texel positions in pixels of a ``crop_size`` crop (x, y; a third column is
            ignored).
        crop_size: the side the positions are measured in.

    Returns:
        ``(B, C, T)`` bilinear samples (border values outside the crop).
    """
    if images.ndim != 4 or points.ndim != 3 or points.shape[0] != images.shape[0]:
        raise ValueError(f"need (B, C, H, W) images and (B, T, 2) points, got {tuple(images.shape)} and "
                         f"{tuple(points.shape)}")
    grid = (points[..., :2] * (2.0 / crop_size) - 1.0)[:, None].to(images.dtype)  # (B, 1, T, 2)
    sampled = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                                              align_corners=False)
    return sampled[:, :, 0]

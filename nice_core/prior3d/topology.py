"""mediapipe's canonical face model: the 468-vertex mesh the tracker's landmarks index, with its UV layout.

The data is vendored in ``data/canonical_mesh.npz`` (Apache-2.0, The MediaPipe Authors; provenance and the
command that regenerates it in ``data/NOTICE.md``). Indices are mediapipe's landmark numbers, so the arrays
apply unchanged to the first 468 of the tracker's 478 points (468-477 are the irises, not in the mesh).

Conventions (checked on the data; ``tests/test_prior3d_topology.py`` asserts them):

- Axes: right-handed. ``x`` points to the subject's left (landmark 263, the subject's left outer eye corner,
  has x = +4.45; 33, the right one, x = -4.45), ``y`` up (10, the top of the forehead, y = +8.26; 152, the
  chin, y = -9.40), ``z`` out of the face towards a viewer in front of it (the nose tip 4 has the largest z,
  +7.59; the cheek-outline points 234/454 by the ears z = -2.44). Seen from +z, x is to the right and y up:
  the picture an unmirrored camera image of the subject shows (whose image y axis points down instead). The
  model is exactly mirror-symmetric in x (28 vertices on x = 0; the UVs are symmetric to within 0.0012). The
  origin is inside the head on that plane, at about the height of the nose tip's base (between landmarks 5
  and 4), 7.6 behind the tip.
- Units: centimetres (mediapipe's metric face space): outer eye corners 33-263 are 8.89 apart, forehead top
  to chin 17.67, 234-454 15.33.
- UV: in ``[0, 1]``, ``u`` grows with x (to the subject's left, the right of the texture image), ``v`` grows
  downwards: v = 0 is the TOP row of the texture image (10, the forehead, v = 0.107; 152, the chin,
  v = 0.954). Texel row = v * (rows), column = u * (columns), no flip. The layout is close to a frontal
  orthographic projection: u ~ 0.500 + 0.0517 x, v ~ 0.500 - 0.0462 y (correlations +0.994 and -0.999).
- Winding: consistent over the whole surface (every interior edge is traversed once in each direction).
  Front faces are counter-clockwise as seen by the viewer, OpenGL's default: in the canonical x-y plane seen
  from +z (x right, y up), 888 of the 898 triangles are counter-clockwise (positive signed area). The other
  10 are clockwise there because those patches of the surface face down and slightly back, away from +z:
  the underside of the nose by the nostrils (2 triangles, 458-459-461 and its mirror 238-241-239) and the
  inner surface of the upper lip towards the mouth corners (8); they are not wound differently.
  In UV with v down, all 898 are counter-clockwise on the texture image, i.e. with the usual formula
  ``(b - a) x (c - a)`` on ``(u, v)`` every signed area is negative. Likewise, on a tracked face in image
  coordinates (x right, y down, unmirrored) a visible triangle has a negative signed area
  (:meth:`CanonicalMesh.facing`).
- Triangles vs mediapipe's ``FACEMESH_TESSELATION`` (an edge set of 1,322 edges, a triangulation with open
  eyes and mouth): the canonical mesh also closes the two eyes (14 triangles each) and the mouth (18), and 209
  quads of the two meshes have their diagonal the other way. Its 1,365 edges share 1,113 with the
  tessellation; 43 are diagonals across the eye and mouth openings and 209 are the flipped diagonals. The
  mesh is a disc: its only boundary is the 36-edge face outline (``FACEMESH_FACE_OVAL``).
- Procrustes landmarks: 33 vertex ids with positive weights (summing to 1.055, not 1), mirror pairs having
  equal weights; mediapipe fits the canonical model to the metric landmarks with these.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

__all__ = ["CanonicalMesh", "canonical_mesh", "mesh_file", "signed_areas"]

#: The vendored file, relative to this package.
DATA_FILE = "data/canonical_mesh.npz"


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Twice the signed area ``(b - a) x (c - a)`` of each triangle.

    Args:
        points: ``(..., V, 2)`` (or ``(..., V, D >= 2)``; only the first two columns are used) positions.
        triangles: ``(F, 3)`` vertex indices.

    Returns:
        ``(..., F)`` float64; positive where a triangle is counter-clockwise in a frame with the second axis up
        (clockwise on a screen whose second axis points down).
    """
    p = np.asarray(points, dtype=np.float64)[..., :2]
    a, b, c = (p[..., triangles[:, k], :] for k in range(3))
    return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])


@dataclass(frozen=True)
class CanonicalMesh:
    """mediapipe's canonical face model (see the module docstring for axes, units, UV and winding).

    Attributes:
        vertices: ``(468, 3)`` float32 canonical x, y, z in centimetres (x to the subject's left, y up, z out
            of the face), range about x in [-7.75, 7.75], y in [-9.41, 8.27], z in [-2.44, 7.59].
        uv: ``(468, 2)`` float32 texture coordinates in [0, 1]; v = 0 at the top of the texture image.
        triangles: ``(898, 3)`` int32 vertex indices in [0, 468), counter-clockwise seen from the front.
        procrustes_ids: ``(33,)`` int32 vertex indices in [0, 468) used by mediapipe's Procrustes fit.
        procrustes_weights: ``(33,)`` float32 their weights, all > 0.
    """

    vertices: np.ndarray
    uv: np.ndarray
    triangles: np.ndarray
    procrustes_ids: np.ndarray
    procrustes_weights: np.ndarray

    @property
    def n_vertices(self) -> int:
        """``V``, the number of vertices (468)."""
        return int(len(self.vertices))

    def facing(self, points: np.ndarray, y_down: bool = True) -> np.ndarray:
        """Which triangles face the viewer, from the projected positions of this mesh's vertices.

        Args:
            points: ``(..., 468, 2)`` (or more columns; x, y are the first two) projected vertex positions,
                e.g. a tracked face's landmarks in image pixels.
            y_down: True for image coordinates (x right, y down, as the tracker gives them); False for a frame
                with y up, such as the canonical x-y plane seen from +z. A mirrored (selfie) image reverses
                the answer.

        Returns:
            ``(..., 898)`` bool, True where the triangle is counter-clockwise as seen by the viewer (front-facing).
            Degenerate (zero-area) triangles count as not facing.
        """
        areas = signed_areas(points, self.triangles)
        return areas < 0 if y_down else areas > 0


def _read_only(array: np.ndarray, dtype: type) -> np.ndarray:
    out = np.ascontiguousarray(array, dtype=dtype)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def canonical_mesh() -> CanonicalMesh:
    """The vendored canonical face model, loaded once; its arrays are read-only (copy them to modify)."""
    blob = resources.files(__package__).joinpath(DATA_FILE).read_bytes()
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return CanonicalMesh(
            vertices=_read_only(data["vertices"], np.float32),
            uv=_read_only(data["uv"], np.float32),
            triangles=_read_only(data["triangles"], np.int32),
            procrustes_ids=_read_only(data["procrustes_ids"], np.int32),
            procrustes_weights=_read_only(data["procrustes_weights"], np.float32),
        )


def mesh_file():
    """The vendored data file (a ``Traversable``; its SHA-256 is recorded by the stages that read it)."""
    return resources.files(__package__).joinpath(DATA_FILE)

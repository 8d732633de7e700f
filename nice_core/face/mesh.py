"""The face-mesh triangulation used for piecewise-affine warps, with the eye and mouth holes filled.

mediapipe ships its tessellation as an edge set. Triangles are the 3-cliques of that graph. The mesh has
holes at the eyes and the mouth; each hole is closed by a fan around an extra vertex at the hole's
centroid, so a warp moves the eyes and the inner mouth along with the rest of the face.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import lru_cache

import numpy as np

N_MESH_POINTS = 468  # the mesh proper; 468-477 are iris points, not part of the tessellation


def _boundary_loops(triangles: np.ndarray) -> list[list[int]]:
    """Closed loops of edges that belong to exactly one triangle."""
    counts = Counter(tuple(sorted(e)) for t in triangles for e in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2])))
    neighbours: dict[int, list[int]] = defaultdict(list)
    for (a, b), count in counts.items():
        if count == 1:
            neighbours[a].append(b)
            neighbours[b].append(a)
    loops, seen = [], set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        loop, prev, node = [start], None, start
        seen.add(start)
        while True:
            options = [n for n in neighbours[node] if n != prev and (n not in seen or n == start)]
            if not options or options[0] == start:
                break
            prev, node = node, options[0]
            loop.append(node)
            seen.add(node)
        loops.append(loop)
    return loops


@lru_cache(maxsize=1)
def mesh_topology() -> tuple[np.ndarray, tuple[tuple[int, ...], ...]]:
    """``(triangles, holes)``: ``(T, 3)`` vertex indices into the extended point array (see
    :func:`extended_points`), and the landmark loops of the filled holes."""
    from nice_core.face.connections import face_mesh_connections

    edges = face_mesh_connections().FACEMESH_TESSELATION
    adjacent: dict[int, set[int]] = defaultdict(set)
    for a, b in edges:
        adjacent[a].add(b)
        adjacent[b].add(a)
    triangles = sorted({tuple(sorted((a, b, c))) for a, b in edges for c in adjacent[a] & adjacent[b]})
    mesh = np.array(triangles, dtype=np.int32)
    loops = sorted(_boundary_loops(mesh), key=len)[:-1]  # the longest loop is the face outline
    fans = []
    for hole, loop in enumerate(loops):
        centre = N_MESH_POINTS + hole
        fans += [(loop[i], loop[(i + 1) % len(loop)], centre) for i in range(len(loop))]
    return np.concatenate([mesh, np.array(fans, dtype=np.int32)]), tuple(tuple(loop) for loop in loops)


def extended_points(landmarks: np.ndarray) -> np.ndarray:
    """``(468 + holes, 2)`` points: the mesh landmarks plus one centroid per filled hole."""
    _, holes = mesh_topology()
    pts = np.asarray(landmarks, dtype=np.float64)[:N_MESH_POINTS, :2]
    return np.concatenate([pts, np.array([pts[list(loop)].mean(axis=0) for loop in holes])])


def triangle_affines(source: np.ndarray, target: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per triangle, the ``(2, 3)`` affine that maps ``target`` vertex positions onto ``source`` ones.

    Args:
        source, target: ``(V, 2)`` vertex positions.
        triangles: ``(T, 3)`` vertex indices.

    Returns:
        ``(T, 2, 3)``; degenerate target triangles get NaN.
    """
    tgt = target[triangles]  # (T, 3, 2)
    src = source[triangles]
    ones = np.ones((*tgt.shape[:2], 1))
    a = np.concatenate([tgt, ones], axis=2)  # (T, 3, 3): rows [x, y, 1]
    det = np.linalg.det(a)
    ok = np.abs(det) > 1e-6
    out = np.full((len(triangles), 2, 3), np.nan)
    # Solve a @ m.T = src for m (2 x 3) per triangle.
    out[ok] = np.transpose(np.linalg.solve(a[ok], src[ok]), (0, 2, 1))
    return out


def piecewise_affine_maps(source_pts: np.ndarray, target_pts: np.ndarray, box: tuple[int, int, int, int]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense sampling maps for warping a source image onto the target mesh inside ``box``.

    Args:
        source_pts, target_pts: extended points (:func:`extended_points`) in source and target pixels.
        box: ``(x0, y0, x1, y1)`` region of the target to fill.

    Returns:
        ``(map_x, map_y, covered)``: ``float32`` source coordinates for ``cv2.remap`` and a bool mask of
        target pixels inside the mesh, each ``(y1 - y0, x1 - x0)``.
    """
    import cv2

    triangles, _ = mesh_topology()
    x0, y0, x1, y1 = box
    height, width = y1 - y0, x1 - x0
    ids = np.full((height, width), -1, dtype=np.int32)
    local = target_pts - (x0, y0)
    for index, tri in enumerate(triangles):
        cv2.fillConvexPoly(ids, np.round(local[tri] * 16).astype(np.int32), int(index), shift=4)
    affines = triangle_affines(source_pts, target_pts, triangles)
    covered = ids >= 0
    covered &= ~np.isnan(affines[np.maximum(ids, 0), 0, 0])
    yy, xx = np.nonzero(covered)
    m = affines[ids[yy, xx]]
    gx, gy = xx + x0, yy + y0
    map_x = np.zeros((height, width), np.float32)
    map_y = np.zeros((height, width), np.float32)
    map_x[yy, xx] = m[:, 0, 0] * gx + m[:, 0, 1] * gy + m[:, 0, 2]
    map_y[yy, xx] = m[:, 1, 0] * gx + m[:, 1, 1] * gy + m[:, 1, 2]
    return map_x, map_y, covered

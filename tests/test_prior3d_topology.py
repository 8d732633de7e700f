"""The vendored canonical face model (nice_core/prior3d/data/canonical_mesh.npz): shapes, the conventions the
topology module documents, and how its triangles relate to mediapipe's FACEMESH_TESSELATION. Offline: reads
only the vendored file and the installed mediapipe wheel."""

from __future__ import annotations

import importlib.util
import struct
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from mediapipe.python.solutions import face_mesh_connections as conn

from nice_core.prior3d.topology import CanonicalMesh, canonical_mesh, signed_areas

V, F, L = 468, 898, 33

#: The triangles that are clockwise in the canonical x-y plane seen from +z (they face down and back): the
#: inner surface of the upper lip near the mouth corners, and the underside of the nose by the nostrils.
AWAY_FROM_FRONT = {(272, 310, 407), (42, 80, 183), (310, 407, 415), (80, 183, 191), (272, 310, 311),
                   (42, 80, 81), (292, 407, 415), (62, 183, 191), (458, 459, 461), (238, 239, 241)}


@pytest.fixture(scope="module")
def mesh() -> CanonicalMesh:
    return canonical_mesh()


def _undirected(pairs) -> set[frozenset[int]]:
    return {frozenset((int(a), int(b))) for a, b in pairs}


def _directed_edges(triangles: np.ndarray) -> list[tuple[int, int]]:
    return [(int(t[k]), int(t[(k + 1) % 3])) for t in triangles for k in range(3)]


def _ring(edges) -> set[int]:
    return {int(v) for e in edges for v in e}


def _components(edges) -> list[set[int]]:
    adjacent: dict[int, set[int]] = defaultdict(set)
    for a, b in edges:
        adjacent[a].add(b)
        adjacent[b].add(a)
    seen: set[int] = set()
    parts = []
    for start in sorted(adjacent):
        if start in seen:
            continue
        part, stack = set(), [start]
        while stack:
            node = stack.pop()
            if node not in part:
                part.add(node)
                stack.extend(adjacent[node] - part)
        seen |= part
        parts.append(part)
    return parts


def test_shapes_dtypes_and_ranges(mesh):
    assert mesh.vertices.shape == (V, 3) and mesh.vertices.dtype == np.float32
    assert mesh.uv.shape == (V, 2) and mesh.uv.dtype == np.float32
    assert mesh.triangles.shape == (F, 3) and mesh.triangles.dtype == np.int32
    assert mesh.procrustes_ids.shape == (L,) and mesh.procrustes_ids.dtype == np.int32
    assert mesh.procrustes_weights.shape == (L,) and mesh.procrustes_weights.dtype == np.float32
    assert mesh.n_vertices == V
    assert np.isfinite(mesh.vertices).all() and np.isfinite(mesh.uv).all()
    assert mesh.uv.min() >= 0.0 and mesh.uv.max() <= 1.0
    assert mesh.triangles.min() >= 0 and mesh.triangles.max() < V
    assert len(np.unique(mesh.triangles)) == V  # every vertex is in some triangle
    assert all(len(set(t)) == 3 for t in mesh.triangles.tolist())
    assert len({frozenset(t) for t in mesh.triangles.tolist()}) == F
    assert mesh.procrustes_ids.min() >= 0 and mesh.procrustes_ids.max() < V
    assert len(set(mesh.procrustes_ids.tolist())) == L
    assert (mesh.procrustes_weights > 0).all()
    assert mesh.procrustes_weights.sum() == pytest.approx(1.055, abs=1e-4)
    assert canonical_mesh() is mesh
    with pytest.raises(ValueError):
        mesh.vertices[0, 0] = 1.0  # read-only: the cached arrays are shared


def test_axes_units_and_symmetry(mesh):
    v = mesh.vertices.astype(np.float64)
    assert v[263, 0] > 4 and v[33, 0] < -4  # x towards the subject's left
    assert np.argmax(v[:, 1]) == 10 and np.argmin(v[:, 1]) == 152  # y up: forehead top .. chin
    assert np.argmax(v[:, 2]) == 4 and v[1, 2] > 7  # z out of the face, the nose tip in front
    assert v[234, 2] < 0 and v[454, 2] < 0
    assert 8.5 < np.linalg.norm(v[33] - v[263]) < 9.5  # centimetres
    assert 17 < np.linalg.norm(v[10] - v[152]) < 18.5
    # Exactly mirror-symmetric in x; the mirrored Procrustes landmarks carry the same weights.
    index = {tuple(p): i for i, p in enumerate(mesh.vertices.tolist())}
    mirror = np.array([index.get((-x, y, z), -1) for x, y, z in mesh.vertices.tolist()])
    assert (mirror >= 0).all() and (mirror[mirror] == np.arange(V)).all()
    assert (v[:, 0] == 0).sum() == 28
    weights = dict(zip(mesh.procrustes_ids.tolist(), mesh.procrustes_weights.tolist()))
    assert all(weights.get(int(mirror[i])) == w for i, w in weights.items())
    assert np.abs(mesh.uv[mirror, 0] - (1 - mesh.uv[:, 0])).max() < 2e-3


def test_uv_is_a_near_frontal_projection_with_v_down(mesh):
    x, y = mesh.vertices[:, 0].astype(np.float64), mesh.vertices[:, 1].astype(np.float64)
    u, v = mesh.uv[:, 0].astype(np.float64), mesh.uv[:, 1].astype(np.float64)
    assert np.corrcoef(u, x)[0, 1] > 0.99
    assert np.corrcoef(v, y)[0, 1] < -0.995  # v grows downwards
    assert mesh.uv[10, 1] < 0.15 and mesh.uv[152, 1] > 0.9  # forehead at the top row, chin at the bottom
    assert mesh.uv[33, 0] < 0.5 < mesh.uv[263, 0]
    assert mesh.uv[1, 0] == pytest.approx(0.5, abs=1e-3)
    for coord, axis, slope in ((u, x, 0.0517), (v, y, -0.0462)):
        design = np.stack([axis, np.ones_like(axis)], axis=1)
        fit, *_ = np.linalg.lstsq(design, coord, rcond=None)
        assert fit[0] == pytest.approx(slope, abs=1e-3) and fit[1] == pytest.approx(0.5, abs=1e-3)
        assert np.abs(design @ fit - coord).max() < 0.1


def test_winding_is_consistent_and_counter_clockwise_from_the_front(mesh):
    directed = _directed_edges(mesh.triangles)
    assert max(Counter(directed).values()) == 1  # no edge traversed twice the same way
    undirected = Counter(frozenset(e) for e in directed)
    interior = {e for e, n in undirected.items() if n == 2}
    assert all(n in (1, 2) for n in undirected.values())
    assert all(tuple(e) in set(directed) and tuple(e)[::-1] in set(directed) for e in interior)
    boundary = {e for e, n in undirected.items() if n == 1}
    assert boundary == _undirected(conn.FACEMESH_FACE_OVAL)  # a disc: eyes and mouth are closed

    # UV (v down): every triangle has the same sign, negative with the (b - a) x (c - a) formula.
    uv_areas = signed_areas(mesh.uv, mesh.triangles)
    assert (uv_areas < 0).all()
    # Canonical x-y seen from +z: counter-clockwise except the listed patches that face away from +z.
    xy_areas = signed_areas(mesh.vertices, mesh.triangles)
    clockwise = {tuple(sorted(t)) for t in mesh.triangles[xy_areas < 0].tolist()}
    assert clockwise == AWAY_FROM_FRONT
    assert (xy_areas != 0).all()
    assert mesh.facing(mesh.vertices, y_down=False).sum() == F - len(AWAY_FROM_FRONT)
    image = mesh.vertices[:, :2] * np.array([1.0, -1.0])  # the frontal view in image axes (y down)
    assert np.array_equal(mesh.facing(image), mesh.facing(mesh.vertices, y_down=False))
    assert mesh.facing(mesh.uv).all()
    batch = np.stack([image, image[:, ::-1]])  # swapping the axes mirrors the picture: the answer flips
    assert mesh.facing(batch).shape == (2, F) and (mesh.facing(batch)[0] != mesh.facing(batch)[1]).all()


def test_triangles_against_facemesh_tessellation(mesh):
    """The tessellation has open eyes and mouth; the canonical mesh closes them (46 triangles) and has 209
    quads' diagonals flipped. Every other edge is shared."""
    tess = _undirected(conn.FACEMESH_TESSELATION)
    assert len(tess) == 1322
    edges = {frozenset(e) for e in _directed_edges(mesh.triangles)}
    assert len(edges) == 1365

    lips = sorted(_components(conn.FACEMESH_LIPS), key=lambda part: np.ptp(mesh.vertices[sorted(part), 0]))
    assert [len(p) for p in lips] == [20, 20]
    rings = {"right eye": _ring(conn.FACEMESH_RIGHT_EYE), "left eye": _ring(conn.FACEMESH_LEFT_EYE),
             "mouth": lips[0]}  # the inner lip line is the narrower of the two lip loops
    assert {name: len(r) for name, r in rings.items()} == {"right eye": 16, "left eye": 16, "mouth": 20}
    fills = {name: [t for t in mesh.triangles.tolist() if set(t) <= ring] for name, ring in rings.items()}
    # An n-gon closed by n - 2 triangles with n - 3 diagonals.
    assert {name: len(tris) for name, tris in fills.items()} == {"right eye": 14, "left eye": 14, "mouth": 18}
    fill_triangles = {frozenset(t) for tris in fills.values() for t in tris}
    fill_edges = {frozenset(e) for tris in fills.values() for e in _directed_edges(np.array(tris))}
    loops = (_undirected(conn.FACEMESH_RIGHT_EYE) | _undirected(conn.FACEMESH_LEFT_EYE)
             | {e for e in _undirected(conn.FACEMESH_LIPS) if e <= rings["mouth"]})
    assert len(loops) == 16 + 16 + 20 and loops <= tess and loops <= fill_edges
    diagonals = fill_edges - loops
    assert len(diagonals) == 13 + 13 + 17 and not diagonals & tess

    only_mesh, only_tess = edges - tess, tess - edges
    assert len(only_mesh) == 252 and len(only_tess) == 209
    assert diagonals <= only_mesh

    # Each remaining mesh-only edge is one diagonal of a quad whose other diagonal is a tessellation-only edge.
    opposite: dict[frozenset[int], list[int]] = defaultdict(list)
    for t in mesh.triangles.tolist():
        if frozenset(t) in fill_triangles:
            continue
        for k in range(3):
            opposite[frozenset((t[k], t[(k + 1) % 3]))].append(t[(k + 2) % 3])
    flipped = only_mesh - diagonals
    flips = {e: frozenset(opposite[e]) for e in flipped}
    assert all(len(opposite[e]) == 2 for e in flipped)
    assert set(flips.values()) == only_tess and len(flips) == len(only_tess)
    # Without the fills, and with the flips undone, the triangles' edges are exactly the tessellation's.
    assert (edges - diagonals - flipped) | only_tess == tess
    assert F - len(fill_triangles) == len(tess) - V - 2  # Euler: V - E + F = 1 - 3 holes


def _load_extractor(monkeypatch):
    path = Path(__file__).resolve().parents[1] / "resources" / "tools" / "extract_canonical_mesh.py"
    spec = importlib.util.spec_from_file_location("extract_canonical_mesh", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_extractor_decodes_like_protobuf(tmp_path, monkeypatch):
    """The hand-written wire-format reader agrees with mediapipe's generated protobuf class, packed or not."""
    from mediapipe.modules.face_geometry.protos import geometry_pipeline_metadata_pb2 as pb

    extract = _load_extractor(monkeypatch)
    message = pb.GeometryPipelineMetadata(input_source=pb.FACE_LANDMARK_PIPELINE)
    message.canonical_mesh.vertex_buffer.extend([0.5, -1.25, 3.0, 0.25, 0.75] * 3)
    message.canonical_mesh.index_buffer.extend([0, 1, 2, 2, 1, 300])
    for landmark_id, weight in ((1, 0.5), (200, 0.125)):
        message.procrustes_landmark_basis.add(landmark_id=landmark_id, weight=weight)
    decoded = extract.decode_metadata(message.SerializeToString())
    assert decoded.input_source == 1
    assert decoded.vertex_buffer == list(message.canonical_mesh.vertex_buffer)
    assert decoded.index_buffer == [0, 1, 2, 2, 1, 300]
    assert decoded.landmark_ids == [1, 200] and decoded.landmark_weights == [0.5, 0.125]
    with pytest.raises(ValueError, match="past the vertex buffer"):
        extract.to_arrays(decoded)  # index 300 with 3 vertices

    floats = struct.pack("<5f", 1.0, 2.0, 3.0, 0.0, 1.0)
    packed_mesh = (b"\x1a" + bytes([len(floats)]) + floats) + b"\x22\x03\x00\x00\x00"
    arrays = extract.to_arrays(extract.decode_metadata(b"\x0a" + bytes([len(packed_mesh)]) + packed_mesh))
    assert arrays["vertices"].tolist() == [[1.0, 2.0, 3.0]] and arrays["uv"].tolist() == [[0.0, 1.0]]
    assert arrays["triangles"].tolist() == [[0, 0, 0]]

    extract.write_npz(tmp_path / "a.npz", arrays)
    extract.write_npz(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as loaded:
        assert sorted(loaded.files) == sorted(arrays)
        assert all(np.array_equal(loaded[k], arrays[k]) and loaded[k].dtype == arrays[k].dtype for k in arrays)

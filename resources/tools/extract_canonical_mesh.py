#!/usr/bin/env python3
"""Extract mediapipe's canonical face model from the npm package ``@mediapipe/face_mesh`` into a small ``.npz``.

Usage (from the repository root)::

    npm pack @mediapipe/face_mesh@0.4.1657299874
    python resources/tools/extract_canonical_mesh.py mediapipe-face_mesh-0.4.1657299874.tgz

The argument is the npm tarball, or a folder holding its unpacked contents (either the folder that contains
``package/`` or ``package/`` itself). The package's ``face_mesh_solution_packed_assets.data`` is an Emscripten
file package: the files are concatenated, and ``face_mesh_solution_packed_assets_loader.js`` lists each one's
name with its start and end byte offsets. The file read here is
``geometry_pipeline_metadata_landmarks.binarypb``, a serialised ``mediapipe.face_geometry.GeometryPipelineMetadata``
(proto2). It is decoded with the small wire-format reader below, so no protobuf package is needed. Field numbers:

- GeometryPipelineMetadata: 1 canonical_mesh (Mesh3d), 2 procrustes_landmark_basis (repeated WeightedLandmarkRef),
  3 input_source (enum)
- WeightedLandmarkRef: 1 landmark_id (uint32), 2 weight (float)
- Mesh3d: 1 vertex_type (enum, 0 = VERTEX_PT: x, y, z, u, v per vertex), 2 primitive_type (enum, 0 = TRIANGLE),
  3 vertex_buffer (repeated float), 4 index_buffer (repeated uint32)

The output holds ``vertices`` (V, 3) float32, ``uv`` (V, 2) float32, ``triangles`` (F, 3) int32,
``procrustes_ids`` (L,) int32 and ``procrustes_weights`` (L,) float32, all as stored in the protobuf. The zip is
written with fixed member timestamps so the same input gives the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import struct
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LOADER = "face_mesh_solution_packed_assets_loader.js"
PACKED = "face_mesh_solution_packed_assets.data"
EMBEDDED = "geometry_pipeline_metadata_landmarks.binarypb"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "nice_core" / "prior3d" / "data" / "canonical_mesh.npz"

# Wire types.
VARINT, I64, LEN, I32 = 0, 1, 2, 5


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; return (value, next position)."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """Split one message into (field number, wire type, value): ints for VARINT/I32/I64 (raw bits), bytes for LEN."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = _varint(buf, pos)
        elif wire == I32:
            (value,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        elif wire == I64:
            (value,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
        elif wire == LEN:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError(f"field {number}: length {size} runs past the end of the message")
            value = bytes(buf[pos : pos + size])
            pos += size
        else:
            raise ValueError(f"field {number}: unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _floats(wire: int, value: int | bytes) -> list[float]:
    """A repeated float field's element(s): unpacked (I32) or packed (LEN)."""
    if wire == I32:
        return [struct.unpack("<f", struct.pack("<I", value))[0]]
    if wire == LEN:
        if len(value) % 4:
            raise ValueError("packed float field of a length not divisible by 4")
        return list(struct.unpack(f"<{len(value) // 4}f", value))
    raise ValueError(f"float field with wire type {wire}")


def _uints(wire: int, value: int | bytes) -> list[int]:
    """A repeated uint32 field's element(s): unpacked (VARINT) or packed (LEN of varints)."""
    if wire == VARINT:
        return [value]
    if wire == LEN:
        items, pos = [], 0
        while pos < len(value):
            item, pos = _varint(value, pos)
            items.append(item)
        return items
    raise ValueError(f"uint32 field with wire type {wire}")


@dataclass
class Metadata:
    """The decoded GeometryPipelineMetadata (only the fields this project uses, plus the enums for checking)."""

    vertex_type: int = 0
    primitive_type: int = 0
    vertex_buffer: list[float] = field(default_factory=list)
    index_buffer: list[int] = field(default_factory=list)
    landmark_ids: list[int] = field(default_factory=list)
    landmark_weights: list[float] = field(default_factory=list)
    input_source: int = 0


def decode_metadata(blob: bytes) -> Metadata:
    """Decode a serialised GeometryPipelineMetadata; unknown fields are an error so format changes are noticed."""
    meta = Metadata()
    for number, wire, value in _fields(blob):
        if number == 1 and wire == LEN:
            for n, w, v in _fields(value):
                if n == 1 and w == VARINT:
                    meta.vertex_type = v
                elif n == 2 and w == VARINT:
                    meta.primitive_type = v
                elif n == 3:
                    meta.vertex_buffer.extend(_floats(w, v))
                elif n == 4:
                    meta.index_buffer.extend(_uints(w, v))
                else:
                    raise ValueError(f"Mesh3d: unexpected field {n} (wire type {w})")
        elif number == 2 and wire == LEN:
            landmark_id, weight = 0, 0.0
            for n, w, v in _fields(value):
                if n == 1 and w == VARINT:
                    landmark_id = v
                elif n == 2 and w == I32:
                    weight = _floats(w, v)[0]
                else:
                    raise ValueError(f"WeightedLandmarkRef: unexpected field {n} (wire type {w})")
            meta.landmark_ids.append(landmark_id)
            meta.landmark_weights.append(weight)
        elif number == 3 and wire == VARINT:
            meta.input_source = value
        else:
            raise ValueError(f"GeometryPipelineMetadata: unexpected field {number} (wire type {wire})")
    return meta


def _read_member(source: Path, name: str) -> bytes:
    """Read ``package/<name>`` from the npm tarball or from an unpacked folder."""
    if source.is_dir():
        for candidate in (source / "package" / name, source / name):
            if candidate.is_file():
                return candidate.read_bytes()
        raise FileNotFoundError(f"{name} not found under {source} (looked in package/ and the folder itself)")
    with tarfile.open(source, "r:*") as tar:
        try:
            member = tar.extractfile(f"package/{name}")
        except KeyError:
            member = None
        if member is None:
            raise FileNotFoundError(f"package/{name} not found in {source}")
        return member.read()


def find_embedded(loader_js: str, packed: bytes, suffix: str = EMBEDDED) -> tuple[str, bytes]:
    """Locate the file whose name ends with ``suffix`` in the Emscripten package through the loader's offsets."""
    match = re.search(r"loadPackage\((\{.*?\})\)", loader_js, flags=re.S)
    if match is None:
        raise ValueError("the loader has no loadPackage({...}) call")
    metadata = json.loads(match.group(1))
    hits = [f for f in metadata["files"] if f["filename"].endswith("/" + suffix)]
    if len(hits) != 1:
        raise ValueError(f"expected one {suffix} in the loader's file list, found {len(hits)}")
    entry = hits[0]
    size = metadata.get("remote_package_size")
    if size is not None and size != len(packed):
        raise ValueError(f"{PACKED} is {len(packed)} bytes, the loader says {size}")
    start, end = int(entry["start"]), int(entry["end"])
    if not 0 <= start < end <= len(packed):
        raise ValueError(f"offsets {start}..{end} outside the {len(packed)}-byte package")
    return entry["filename"], packed[start:end]


def to_arrays(meta: Metadata) -> dict[str, np.ndarray]:
    """Check the decoded metadata and turn it into the arrays written to the .npz."""
    if meta.vertex_type != 0 or meta.primitive_type != 0:
        raise ValueError(f"expected VERTEX_PT triangles, got vertex_type {meta.vertex_type}, "
                         f"primitive_type {meta.primitive_type}")
    if len(meta.vertex_buffer) % 5 or len(meta.index_buffer) % 3:
        raise ValueError(f"vertex buffer of {len(meta.vertex_buffer)} floats or index buffer of "
                         f"{len(meta.index_buffer)} ints is not a whole number of vertices/triangles")
    vertex = np.asarray(meta.vertex_buffer, dtype=np.float32).reshape(-1, 5)
    triangles = np.asarray(meta.index_buffer, dtype=np.int64).reshape(-1, 3)
    ids = np.asarray(meta.landmark_ids, dtype=np.int64)
    n = len(vertex)
    if triangles.size and (triangles.min() < 0 or triangles.max() >= n) or ids.size and ids.max() >= n:
        raise ValueError("an index points past the vertex buffer")
    return {
        "vertices": np.ascontiguousarray(vertex[:, :3]),
        "uv": np.ascontiguousarray(vertex[:, 3:]),
        "triangles": triangles.astype(np.int32),
        "procrustes_ids": ids.astype(np.int32),
        "procrustes_weights": np.asarray(meta.landmark_weights, dtype=np.float32),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``np.load``-compatible .npz with fixed member timestamps and order, so it is byte-reproducible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue(), compresslevel=9)
    path.write_bytes(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the npm tarball of @mediapipe/face_mesh, or its unpacked folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output .npz (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)

    loader_js = _read_member(args.source, LOADER).decode("utf-8")
    packed = _read_member(args.source, PACKED)
    name, blob = find_embedded(loader_js, packed)
    arrays = to_arrays(decode_metadata(blob))
    write_npz(args.out, arrays)

    if args.source.is_file():
        print(f"source tarball: {args.source}  sha256 {hashlib.sha256(args.source.read_bytes()).hexdigest()}")
    else:
        print(f"source folder: {args.source}  (no tarball; sha256 of {PACKED} "
              f"{hashlib.sha256(packed).hexdigest()})")
    print(f"embedded file: {name}  {len(blob)} bytes  sha256 {hashlib.sha256(blob).hexdigest()}")
    for key in sorted(arrays):
        print(f"  {key}: shape {arrays[key].shape} dtype {arrays[key].dtype}")
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out}  {args.out.stat().st_size} bytes  sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

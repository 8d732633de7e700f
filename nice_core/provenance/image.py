"""Labelled still images: PNG text chunks or a JPEG comment, plus the pixel watermark."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np

from nice_core.errors import OutputError
from nice_core.io.atomic import atomic_output
from nice_core.provenance.label import synthetic_label

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _add_png_text(png: bytes, tags: dict[str, str]) -> bytes:
    """Insert ``iTXt`` chunks (UTF-8 text) right after the IHDR chunk."""
    end_of_ihdr = len(_PNG_SIGNATURE) + 8 + struct.unpack(">I", png[8:12])[0] + 4
    chunks = b"".join(_png_chunk(b"iTXt", key.encode("latin-1")[:79] + b"\x00\x00\x00\x00\x00" + value.encode())
                      for key, value in tags.items())
    return png[:end_of_ihdr] + chunks + png[end_of_ihdr:]


def _add_jpeg_comment(jpeg: bytes, tags: dict[str, str]) -> bytes:
    """Insert one COM segment (the tags as JSON) right after the SOI marker."""
    body = json.dumps(tags, sort_keys=True).encode()[:65533]
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def write_image(path: str | Path, image: np.ndarray, inputs: dict[str, str | Path] | None = None,
                purpose: str = "face manipulation", visible_label: bool = False) -> Path:
    """Write an ``(H, W, 3)`` ``uint8`` RGB image as PNG or JPEG, labelled and watermarked, atomically."""
    import cv2

    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in (".png", ".jpg", ".jpeg"):
        raise OutputError(f"images are written as .png or .jpg, not {fmt or 'no extension'}: {path}")
    label = synthetic_label(inputs, purpose, visible=visible_label)
    marked, tags = label.stamp(image), label.tags
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if fmt != ".png" else []
    ok, encoded = cv2.imencode(".png" if fmt == ".png" else ".jpg", cv2.cvtColor(marked, cv2.COLOR_RGB2BGR),
                               params)
    if not ok:
        raise OutputError(f"cannot encode {path}")
    data = encoded.tobytes()
    data = _add_png_text(data, tags) if fmt == ".png" else _add_jpeg_comment(data, tags)
    with atomic_output(path, inputs=list((inputs or {}).values())) as tmp:
        tmp.write_bytes(data)
    return path


def read_image_tags(path: str | Path) -> dict[str, str]:
    """Text tags of a PNG (tEXt/iTXt) or the JSON tags of a JPEG comment; empty if none."""
    data = Path(path).read_bytes()
    tags: dict[str, str] = {}
    if data.startswith(_PNG_SIGNATURE):
        at = len(_PNG_SIGNATURE)
        while at + 8 <= len(data):
            length, kind = struct.unpack(">I", data[at:at + 4])[0], data[at + 4:at + 8]
            body = data[at + 8:at + 8 + length]
            if kind == b"tEXt" and b"\x00" in body:
                key, value = body.split(b"\x00", 1)
                tags[key.decode("latin-1")] = value.decode("latin-1")
            elif kind == b"iTXt" and b"\x00" in body:
                key, rest = body.split(b"\x00", 1)
                value = rest[2:].split(b"\x00", 2)[-1]  # skip flags, language and translated keyword
                tags[key.decode("latin-1")] = value.decode("utf-8", errors="replace")
            at += 12 + length
    elif data.startswith(b"\xff\xd8"):
        at = 2
        while at + 4 <= len(data) and data[at] == 0xFF and data[at + 1] not in (0xDA, 0xD9):
            length = struct.unpack(">H", data[at + 2:at + 4])[0]
            if data[at + 1] == 0xFE:
                try:
                    tags.update(json.loads(data[at + 4:at + 2 + length]))
                except ValueError:
                    pass
            at += 2 + length
    return tags

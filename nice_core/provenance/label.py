"""The container-metadata label that marks every video the pipeline writes as synthetic media.

The label is always applied by :class:`nice_core.io.writer.VideoWriter`; it is not optional. Keys are
written as MP4/Matroska tags (``-movflags +use_metadata_tags`` keeps custom keys in MP4).
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path

SYNTHETIC_MEDIA_NOTICE = (
    "SYNTHETIC MEDIA: this video was produced or altered by an automated face-manipulation pipeline "
    "(nice-core). It may show a face that was not in the original recording."
)


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so memory stays bounded."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def input_digests(inputs: dict[str, str | Path] | None) -> dict[str, str]:
    """Role -> SHA-256 of each input file."""
    return {role: file_sha256(path) for role, path in (inputs or {}).items()}


def creation_time() -> str:
    """Now in UTC, or the time in ``SOURCE_DATE_EPOCH`` (seconds since 1970) when it is set: the
    reproducible-builds convention, so two runs on the same inputs write byte-identical files (the tag is
    part of each file's SHA-256, which later stages record and turn into their watermark payload)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    when = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch.isdigit() else datetime.now(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def synthetic_media_metadata(digests: dict[str, str] | None = None, purpose: str = "face manipulation",
                             watermark_payload: int | None = None) -> dict[str, str]:
    """Container tags that declare a file synthetic.

    Args:
        digests: role -> SHA-256 of the files the output was made from (:func:`input_digests`).
        purpose: what kind of output this is, e.g. ``"face manipulation"`` or ``"tracking preview"``.
        watermark_payload: the payload of the pixel watermark, recorded so a reader can compare.

    Returns:
        A mapping of tag name to value, ready for ffmpeg's ``-metadata`` (or PNG text chunks).
    """
    from nice_core import __version__

    tags = {
        "comment": SYNTHETIC_MEDIA_NOTICE,
        "synthetic_media": "true",
        "synthetic_media_kind": purpose,
        "generator": f"nice-core {__version__}",
        "creation_time": creation_time(),
    }
    for role, digest in (digests or {}).items():
        tags[f"input_{role}_sha256"] = digest
    if watermark_payload is not None:
        tags["watermark"] = f"nice-core spread-spectrum, payload {watermark_payload:05x}"
    return tags

"""The container-metadata label that marks every video the pipeline writes as synthetic media.

The label is always applied by :class:`nice_core.io.writer.VideoWriter`; it is not optional. Keys are
written as MP4/Matroska tags (``-movflags +use_metadata_tags`` keeps custom keys in MP4).
"""

from __future__ import annotations

import hashlib
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


def synthetic_media_metadata(
    inputs: dict[str, str | Path] | None = None, purpose: str = "face manipulation"
) -> dict[str, str]:
    """Container tags that declare a file synthetic.

    Args:
        inputs: role -> path of the files the output was made from (their SHA-256 goes in the label).
        purpose: what kind of output this is, e.g. ``"face manipulation"`` or ``"tracking preview"``.

    Returns:
        A mapping of tag name to value, ready for ffmpeg's ``-metadata``.
    """
    from nice_core import __version__

    tags = {
        "comment": SYNTHETIC_MEDIA_NOTICE,
        "synthetic_media": "true",
        "synthetic_media_kind": purpose,
        "generator": f"nice-core {__version__}",
        "creation_time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    for role, path in (inputs or {}).items():
        tags[f"input_{role}_sha256"] = file_sha256(path)
    return tags

"""``nice-core verify FILE``: is this file labelled as made by nice-core? Metadata and watermark."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nice_core.errors import InputError
from nice_core.provenance.c2pa_manifest import read_manifest
from nice_core.provenance.watermark import PARITY_PAYLOAD, Detection, detect_frames

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Frames read from a video for detection (evenly spread); more frames, stronger detection.
MAX_FRAMES = 96


@dataclass(frozen=True)
class Verification:
    path: Path
    tags: dict[str, str]
    watermark: Detection
    c2pa: dict | None = None

    @property
    def label_found(self) -> bool:
        return self.tags.get("synthetic_media", self.tags.get("SYNTHETIC_MEDIA")) == "true"

    @property
    def parity(self) -> bool:
        """Real footage nice-core re-encoded for data-set parity (its tag, or its mark's payload), with no
        synthetic-media label and no mark carrying a synthetic output's payload (a tag alone never outweighs
        the pixels)."""
        marked = self.watermark.found and self.watermark.payload == PARITY_PAYLOAD
        synthetic_mark = self.watermark.found and self.watermark.payload != PARITY_PAYLOAD
        tagged = self.tags.get("nice_core_parity", self.tags.get("NICE_CORE_PARITY")) == "true"
        return (marked or tagged) and not synthetic_mark and not self.label_found and self.c2pa is None

    @property
    def found(self) -> bool:
        """Labelled synthetic media made by nice-core (a parity-marked original is not)."""
        return self.label_found or (self.watermark.found and not self.parity) or self.c2pa is not None

    def summary(self) -> list[str]:
        lines = [f"file: {self.path}"]
        if self.label_found:
            generator = self.tags.get("generator", self.tags.get("GENERATOR", "?"))
            kind = self.tags.get("synthetic_media_kind", self.tags.get("SYNTHETIC_MEDIA_KIND", "?"))
            created = self.tags.get("creation_time", "?")
            lines.append(f"metadata label: FOUND ({kind}; {generator}; created {created})")
        else:
            lines.append("metadata label: not found")
        w = self.watermark
        if w.found:
            lines.append(f"watermark: DETECTED (z = {w.z:.1f}, threshold 8; payload {w.payload_hex}; "
                         f"scale {w.scale:g}; {w.frames} frames)")
        else:
            lines.append(f"watermark: not detected (z = {w.z:.1f}, threshold 8; {w.frames} frames)")
        if self.c2pa is not None:
            lines.append(f"C2PA manifest: FOUND ({self.c2pa.get('title', '?')}; signed by "
                         f"{(self.c2pa.get('signature_info') or {}).get('issuer', '?')})")
        if self.parity:
            verdict = ("original footage re-encoded by nice-core for data-set parity (mark payload "
                       f"{PARITY_PAYLOAD:05x}): not synthetic media")
        else:
            verdict = "labelled synthetic media made by nice-core" if self.found else "no nice-core label found"
        lines.append("verdict: " + verdict)
        return lines


def _video_tags(path: Path) -> dict[str, str]:
    import av

    with av.open(str(path)) as container:
        return {str(k): str(v) for k, v in container.metadata.items()}


def verify_file(path: str | Path, max_frames: int = MAX_FRAMES) -> Verification:
    """Look for the metadata label and the pixel watermark in a video or image.

    Raises:
        InputError: the file is missing or not a readable video or image.
    """
    from nice_core.io.image import read_image

    path = Path(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        from nice_core.provenance.image import read_image_tags

        image = read_image(path)
        return Verification(path, read_image_tags(path), detect_frames([image]), read_manifest(path))
    from nice_core.io import VideoReader, probe_video

    probe = probe_video(path)
    with VideoReader(path, probe) as reader:
        picks = set(np.unique(np.linspace(0, len(reader) - 1, min(max_frames, len(reader))).astype(int)).tolist())
        frames = (frame for index, frame in reader.iter_frames() if index in picks)
        detection = detect_frames(frames)
    try:
        tags = _video_tags(path)
    except Exception as err:  # a file that decodes but whose tags cannot be read: report, do not crash
        raise InputError(f"cannot read the tags of {path}: {err}") from None
    return Verification(path, tags, detection, read_manifest(path))

"""The synthetic-media label every video the pipeline writes carries.

:class:`nice_core.io.writer.VideoWriter` will not write without a label; :func:`synthetic_label` builds the
pipeline's: container tags (written as MP4/Matroska tags; ``-movflags +use_metadata_tags`` keeps custom keys
in MP4), the invisible watermark in every frame, optionally a visible mark and a signed C2PA manifest. The
io layer knows only the shape of a label (:class:`nice_core.io.writer.OutputLabel`), not this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from nice_core.io.digest import file_sha256
from nice_core.io.writer import EncodeOptions
from nice_core.provenance.visible import draw_visible_label
from nice_core.provenance.watermark import PARITY_PAYLOAD, embed, payload_from_inputs

SYNTHETIC_MEDIA_NOTICE = (
    "SYNTHETIC MEDIA: this video was produced or altered by an automated face-manipulation pipeline "
    "(nice-core). It may show a face that was not in the original recording."
)
PARITY_NOTICE = (
    "ORIGINAL FOOTAGE, RE-ENCODED: nice-core decoded and re-encoded this video and marked it like its outputs, "
    "so that a deepfake detector's real and fake videos share one encoder path and one watermark. No face in "
    "it was manipulated."
)


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
    tags = {"comment": SYNTHETIC_MEDIA_NOTICE, "synthetic_media": "true", "synthetic_media_kind": purpose}
    return tags | _source_tags(digests, watermark_payload)


def _source_tags(digests: dict[str, str] | None, watermark_payload: int | None, note: str = "") -> dict[str, str]:
    """The tags every nice-core output carries: generator, creation time, its inputs' SHA-256, the mark."""
    from nice_core import __version__

    tags = {"generator": f"nice-core {__version__}", "creation_time": creation_time()}
    for role, digest in (digests or {}).items():
        tags[f"input_{role}_sha256"] = digest
    if watermark_payload is not None:
        tags["watermark"] = f"nice-core spread-spectrum, payload {watermark_payload:05x}{note}"
    return tags


@dataclass(frozen=True)
class SyntheticLabel:
    """The label of one output video (an :class:`nice_core.io.writer.OutputLabel`).

    Attributes:
        sources: the files the output was made from (hashed into the tags and the watermark payload; the
            writer refuses to overwrite them).
        tags: container tags (:func:`synthetic_media_metadata`).
        payload: the 20-bit watermark payload embedded in every frame.
        visible: also draw a visible "SYNTHETIC" mark on every frame.
        kind: what the output is, e.g. ``"tracking preview"``.
        c2pa: ``(key, cert)`` PEM files to sign a C2PA manifest with, or ``None``.
    """

    sources: tuple[Path, ...]
    tags: dict[str, str] = field(repr=False)
    payload: int
    visible: bool
    kind: str
    c2pa: tuple[str, str] | None = None

    def stamp(self, frame: np.ndarray) -> np.ndarray:
        """Mark one ``(H, W, 3)`` ``uint8`` RGB frame: the watermark, then the visible mark if asked."""
        frame = embed(frame, self.payload)
        return draw_visible_label(frame) if self.visible else frame

    def seal(self, path: Path, name: Path) -> None:
        """Sign the finished file ``path`` (whose final name is ``name``) when C2PA keys were given."""
        if self.c2pa is not None:
            from nice_core.provenance.c2pa_manifest import sign_file

            sign_file(path, *self.c2pa, kind=self.kind, name=name)


def synthetic_label(inputs: dict[str, str | Path] | None, kind: str = "face manipulation",
                    encode: EncodeOptions | None = None, visible: bool | None = None) -> SyntheticLabel:
    """The label of an output made from ``inputs`` (role -> path), as ``encode`` asks for it.

    Args:
        inputs: role -> path of the source files, hashed into the tags and the watermark payload.
        kind: what the output is, for the tags and the C2PA manifest.
        encode: its ``visible_label`` and ``c2pa_key``/``c2pa_cert`` are read (defaults: the config's).
        visible: overrides ``encode.visible_label``.
    """
    encode = encode or EncodeOptions()
    digests = input_digests(inputs)
    payload = payload_from_inputs(list(digests.values()))
    c2pa = (encode.c2pa_key, encode.c2pa_cert) if encode.c2pa_key or encode.c2pa_cert else None
    return SyntheticLabel(
        sources=tuple(Path(p) for p in (inputs or {}).values()),
        tags=synthetic_media_metadata(digests, purpose=kind, watermark_payload=payload),
        payload=payload,
        visible=encode.visible_label if visible is None else visible,
        kind=kind,
        c2pa=c2pa,
    )


@dataclass(frozen=True)
class CarriedLabel:
    """The label of a re-encoded copy of a file nice-core already labelled (an
    :class:`nice_core.io.writer.OutputLabel`): the source's tags, updated for the copy, and the source's own
    mark, which :meth:`stamp` leaves as it is (a second mark on the first would make the copy's mark stronger
    than every other file's, a cue a detector could learn).

    Attributes:
        sources: the labelled file the copy is made from.
        tags: container tags (the source's synthetic-media label, its mark's payload, the copy's input hash).
        kind: what the copy is.
    """

    sources: tuple[Path, ...]
    tags: dict[str, str] = field(repr=False)
    kind: str

    def stamp(self, frame: np.ndarray) -> np.ndarray:
        """The frame unchanged: it carries the source's mark already."""
        return frame

    def seal(self, path: Path, name: Path) -> None:
        """Nothing to sign: a copy is never a C2PA-signed original."""


def carried_label(source: str | Path, source_tags: dict[str, str], role: str, kind: str) -> CarriedLabel:
    """The label of a re-encoded copy of ``source``, a nice-core synthetic output whose container tags are
    ``source_tags``: still synthetic media, of ``kind``, with ``source`` hashed in as ``role`` and the
    source's watermark tag kept (its mark stays in the pixels; see :class:`CarriedLabel`)."""
    if source_tags.get("synthetic_media") != "true":
        raise ValueError(f"{source} carries no synthetic-media label to carry over")
    digests = input_digests({role: source})
    tags = synthetic_media_metadata(digests, purpose=kind)
    if "watermark" in source_tags:
        tags["watermark"] = f"{source_tags['watermark']} (the source's mark, kept through a re-encode)"
    return CarriedLabel(sources=(Path(source),), tags=tags, kind=kind)


def parity_label(inputs: dict[str, str | Path]) -> SyntheticLabel:
    """The label of real footage re-encoded for data-set parity (the detection study's reals): nice-core's
    watermark with :data:`~nice_core.provenance.watermark.PARITY_PAYLOAD` and tags that say "original,
    re-encoded, not manipulated" (``synthetic_media: false``, ``nice_core_parity: true``), so the reals carry
    the same pattern as the refined fakes and ``nice-core verify`` never calls them synthetic. No visible mark
    and no C2PA manifest (both would differ from nothing in the fakes' pixels, or claim a manipulation)."""
    tags = {"comment": PARITY_NOTICE, "synthetic_media": "false", "nice_core_parity": "true",
            **_source_tags(input_digests(inputs), PARITY_PAYLOAD, " (data-set parity: not synthetic)")}
    return SyntheticLabel(sources=tuple(Path(p) for p in inputs.values()), tags=tags, payload=PARITY_PAYLOAD,
                          visible=False, kind="original footage re-encoded for data-set parity")

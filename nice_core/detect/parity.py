"""The study's encoding parity: every FF++ video goes through the same decoder, encoder and watermark.

A refined FF++ video is decoded, composited, watermarked and encoded by nice-core at its compression level
(``c23``: H.264 CRF 23). If the other videos were FF++'s own files, a detector could separate the refined
fakes from the rest by the second encode or by the mark instead of by the face. :func:`reencode_for_parity`
gives a video the same path: decoded, marked with nice-core's watermark and encoded with the refined
outputs' settings. A real video carries the parity payload (never a synthetic output's) and ``nice-core
verify`` reports it as "original footage re-encoded for data-set parity"; a fake (FF++'s per-frame swap, or
a real video made into the watermark probe's stand-in) carries a synthetic output's label and payload.

A fake that nice-core labelled already (a per-frame proxy from ``nice-core bench make`` or ``nice-core swap``
standing in for FF++'s) is re-encoded the same way but keeps its own label and mark: a second mark on the
first would make its mark twice as strong as every other video's. A real video or a probe copy is never made
from a nice-core output, and a parity copy is never re-encoded again.
"""

from __future__ import annotations

from pathlib import Path

from nice_core.detect.study import PARITY_AS
from nice_core.errors import InputError
from nice_core.inputs.ffpp import ffpp_encoding
from nice_core.io import VideoReader, probe_video
from nice_core.io.probe import container_tags
from nice_core.io.writer import EncodeOptions, OutputLabel, VideoWriter
from nice_core.provenance.label import carried_label, parity_label, synthetic_label

__all__ = ["reencode_for_parity"]


PER_FRAME_KIND = "face manipulation (a per-frame swap re-encoded for data-set parity)"


def _label(video: str | Path, labelled_as: str) -> OutputLabel:
    """The copy's label; a nice-core synthetic output keeps its own (refused unless it is a fake)."""
    tags = container_tags(video)
    if tags.get("generator", "").startswith("nice-core"):
        if tags.get("nice_core_parity") == "true":
            raise InputError(f"{video} is a parity copy already (written by {tags['generator']}); re-encode the "
                             "FF++ file itself (a second pass would stack a second mark on the first)")
        if labelled_as != "fake" or tags.get("synthetic_media") != "true":
            raise InputError(f"{video} is a nice-core output already (written by {tags['generator']}); only a fake "
                             f"can be re-encoded from one, not a {labelled_as} copy: re-encode the FF++ file itself")
        return carried_label(video, tags, "per-frame", kind=f"{PER_FRAME_KIND}; its own mark, not stamped again")
    if labelled_as == "real":
        return parity_label({"original": video})
    if labelled_as == "fake":
        return synthetic_label({"per-frame": video}, kind=PER_FRAME_KIND, visible=False)
    return synthetic_label({"original": video}, kind="watermark probe (original footage marked like a synthetic "
                                                     "output, for a detector study)", visible=False)


def reencode_for_parity(video: str | Path, output: str | Path, compression: str = "c23",
                        preset: str | None = None, labelled_as: str = "real") -> Path:
    """Write ``output``: ``video`` decoded and re-encoded like a refined video of ``compression``, marked and
    labelled as ``labelled_as`` (one of :data:`PARITY_AS`; audio stream-copied; written atomically; ``video``
    is never overwritten). A ``fake`` that nice-core labelled keeps its label and mark (see the module notes).

    Args:
        video: an FF++ video (an original or a per-frame swap).
        output: the re-encoded copy (``.mp4`` or ``.mkv``).
        compression: the FF++ level whose encoding the refined videos use (``raw``, ``c23``, ``c40``).
        preset: the x264 preset (default: the config's ``encode.preset``, as for the refined videos).
        labelled_as: ``real``, ``fake`` or ``probe`` (see :data:`PARITY_AS`).

    Raises:
        InputError: ``video`` is a parity copy, or a nice-core output asked to become a ``real`` or ``probe``
            copy (index the FF++ file).
    """
    if labelled_as not in PARITY_AS:
        raise ValueError(f"labelled_as must be one of {', '.join(PARITY_AS)}, got {labelled_as!r}")
    label = _label(video, labelled_as)
    encode = EncodeOptions(**ffpp_encoding(compression), **({"preset": preset} if preset else {}))
    probe = probe_video(video)
    with VideoReader(video, probe) as reader, VideoWriter(output, probe.width, probe.height, probe.fps,
                                                           label=label,
                                                           audio_from=video, encode=encode) as writer:
        for _, frame in reader.iter_frames():
            writer.write(frame)
    return Path(output)

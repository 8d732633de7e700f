"""The study's encoding parity: real videos go through the same decoder, encoder and watermark as refined ones.

A refined FF++ video is decoded, composited, watermarked and encoded by nice-core at its compression level
(``c23``: H.264 CRF 23). If its real counterparts were FF++'s own files, a detector could separate the
classes by the second encode or by the mark instead of by the face. :func:`reencode_for_parity` gives a real
video the same path: decoded, marked with nice-core's watermark carrying the parity payload (never a
synthetic output's), and encoded with the refined outputs' settings. ``nice-core verify`` reports such a file
as "original footage re-encoded for data-set parity", never as synthetic.
"""

from __future__ import annotations

from pathlib import Path

from nice_core.inputs.ffpp import ffpp_encoding
from nice_core.io import VideoReader, probe_video
from nice_core.io.writer import EncodeOptions, VideoWriter
from nice_core.provenance.label import parity_label

__all__ = ["reencode_for_parity"]


def reencode_for_parity(video: str | Path, output: str | Path, compression: str = "c23",
                        preset: str | None = None) -> Path:
    """Write ``output``: ``video`` decoded and re-encoded like a refined video of ``compression``, with the
    parity mark and label (audio stream-copied; written atomically; ``video`` is never overwritten).

    Args:
        video: a real video.
        output: the re-encoded copy (``.mp4`` or ``.mkv``).
        compression: the FF++ level whose encoding the refined videos use (``raw``, ``c23``, ``c40``).
        preset: the x264 preset (default: the config's ``encode.preset``, as for the refined videos).
    """
    encode = EncodeOptions(**ffpp_encoding(compression), **({"preset": preset} if preset else {}))
    probe = probe_video(video)
    with VideoReader(video, probe) as reader, VideoWriter(output, probe.width, probe.height, probe.fps,
                                                           label=parity_label({"original": video}),
                                                           audio_from=video, encode=encode) as writer:
        for _, frame in reader.iter_frames():
            writer.write(frame)
    return Path(output)

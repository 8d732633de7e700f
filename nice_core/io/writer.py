"""Video writing through ffmpeg (ffmpeg-python builds the command): frames are piped in as raw RGB.

* the exact frame rate is kept (``24000/1001`` stays ``24000/1001``);
* the audio of ``audio_from`` (the target video) is stream-copied, bit for bit;
* the write is atomic: a temporary file beside the output, renamed when ffmpeg succeeds;
* an input is never overwritten;
* every file carries a label (:class:`OutputLabel`, required): container tags, a mark stamped on every
  frame, and a seal on the finished file. The pipeline's is the synthetic-media label of
  :func:`nice_core.provenance.synthetic_label`; this module knows only the label's shape, so the ground
  floor imports nothing above it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import ffmpeg
import numpy as np

from nice_core.config import default
from nice_core.errors import DISK_FULL, OutputError
from nice_core.io.atomic import refuse_input_overwrite, temporary_sibling
from nice_core.io.threads import thread_budget


def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``$NICE_FFMPEG`` if set, else the one bundled with imageio-ffmpeg."""
    if exe := os.environ.get("NICE_FFMPEG"):
        return exe
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class OutputLabel(Protocol):
    """What marks a written video as what it is. :class:`VideoWriter` requires one.

    ``sources`` are the files the output was made from (never overwritten); ``tags`` go into the container;
    ``stamp`` marks each ``(H, W, 3)`` ``uint8`` frame before it is encoded; ``seal`` runs on the finished
    temporary file (``name`` is its final path) before it moves into place.
    """

    sources: tuple[Path, ...]
    tags: Mapping[str, str]

    def stamp(self, frame: np.ndarray) -> np.ndarray: ...

    def seal(self, path: Path, name: Path) -> None: ...


@dataclass
class EncodeOptions:
    """How videos are encoded. ``crf``/``preset`` are skipped when ``None`` (codecs without them).

    The label settings are read by :func:`nice_core.provenance.synthetic_label`, not by the writer:
    ``visible_label`` draws a visible "SYNTHETIC" mark on every frame, for publishing (the metadata label and
    the invisible watermark are always there); ``c2pa_key``/``c2pa_cert`` (PEM files) also sign a C2PA
    manifest declaring the AI-generated edit.
    """

    codec: str = default("encode.codec")
    crf: int | None = default("encode.crf")
    preset: str | None = default("encode.preset")
    pix_fmt: str = "yuv420p"
    visible_label: bool = default("encode.visible_label")
    c2pa_key: str = ""
    c2pa_cert: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def coded_size(self, width: int, height: int) -> tuple[int, int]:
        """The size a ``width x height`` picture is encoded at: 4:2:0 and 4:2:2 chroma needs an even width
        (and 4:2:0 an even height), so an odd side gets one more pixel (:class:`VideoWriter` repeats the last
        row or column). 4:4:4 H.264 would keep the size, but many players refuse it."""
        even_width = "420" in self.pix_fmt or "422" in self.pix_fmt
        even_height = "420" in self.pix_fmt
        return width + (width % 2 if even_width else 0), height + (height % 2 if even_height else 0)

    def output_kwargs(self) -> dict[str, object]:
        kwargs: dict[str, object] = {"vcodec": self.codec, "pix_fmt": self.pix_fmt}
        if self.crf is not None:
            kwargs["crf"] = self.crf
        if self.preset is not None:
            kwargs["preset"] = self.preset
        kwargs.update(self.extra)
        return kwargs


def _has_audio(path: Path) -> bool:
    import av

    with av.open(str(path)) as container:
        return bool(container.streams.audio)


class VideoWriter:
    """Write ``(H, W, 3)`` ``uint8`` RGB frames to a labelled video file, atomically.

    Args:
        path: output file (its extension picks the container).
        width, height: frame size.
        fps: exact frame rate, e.g. ``Fraction(24000, 1001)``.
        label: what marks the output (:func:`nice_core.provenance.synthetic_label`); required.
        audio_from: a video whose first audio stream is copied untouched (skipped if it has none).
        encode: codec and quality.
        protect: more paths that must never be overwritten (the label's sources never are).

    Use as a context manager: an exception inside the block removes the partial file.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: Fraction,
        *,
        label: OutputLabel,
        audio_from: str | Path | None = None,
        encode: EncodeOptions | None = None,
        protect: tuple[str | Path, ...] = (),
    ) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        if self.width <= 0 or self.height <= 0:
            raise OutputError(f"invalid frame size {width}x{height} for {path}")
        if label is None:
            raise OutputError(f"{path}: every video written carries a label; pass label= "
                              "(nice_core.provenance.synthetic_label)")
        self.label = label
        refuse_input_overwrite(self.path, [audio_from, *label.sources, *protect])
        self.frames_written = 0
        self._tmp = temporary_sibling(self.path)
        self._log = self._tmp.with_suffix(".log")
        encode = encode or EncodeOptions()

        self.coded_width, self.coded_height = encode.coded_size(self.width, self.height)
        if (self.coded_width, self.coded_height) != (self.width, self.height):
            print(f"nice-core: note: {self.path.name}: the frame size {self.width}x{self.height} is odd; written "
                  f"as {self.coded_width}x{self.coded_height} (the last row/column repeated), as {encode.pix_fmt} "
                  "needs even sizes", file=sys.stderr)
        video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24",
                             s=f"{self.coded_width}x{self.coded_height}", framerate=str(Fraction(fps)))
        streams = [video.video]
        kwargs = encode.output_kwargs()
        if (threads := thread_budget()) is not None:
            kwargs.setdefault("threads", threads)  # x264 would take 1.5 threads per core of the node
        if audio_from is not None and _has_audio(Path(audio_from)):
            streams.append(ffmpeg.input(str(audio_from)).audio)
            kwargs["acodec"] = "copy"
        check_output_format(self.path, encode.codec)
        kwargs["f"] = _muxer_for(self.path)
        if kwargs["f"] in ("mp4", "mov"):
            kwargs["movflags"] = "+use_metadata_tags"
        args = ffmpeg.output(*streams, str(self._tmp), **kwargs).overwrite_output().compile(cmd=ffmpeg_exe())
        metadata = [item for key, value in label.tags.items() for item in ("-metadata", f"{key}={value}")]
        at = args.index(str(self._tmp))
        args = [*args[:at], *metadata, *args[at:]]
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` ``uint8`` RGB frame."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            self.abort()
            raise OutputError(
                f"frame {self.frames_written} has shape {frame.shape} {frame.dtype}, "
                f"expected ({self.height}, {self.width}, 3) uint8"
            )
        if (self.coded_width, self.coded_height) != (self.width, self.height):
            frame = np.pad(frame, ((0, self.coded_height - self.height), (0, self.coded_width - self.width), (0, 0)),
                           mode="edge")
        frame = self.label.stamp(frame)
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            self._fail("ffmpeg stopped reading frames")
        self.frames_written += 1

    def close(self) -> Path:
        """Finish the file and move it into place. Returns the final path."""
        self._proc.stdin.close()
        if self._proc.wait() != 0:
            self._fail(f"ffmpeg exited with status {self._proc.returncode}")
        if self.frames_written == 0:
            self._fail("no frames were written")
        try:
            self.label.seal(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        os.replace(self._tmp, self.path)
        self._log.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and delete the partial output."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        self._tmp.unlink(missing_ok=True)
        self._log.unlink(missing_ok=True)

    def _fail(self, what: str) -> None:
        lines = self._log.read_text(errors="replace").strip().splitlines() if self._log.exists() else []
        self.abort()
        if any(DISK_FULL in line for line in lines):
            raise OutputError(f"no space left on device writing {self.path}")
        cause = ffmpeg_cause(lines)
        raise OutputError(f"writing {self.path} failed, {what}" + (f": {cause[:300]}" if cause else ""))

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


#: ffmpeg's closing lines that only say *that* it failed, not why.
_GENERIC = ("Conversion failed!", "Error while filtering", "Exiting normally", "Error closing file")


def ffmpeg_cause(lines: list[str]) -> str:
    """The line of an ffmpeg log that says why it failed: the last line that names an error and is not one
    of ffmpeg's generic closing lines, else the last line ("" for an empty log)."""
    lines = [line.strip() for line in lines if line.strip()]
    keys = ("error", "invalid", "not supported", "could not", "cannot", "unable", "denied", "no such", "failed")
    telling = [line for line in lines if any(k in line.lower() for k in keys)
               and not any(line.startswith(g) for g in _GENERIC)]
    return (telling or lines or [""])[-1]


#: Containers a video output may use (they carry the metadata label), and the codecs WebM can hold.
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
WEBM_CODECS = ("libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1", "librav1e", "vp8", "vp9", "av1")


def check_output_format(path: str | Path, codec: str) -> None:
    """Refuse, before any work, a container that cannot carry the label or cannot hold ``codec``.

    AVI drops container tags (the metadata label) and mis-times B-frames, so it is refused; WebM holds only
    VP8, VP9 and AV1.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in MUXERS:
        raise OutputError(f"cannot write {path}: {suffix or 'no extension'} is not a supported video container "
                          f"(use {', '.join(MUXERS)}; AVI cannot carry the synthetic-media label)")
    if suffix == ".webm" and codec not in WEBM_CODECS:
        raise OutputError(f"cannot write {path}: WebM cannot hold {codec}; use .mp4/.mkv or --codec libvpx-vp9")


def _muxer_for(path: Path) -> str:
    return MUXERS.get(path.suffix.lower(), "mp4")


def extract_audio(video: str | Path, output: str | Path) -> Path | None:
    """Stream-copy the first audio track of ``video`` into ``output`` (Matroska holds any codec).

    Returns the output path, or ``None`` when the video has no audio (nothing is written then).
    """
    video, output = Path(video), Path(output)
    if not _has_audio(video):
        return None
    refuse_input_overwrite(output, [video])
    tmp = temporary_sibling(output)
    cmd = (ffmpeg.input(str(video)).output(str(tmp), map="0:a:0", acodec="copy", f="matroska")
           .overwrite_output().compile(cmd=ffmpeg_exe()))
    result = subprocess.run(cmd, capture_output=True)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        cause = ffmpeg_cause(result.stderr.decode(errors="replace").splitlines())
        raise OutputError(f"extracting audio from {video} failed: {cause[:300]}")
    os.replace(tmp, output)
    return output

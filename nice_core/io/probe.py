"""Probe a video before any stage touches it: frames, exact fps, size, rotation, audio.

The probe is also the gatekeeper for bad input. It demuxes and decodes every video packet once (cheap next
to face tracking), so a truncated or corrupt file, a file with zero frames or a variable-frame-rate file
is refused here with one clear :class:`~nice_core.errors.InputError` instead of failing later.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from nice_core.errors import InputError

#: Relative tolerance on frame intervals before a video counts as variable frame rate. Containers with a
#: coarse time base (1/1000 s at 29.97 fps gives intervals of 33 and 34 ticks) must still pass.
VFR_TOLERANCE = 0.05
#: Share of off-rate intervals tolerated. A stream cut with ``-c copy`` or with one dropped frame has a
#: single long interval; frames are addressed by index, so that costs nothing. More means real VFR.
VFR_MAX_OFF_RATE_SHARE = 0.02


@dataclass(frozen=True)
class AudioInfo:
    """The first audio stream of a video."""

    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class VideoProbe:
    """What the pipeline needs to know about a video.

    ``width``/``height`` are the *display* size, after the container's rotation is applied; the reader
    returns frames in that orientation and writers write them that way.
    """

    path: str
    n_frames: int
    fps_num: int
    fps_den: int
    width: int
    height: int
    rotation: int
    duration_s: float
    codec: str
    size_bytes: int
    audio: AudioInfo | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def fps(self) -> Fraction:
        """The exact frame rate, e.g. ``Fraction(24000, 1001)``."""
        return Fraction(self.fps_num, self.fps_den)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["fps"] = f"{self.fps_num}/{self.fps_den}"
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> VideoProbe:
        data = {k: v for k, v in data.items() if k != "fps"}
        if data.get("audio") is not None:
            data["audio"] = AudioInfo(**data["audio"])
        return cls(**data)


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise InputError(f"video not found: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"empty file (0 bytes): {path}")
    try:
        return av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise InputError(f"not a readable video file: {path} ({_reason(err)})") from None


def _reason(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.split(":")[0].strip() or type(err).__name__


def _rotation(frame: av.VideoFrame | None) -> int:
    """Clockwise display rotation in degrees, one of 0, 90, 180, 270."""
    angle = int(round(getattr(frame, "rotation", 0) or 0)) if frame is not None else 0
    return angle % 360


def _frame_rate(stream: av.video.stream.VideoStream, pts: np.ndarray, path: Path) -> Fraction:
    """The exact nominal rate, checked against the packets' timestamps."""
    rate = stream.base_rate or stream.guessed_rate or stream.average_rate
    if len(pts) < 3:
        if not rate:
            raise InputError(f"cannot determine the frame rate of {path}")
        return Fraction(rate)
    intervals = np.diff(np.sort(pts)) * float(stream.time_base)
    intervals = intervals[intervals > 0]
    median = float(np.median(intervals))
    off_rate = np.abs(intervals - median) > max(VFR_TOLERANCE * median, float(stream.time_base) * 1.01)
    if off_rate.mean() > VFR_MAX_OFF_RATE_SHARE:
        raise InputError(
            f"variable frame rate in {path} ({off_rate.sum()} of {len(intervals)} frame intervals off the "
            f"median; intervals from {1000 * intervals.min():.1f} to "
            f"{1000 * intervals.max():.1f} ms); re-encode to a constant rate first, e.g. "
            f"ffmpeg -i IN -fps_mode cfr -r {round(1 / median, 3)} OUT.mp4"
        )
    if not rate or abs(1 / float(rate) - median) > VFR_TOLERANCE * median:
        # The container's nominal rate disagrees with its timestamps; the timestamps are the truth.
        rate = Fraction(1 / median).limit_denominator(1001)
    return Fraction(rate)


def probe_video(path: str | Path) -> VideoProbe:
    """Probe and validate a video file.

    Every video packet is demuxed and decoded once, so the frame count is the number of *decodable*
    frames, and damage anywhere in the stream is found.

    Raises:
        InputError: missing file, not a video, no video stream, truncated/corrupt stream, zero frames,
            or variable frame rate. The message is one line and names the file.
    """
    path = Path(path)
    container = _open(path)
    with container:
        if not container.streams.video:
            raise InputError(f"no video stream in {path}")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        declared = int(stream.frames or 0)
        pts: list[int] = []
        decoded = 0
        first_frame = None
        try:
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    pts.append(packet.pts)
                for frame in packet.decode():
                    decoded += 1
                    if first_frame is None:
                        first_frame = frame
                        width, height = frame.width, frame.height
        except av.FFmpegError as err:
            if decoded == 0:
                raise InputError(f"video has zero decodable frames: {path} ({_reason(err)})") from None
            raise InputError(
                f"video stream is corrupt or truncated in {path} after {decoded} frames ({_reason(err)})"
            ) from None
        if decoded == 0:
            raise InputError(f"video has zero decodable frames: {path}")
        if declared and decoded < declared:
            raise InputError(
                f"video is truncated: {path} declares {declared} frames but only {decoded} can be decoded"
            )
        rate = _frame_rate(stream, np.asarray(pts, dtype=np.int64), path)
        rotation = _rotation(first_frame)
        if rotation in (90, 270):
            width, height = height, width
        audio = None
        if container.streams.audio:
            a = container.streams.audio[0]
            audio = AudioInfo(codec=a.codec_context.name, sample_rate=int(a.sample_rate or 0),
                              channels=int(a.channels or 0))
        return VideoProbe(
            path=str(path),
            n_frames=decoded,
            fps_num=rate.numerator,
            fps_den=rate.denominator,
            width=int(width),
            height=int(height),
            rotation=rotation,
            duration_s=float(decoded / rate),
            codec=stream.codec_context.name,
            size_bytes=path.stat().st_size,
            audio=audio,
            tags={str(k): str(v) for k, v in container.metadata.items()},
        )


#: The settings line libx264 writes into the first picture's SEI ("x264 - core 165 - ... rc=crf ... crf=23.0").
_X264_SETTINGS = re.compile(rb"x264 - core (\d+)[^\x00]*")


def container_tags(path: str | Path) -> dict[str, str]:
    """A file's container tags, names lower-cased (MP4 keeps ``synthetic_media``, Matroska writes
    ``SYNTHETIC_MEDIA``), without decoding a frame."""
    with _open(Path(path)) as container:
        return {str(k).lower(): str(v) for k, v in container.metadata.items()}


def video_encoding(path: str | Path) -> dict[str, object]:
    """How a video's picture is encoded: ``codec``, ``pix_fmt``, ``fps``, and for libx264 output the
    ``encoder`` (``x264 core N``), its rate control ``rc`` and ``crf`` or ``qp`` (CQP 0 is lossless:
    ``lossless``). Read from the stream and the encoder's settings line, so it states what was written,
    not what was asked for. Missing facts are ``None``."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise InputError(f"no video stream in {path}")
        stream = container.streams.video[0]
        info: dict[str, object] = {"codec": stream.codec_context.name, "pix_fmt": stream.codec_context.pix_fmt,
                                   "fps": str(stream.average_rate) if stream.average_rate else None,
                                   "encoder": None, "rc": None, "crf": None, "qp": None, "lossless": None}
        head = b"".join(bytes(packet) for _, packet in zip(range(2), container.demux(stream)))
    match = _X264_SETTINGS.search(head)
    if match is not None:
        options = dict(word.split("=", 1) for word in match.group(0).decode("latin-1").split() if "=" in word)
        info.update(encoder=f"x264 core {int(match.group(1))}", rc=options.get("rc"))
        if options.get("crf") is not None:
            info["crf"] = float(options["crf"])
        if options.get("qp") is not None and options.get("rc") == "cqp":
            info["qp"] = int(options["qp"])
        info["lossless"] = info["rc"] == "cqp" and info["qp"] == 0
    return info


def describe_encoding(info: dict[str, object]) -> str:
    """One short line for a report: ``h264 yuv420p CRF 23`` / ``h264 yuv420p lossless``."""
    words = [str(info.get("codec")), str(info.get("pix_fmt"))]
    if info.get("lossless"):
        words.append("lossless")
    elif info.get("crf") is not None:
        words.append(f"CRF {float(info['crf']):g}")
    elif info.get("qp") is not None:
        words.append(f"QP {info['qp']}")
    return " ".join(words)

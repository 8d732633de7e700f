"""Frames and a side-by-side clip for the per-video report, embedded as data URIs so the page stays one file.

:func:`collect_media` reads the videos an eval JSON names and returns :class:`Media`:

* **frame strips**: :data:`STRIP_FRAMES` frames at the centres of equal parts of the clip, one row per video
  (target, proxy, evaluated video, the carrier's uncertainty video). Each thumbnail is :data:`THUMB` pixels
  square, JPEG (quality :data:`JPEG_QUALITY`), cropped around the target's face at that frame: a square of
  :data:`FACE_MARGIN` times the extent of the target's face-mesh landmarks, the same box on every row
  (scaled to each video's size). Where the target shows no face (or is missing) the full frame is fitted
  into the square. The uncertainty video is already a face crop: it is shown whole, downscaled.
* **side by side**: target | proxy | evaluated video, each :data:`VIDEO_HEIGHT` pixels high with its name
  drawn in, the first :data:`VIDEO_MAX_FRAMES` frames at the clip's rate, H.264 CRF :data:`VIDEO_CRF`. It is
  written by :class:`~nice_core.io.writer.VideoWriter`, so it carries the synthetic-media metadata label, the
  invisible watermark and a visible "SYNTHETIC" mark.

Caps, so a page stays small and quick to make whatever the clip: 24 thumbnails of about 5 to 10 kB, and at
most :data:`VIDEO_MAX_FRAMES` frames of a ``3 x 426 x 240`` video (a few hundred kB); base64 adds a third.

Frames are read by index with :class:`~nice_core.io.VideoReader`, which decodes on through a GOP instead of
seeking back to its keyframe for each sampled frame, so a strip costs at most one decode of each clip. A
video with ``k`` more frames than the target is read at ``t + k``, the constant offset ``nice-core eval``
accepts. A missing or unreadable video never fails the page: its row or panel says why it is unavailable.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from nice_core.errors import InputError, OutputError
from nice_core.io import VideoReader
from nice_core.provenance import synthetic_label

#: Frames shown per strip.
STRIP_FRAMES = 6
#: Side of a thumbnail, in pixels.
THUMB = 144
#: The face box's side over the larger extent of the target's landmarks.
FACE_MARGIN = 1.5
JPEG_QUALITY = 82
#: Height of each panel of the side-by-side video, in pixels.
VIDEO_HEIGHT = 240
#: Frames of the side-by-side video (the first ones of the clip): 5 s at 24 fps.
VIDEO_MAX_FRAMES = 120
VIDEO_CRF = 28
#: What the side-by-side video's synthetic-media label calls it.
VIDEO_KIND = "side-by-side comparison of a face manipulation"
#: Letterbox colour of thumbnails that show a whole frame (the table header's grey).
PAD_COLOR = (241, 243, 245)

_READ_ERRORS = (InputError, OutputError, OSError, ValueError, IndexError, av.FFmpegError)


@dataclass(frozen=True)
class Source:
    """One video the report shows: its eval-JSON key, its label, the path as given, the file found or why not."""

    role: str
    label: str
    given: str | None
    path: Path | None
    problem: str | None = None


@dataclass(frozen=True)
class StripRow:
    """One row of thumbnails: a data URI per sampled frame (``None`` where it could not be read)."""

    label: str
    given: str | None
    images: tuple[str | None, ...]
    problem: str | None = None


@dataclass(frozen=True)
class Media:
    """What the report embeds for one video.

    Args:
        total: frames of the clip (the target's).
        indices: the sampled frames (0-based), one per strip column.
        fps: the clip's rate, or ``None`` when unknown.
        rows: one per video, in report order.
        face_columns: how many columns are cropped around a face (the others show whole frames).
        video: the side-by-side video as a ``data:video/mp4`` URI, or ``None``.
        video_size: its ``(width, height)``.
        video_frames: its frame count.
        video_bytes: the mp4's size before base64.
        video_panels: the labels of its panels, left to right.
        video_problem: why it is missing or lacks a panel, else ``None``.
    """

    total: int
    indices: tuple[int, ...]
    fps: Fraction | None
    rows: tuple[StripRow, ...]
    face_columns: int = 0
    video: str | None = None
    video_size: tuple[int, int] = (0, 0)
    video_frames: int = 0
    video_bytes: int = 0
    video_panels: tuple[str, ...] = ()
    video_problem: str | None = None


def find_source(role: str, label: str, given: object, root: str | Path | None = None) -> Source:
    """The file ``given`` names: absolute, else relative to the working directory, else to ``root``."""
    if not isinstance(given, str) or not given:
        return Source(role, label, None, None, "not given")
    path = Path(given)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, *([Path(root) / path] if root else [])]
    for candidate in candidates:
        if candidate.is_file():
            return Source(role, label, given, candidate)
    return Source(role, label, given, None, "file not found")


def parse_fps(value: object) -> Fraction | None:
    """``"24000/1001"`` or a number as a positive :class:`~fractions.Fraction`, else ``None``."""
    try:
        fps = Fraction(str(value)) if value is not None else None
    except (ValueError, ZeroDivisionError):
        return None
    return fps if fps is not None and fps > 0 else None


def sample_indices(total: int, count: int = STRIP_FRAMES) -> tuple[int, ...]:
    """``count`` frame indices at the centres of equal parts of ``total`` frames (fewer for short clips)."""
    if total <= 0:
        return ()
    return tuple(sorted({min(total - 1, int((j + 0.5) * total / count)) for j in range(count)}))


def face_box(landmarks: np.ndarray, size: tuple[int, int], margin: float = FACE_MARGIN) -> tuple[float, ...]:
    """A square around the landmarks, inside the frame, as fractions ``(x0, y0, w, h)`` of a ``(H, W)`` frame."""
    height, width = size
    low, high = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
    centre = (low + high) / 2
    side = min(max(float((high - low).max()) * margin, 16.0), width, height)
    x0 = float(np.clip(centre[0] - side / 2, 0, width - side))
    y0 = float(np.clip(centre[1] - side / 2, 0, height - side))
    return x0 / width, y0 / height, side / width, side / height


def thumbnail(frame: np.ndarray, box: tuple[float, ...] | None, side: int = THUMB) -> np.ndarray:
    """A ``side x side`` RGB thumbnail: ``box`` (fractions, see :func:`face_box`) cropped, else the frame fitted."""
    height, width = frame.shape[:2]
    if box is not None:
        x0, y0 = int(round(box[0] * width)), int(round(box[1] * height))
        x1 = max(x0 + 1, min(width, int(round((box[0] + box[2]) * width))))
        y1 = max(y0 + 1, min(height, int(round((box[1] + box[3]) * height))))
        return shrink(frame[y0:y1, x0:x1], side, side)
    scale = side / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    out = np.empty((side, side, 3), np.uint8)
    out[:] = PAD_COLOR
    top, left = (side - h) // 2, (side - w) // 2
    out[top:top + h, left:left + w] = shrink(frame, w, h)
    return out


def shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` resized to ``width x height``: halved by pixel area while twice as large, then bilinear.

    Close to one area resize and several times faster (OpenCV's area resize is quick only at integer
    factors); the last step is below 2x, where bilinear aliases little.
    """
    import cv2

    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def jpeg_data_uri(image: np.ndarray, quality: int = JPEG_QUALITY) -> str:
    """An RGB ``uint8`` image as a ``data:image/jpeg;base64,`` URI."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OutputError("cannot encode a thumbnail as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _labelled(frame: np.ndarray, text: str) -> np.ndarray:
    """``frame`` with ``text`` in a dark box in its top-left corner."""
    import cv2

    scale, thickness = 0.5, 1
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    out = frame.copy()
    box = out[4:4 + th + base + 6, 4:min(4 + tw + 8, out.shape[1])]
    box[:] = (box * 0.35).astype(np.uint8)
    cv2.putText(out, text, (8, 4 + th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)
    return out


def _error_text(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0][:200] or type(err).__name__


class _Faces:
    """The target's face box at a frame, by face mesh on stills; ``None`` where no face (or no detector)."""

    def __init__(self) -> None:
        self._detector = None
        self.failed = False

    def box(self, frame: np.ndarray) -> tuple[float, ...] | None:
        from nice_core.face.landmarks import FaceMeshDetector, native_stderr_silenced

        if self.failed:
            return None
        try:
            with native_stderr_silenced():
                if self._detector is None:
                    self._detector = FaceMeshDetector(max_faces=1, static_image_mode=True)
                faces = self._detector.detect(frame)
        except (ImportError, RuntimeError, ValueError):  # no working face mesh: whole frames, not a failure
            self.failed = True
            return None
        return face_box(faces[0], frame.shape[:2]) if faces else None

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()


class _Video:
    """An open source video: its reader and its offset against the clip (``len - total`` when longer)."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.reader: VideoReader | None = None
        self.problem = source.problem
        self.offset = 0
        if source.path is not None:
            try:
                self.reader = VideoReader(source.path)
            except _READ_ERRORS as err:
                self.problem = f"cannot read it: {_error_text(err)}"

    def align(self, total: int) -> None:
        if self.reader is not None:
            self.offset = max(0, len(self.reader) - total)

    def frame(self, index: int) -> np.ndarray | None:
        """The frame showing clip frame ``index``, or ``None`` (the first failure is kept as the problem)."""
        if self.reader is None:
            return None
        try:
            return self.reader[min(index + self.offset, len(self.reader) - 1)]
        except _READ_ERRORS as err:
            self.problem = self.problem or f"cannot read frame {index + self.offset}: {_error_text(err)}"
            self.close()
            return None

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None


def collect_media(target: Source, videos: Sequence[Source], uncertainty: Source | None = None,
                  total: int | None = None, fps: Fraction | None = None, strip_frames: int = STRIP_FRAMES,
                  video_frames: int = VIDEO_MAX_FRAMES) -> Media:
    """Read the thumbnails and make the side-by-side video (see the module docstring).

    Args:
        target: the original footage: first row, first panel, and the face boxes.
        videos: the proxy and the evaluated video (rows and panels, in that order).
        uncertainty: the carrier's uncertainty video (a row, not a panel), if any.
        total: the clip's frame count (default: the target's, else the first readable video's).
        fps: the clip's rate (default: the first readable video's).
        strip_frames: thumbnails per row.
        video_frames: the side-by-side video's frame cap; 0 makes none.
    """
    panels = [_Video(source) for source in (target, *videos)]
    extra = [_Video(uncertainty)] if uncertainty is not None else []
    everything = [*panels, *extra]
    faces = _Faces()
    try:
        readable = [v.reader for v in everything if v.reader is not None]
        if total is None or total <= 0:
            total = len(panels[0].reader) if panels[0].reader is not None else len(readable[0]) if readable else 0
        if fps is None and readable:
            fps = readable[0].probe.fps
        for video in everything:
            video.align(total)
        indices = sample_indices(total, strip_frames)
        thumbs: dict[int, list[str | None]] = {id(v): [None] * len(indices) for v in everything}
        boxes: dict[int, tuple[float, ...] | None] = {}

        def strip_column(column: int, frames: dict[int, np.ndarray | None]) -> None:
            """Thumbnails of column ``column`` from ``frames`` (by video id); the videos not in it are read."""
            frames = {id(v): frames[id(v)] if id(v) in frames else v.frame(indices[column]) for v in everything}
            target_frame = frames[id(panels[0])]
            boxes[column] = faces.box(target_frame) if target_frame is not None else None
            for video in everything:
                frame = frames[id(video)]
                if frame is not None:
                    box = None if video in extra else boxes[column]
                    thumbs[id(video)][column] = jpeg_data_uri(thumbnail(frame, box))

        sbs = _side_by_side(panels, total, fps, video_frames, indices, strip_column)
        for column in range(len(indices)):
            if column not in boxes:
                strip_column(column, {})
        rows = []
        for video in everything:
            images = tuple(thumbs[id(video)])
            problem = video.problem or (None if all(images) else "some frames could not be read")
            rows.append(StripRow(video.source.label, video.source.given, images, problem))
        return Media(total=total, indices=indices, fps=fps, rows=tuple(rows),
                     face_columns=sum(box is not None for box in boxes.values()), **sbs)
    finally:
        faces.close()
        for video in everything:
            video.close()


def _side_by_side(panels: list[_Video], total: int, fps: Fraction | None, cap: int, indices: Sequence[int],
                  strip_column) -> dict:
    """Write the side-by-side video (taking strip columns on the way); the :class:`Media` fields about it."""
    from nice_core.io.writer import EncodeOptions, VideoWriter

    shown = [v for v in panels if v.reader is not None]
    missing = [f"{v.source.label} ({v.problem})" for v in panels if v.reader is None]
    frames = min(total, cap)
    if not shown or frames <= 0:
        why = "no readable video" if not shown else "no frames"
        return {"video_problem": why + (f": {'; '.join(missing)}" if missing else "")}
    height, width = shown[0].reader.shape
    panel_w = max(2, 2 * round(VIDEO_HEIGHT * width / height / 2))
    panel_w = min(panel_w, 2 * VIDEO_HEIGHT)
    columns = {index: column for column, index in enumerate(indices)}
    labels = {id(v): v.source.label for v in shown}
    with tempfile.TemporaryDirectory(prefix="nice-report-") as tmp:
        out = Path(tmp) / "side_by_side.mp4"
        try:
            with VideoWriter(out, panel_w * len(shown), VIDEO_HEIGHT, fps or Fraction(25),
                             encode=EncodeOptions(crf=VIDEO_CRF, preset="medium"),
                             label=synthetic_label({v.source.role: v.source.path for v in shown}, VIDEO_KIND,
                                                   visible=True)) as writer:
                for t in range(frames):
                    read = {id(v): v.frame(t) for v in panels}
                    if t in columns:
                        strip_column(columns[t], read)
                    if any(read[id(v)] is None for v in shown):
                        broken = [f"{v.source.label} ({v.problem})" for v in shown if read[id(v)] is None]
                        raise OutputError("; ".join(broken))
                    writer.write(np.concatenate(
                        [_labelled(shrink(read[id(v)], panel_w, VIDEO_HEIGHT), labels[id(v)]) for v in shown],
                        axis=1))
        except _READ_ERRORS as err:
            return {"video_problem": f"cannot make it: {_error_text(err)}"}
        data = out.read_bytes()
    return {
        "video": "data:video/mp4;base64," + base64.b64encode(data).decode("ascii"),
        "video_size": (panel_w * len(shown), VIDEO_HEIGHT), "video_frames": frames, "video_bytes": len(data),
        "video_panels": tuple(labels.values()),
        "video_problem": f"not shown: {'; '.join(missing)}" if missing else None,
    }

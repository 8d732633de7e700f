"""The face crop/alignment stage for one video: track one subject, align, crop, mask, store.

Two streaming passes over the video keep memory bounded whatever the clip length:

1. detect: face mesh (and hands) on every frame, and shot cuts (:mod:`nice_core.face.shots`); the
   subject's landmarks go into the store a few frames later (once no cut can re-decide them); only four
   alignment numbers per frame stay in memory;
2. crop: fill short gaps, smooth the alignment (each shot apart), then write crops, masks and pose per
   frame, and the preview video.

The store and preview are written to temporary names and renamed only when the whole stage succeeds.
"""

from __future__ import annotations

import json
import os
import sys
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from nice_core.chain import WorkFiles
from nice_core.config import default
from nice_core.errors import NoFaceError, OutputError, is_disk_full
from nice_core.face.alignment import alignment_params, apply_affine, crop_matrix, smooth_params
from nice_core.face.landmarks import FaceMeshDetector, HandDetector, native_stderr_silenced
from nice_core.face.mask import face_mask
from nice_core.face.pose import head_pose
from nice_core.face.preview import draw_preview
from nice_core.face.shots import LAG, ShotDetector, shot_ids
from nice_core.face.subject import (
    SubjectRule,
    SubjectTracker,
    face_box,
    gap_runs,
    interpolate_run,
    reference_distance,
)
from nice_core.io.atomic import temporary_sibling
from nice_core.io.digest import file_sha256
from nice_core.io.probe import VideoProbe, probe_video
from nice_core.io.reader import VideoReader
from nice_core.io.writer import EncodeOptions, VideoWriter
from nice_core.progress import progress
from nice_core.provenance import synthetic_label
from nice_core.store import MAX_HANDS, FaceStore

#: Frames buffered in memory before a write to the store.
WRITE_BLOCK = 32


@dataclass
class TrackConfig:
    """Settings of the tracking/alignment stage (``face:`` in ``config.yaml``)."""

    crop_size: int = default("face.crop_size")
    crop_scale: float = default("face.crop_scale")
    subject: str = default("face.subject")
    max_faces: int = default("face.max_faces")
    min_detection_confidence: float = default("face.min_detection_confidence")
    min_tracking_confidence: float = default("face.min_tracking_confidence")
    max_gap_s: float = default("face.max_gap_s")
    smooth_sigma_s: float = default("face.smooth_sigma_s")
    mask_feather: float = default("face.mask_feather")
    detect_hands: bool = default("face.detect_hands")
    shot_cuts: bool = default("face.shot_cuts")
    min_shot_s: float = default("face.min_shot_s")
    preview: bool = default("face.preview")

    def __post_init__(self) -> None:
        if not 32 <= self.crop_size <= 2048:
            raise ValueError(f"crop_size must be in [32, 2048], got {self.crop_size}")
        if self.crop_scale <= 0:
            raise ValueError(f"crop_scale must be > 0, got {self.crop_scale}")
        if self.max_gap_s < 0 or self.smooth_sigma_s < 0:
            raise ValueError("max_gap_s and smooth_sigma_s must be >= 0")
        if self.min_shot_s <= 0:
            raise ValueError(f"min_shot_s must be > 0, got {self.min_shot_s}")
        if not 0 <= self.mask_feather < 0.5:
            raise ValueError(f"mask_feather must be in [0, 0.5), got {self.mask_feather}")
        SubjectRule.parse(self.subject)


@dataclass(frozen=True)
class TrackResult:
    """What :func:`track_video` produced."""

    store: Path
    preview: Path | None
    frames_with_face: int
    frames_detected: int
    n_frames: int

    def summary(self) -> str:
        return f"{self.frames_with_face}/{self.n_frames} frames with a face"


@dataclass
class _Frame:
    """One frame's detections while it may still be re-decided (a cut found up to :data:`LAG` frames later)."""

    index: int
    image: np.ndarray
    faces: list[np.ndarray]
    subject: np.ndarray | None = None
    hands: np.ndarray | None = None


class _DetectPass:
    """Pass 1's state: the subject tracker, the shot detector, and the last frames not yet final."""

    def __init__(self, store: FaceStore, config: TrackConfig, fps: float, distance_for) -> None:
        self.store, self.config, self.distance_for = store, config, distance_for
        self.mesh = FaceMeshDetector(config.max_faces, config.min_detection_confidence,
                                     config.min_tracking_confidence)
        self.hands_model = HandDetector(MAX_HANDS) if config.detect_hands else None
        self.tracker = SubjectTracker(SubjectRule.parse(config.subject),
                                      reacquire_after=max(1, int(round(2 * config.max_gap_s * fps))))
        self.shots = ShotDetector(max(1, round(config.min_shot_s * fps))) if config.shot_cuts else None
        self.params = np.full((store.n_frames, 4), np.nan)
        self.pending: deque[_Frame] = deque()
        self.block_start, self.blocks = 0, {"landmarks": [], "hands": []}

    def feed(self, index: int, image: np.ndarray) -> None:
        frame = _Frame(index, image, self.mesh.detect(image))
        self._choose(frame)
        self.pending.append(frame)
        for cut in self.shots.feed(index, image) if self.shots is not None else ():
            self.tracker.cut()  # the subject is chosen again from the cut on, as on a first frame
            for waiting in self.pending:
                if waiting.index >= cut:
                    self._choose(waiting)
        while len(self.pending) > LAG + 1:
            self._finish(self.pending.popleft())

    def _choose(self, frame: _Frame) -> None:
        distance = self.distance_for(frame.image) if self.distance_for else None
        frame.subject = self.tracker.update(frame.faces, distance)
        if frame.subject is not None and frame.hands is None and self.hands_model is not None:
            frame.hands = np.full((MAX_HANDS, 21, 2), np.nan, dtype=np.float32)
            for slot, hand in enumerate(self.hands_model.detect(frame.image)[:MAX_HANDS]):
                frame.hands[slot] = hand

    def _finish(self, frame: _Frame) -> None:
        landmarks = np.full((478, 3), np.nan, dtype=np.float32)
        hands = np.full((MAX_HANDS, 21, 2), np.nan, dtype=np.float32)
        if frame.subject is not None:
            landmarks = frame.subject
            self.params[frame.index] = alignment_params(frame.subject, self.config.crop_scale)
            if frame.hands is not None:
                hands = frame.hands
        self.blocks["landmarks"].append(landmarks)
        self.blocks["hands"].append(hands)
        if len(self.blocks["landmarks"]) == WRITE_BLOCK or frame.index == self.store.n_frames - 1:
            stop = self.block_start + len(self.blocks["landmarks"])
            for name, rows in self.blocks.items():
                self.store[name][self.block_start:stop] = np.stack(rows)
                rows.clear()
            self.block_start = stop

    def finish(self) -> tuple[np.ndarray, list[int]]:
        """The raw align params of every frame and the cuts found."""
        while self.pending:
            self._finish(self.pending.popleft())
        return self.params, list(self.shots.cuts) if self.shots is not None else []

    def close(self) -> None:
        self.mesh.close()
        if self.hands_model is not None:
            self.hands_model.close()


def _detect_pass(reader: VideoReader, store: FaceStore, config: TrackConfig, fps: float,
                 show: bool, console: TextIO, distance_for) -> tuple[np.ndarray, list[int]]:
    """Pass 1: the subject's landmarks and hands per frame into the store; returns the raw align params and
    the shot cuts. A frame stays open until the shot detector has seen :data:`LAG` frames past it, so a cut
    re-decides the subject of the frames from the cut on."""
    detect = _DetectPass(store, config, fps, distance_for)
    try:
        for index, frame in progress(reader.iter_frames(), total=len(reader), desc="detect", enabled=show,
                                     stream=console):
            detect.feed(index, frame)
        return detect.finish()
    finally:
        detect.close()


def _fill_gaps(store: FaceStore, params: np.ndarray, max_gap: int, shots: np.ndarray) -> np.ndarray:
    """Interpolate landmarks and params across short gaps within a shot; returns the ``has_face`` flags."""
    detected = ~np.isnan(params[:, 0])
    store["detected"][:] = detected
    has_face = detected.copy()
    for start, stop in gap_runs(detected, max_gap):
        if shots[start - 1] != shots[stop]:
            continue  # a gap across a cut: the two shots' faces are not one motion
        before, after = store["landmarks"][start - 1], store["landmarks"][stop]
        store["landmarks"][start:stop] = interpolate_run(before, after, stop - start).astype(np.float32)
        p_before, p_after = params[start - 1].copy(), params[stop].copy()
        p_after[3] = p_before[3] + np.angle(np.exp(1j * (p_after[3] - p_before[3])))  # shortest turn
        params[start:stop] = interpolate_run(p_before, p_after, stop - start)
        has_face[start:stop] = True
    store["has_face"][:] = has_face
    return has_face


def _crop_pass(reader: VideoReader, store: FaceStore, config: TrackConfig, align: np.ndarray,
               has_face: np.ndarray, preview: VideoWriter | None, show: bool) -> None:
    """Pass 2: crops, masks, transforms and pose into the store; preview frames to ``preview``."""
    import cv2

    size = config.crop_size
    detected = store["detected"][:]
    n = len(reader)
    block: dict[str, list[np.ndarray]] = {"crops": [], "masks": [], "transforms": [], "pose": []}
    block_start = 0
    for index, frame in progress(reader.iter_frames(), total=n, desc="crop", enabled=show):
        crop = np.zeros((size, size, 3), np.uint8)
        mask = np.zeros((size, size), np.uint8)
        matrix = np.full((2, 3), np.nan)
        pose = np.full(3, np.nan, np.float32)
        landmarks = hands = None
        if has_face[index]:
            landmarks = store["landmarks"][index]
            hands = [h for h in store["hands"][index] if not np.isnan(h).any()]
            matrix = crop_matrix(align[index], size)
            crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_CUBIC,
                                  borderMode=cv2.BORDER_REPLICATE)
            crop_hands = [apply_affine(matrix, h) for h in hands if _overlaps(h, landmarks)]
            soft = face_mask(apply_affine(matrix, landmarks), crop_hands, size, config.mask_feather)
            mask = np.round(soft * 255).astype(np.uint8)
            pose = head_pose(landmarks, frame.shape[:2])
        for name, value in (("crops", crop), ("masks", mask), ("transforms", matrix), ("pose", pose)):
            block[name].append(value)
        if len(block["crops"]) == WRITE_BLOCK or index == n - 1:
            stop = block_start + len(block["crops"])
            for name, values in block.items():
                store[name][block_start:stop] = np.stack(values)
                values.clear()
            block_start = stop
        if preview is not None:
            preview.write(draw_preview(frame, landmarks, align[index] if has_face[index] else None,
                                       hands or [], bool(detected[index])))


def _overlaps(hand: np.ndarray, landmarks: np.ndarray) -> bool:
    """Does the hand's bounding box touch the face's?"""
    a, b = face_box(hand), face_box(landmarks)
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def track_video(video: str | Path, out_dir: str | Path, config: TrackConfig | None = None,
                probe: VideoProbe | None = None, encode: EncodeOptions | None = None,
                show_progress: bool | None = None) -> TrackResult:
    """Run face tracking and alignment for one video.

    Writes ``out_dir/face.h5`` (the store) and, with ``config.preview``, ``out_dir/preview.mp4``.
    Nothing is left in ``out_dir`` if it fails.

    Raises:
        InputError: the video is unusable (see :func:`~nice_core.io.probe.probe_video`).
        NoFaceError: no face in any frame.
    """
    config = config or TrackConfig()
    show = sys.stderr.isatty() if show_progress is None else show_progress
    video, out_dir = Path(video), Path(out_dir)
    probe = probe or probe_video(video)
    fps = float(probe.fps)
    distance_for = reference_distance(SubjectRule.parse(config.subject))  # checks the reference image first
    out_dir.mkdir(parents=True, exist_ok=True)
    files = WorkFiles(out_dir)
    store_path, preview_path = files.store, files.preview
    tmp_store = temporary_sibling(store_path)
    preview = None
    try:
        with VideoReader(video, probe) as reader:
            n = len(reader)
            attrs = {"video": str(video), "video_sha256": file_sha256(video), "probe": probe.to_dict(),
                     "config": asdict(config), "nice_core_version": _version()}
            with FaceStore.create(tmp_store, n, config.crop_size, attrs) as store:
                with native_stderr_silenced() as console:
                    raw, cuts = _detect_pass(reader, store, config, fps, show, console, distance_for)
                if np.isnan(raw[:, 0]).all():
                    raise NoFaceError(f"no face found in any of the {n} frames of {video}")
                shots = shot_ids(cuts, n)
                store["shot"][:] = shots
                store.h5.attrs["cuts"] = json.dumps(cuts)
                has_face = _fill_gaps(store, raw, int(round(config.max_gap_s * fps)), shots)
                align = smooth_params(raw, has_face, config.smooth_sigma_s * fps, shots)
                store["align_raw"][:] = raw
                store["align"][:] = align
                if config.preview:
                    preview = VideoWriter(preview_path, probe.width, probe.height, probe.fps, encode=encode,
                                          label=synthetic_label({"target": video}, "tracking preview", encode),
                                          protect=(video,))
                _crop_pass(reader, store, config, align, has_face, preview, show)
                frames_with_face = int(has_face.sum())
                frames_detected = int(store["detected"][:].sum())
        if preview is not None:
            preview.close()
        os.replace(tmp_store, store_path)
    except BaseException as err:
        if preview is not None:
            preview.abort()
        tmp_store.unlink(missing_ok=True)
        if isinstance(err, OSError) and is_disk_full(err):
            raise OutputError(f"no space left on device writing {store_path}") from None
        raise
    return TrackResult(store_path, preview_path if config.preview else None, frames_with_face,
                       frames_detected, n)


def _version() -> str:
    from nice_core import __version__

    return __version__



"""Face clips for the detector: windows of consecutive aligned face crops, cut from a video through the
geometry of a tracking store.

A clip is ``length`` *consecutive* frames (flicker lives between neighbouring frames; DeepfakeBench keeps
32 frames spread over a video, so its 16-frame clips skip ~10 frames between samples and never see it).
A window is eligible when every frame has a face and all lie in one shot (:meth:`FaceStore.shots`);
:func:`clip_starts` spreads ``count`` windows evenly over the eligible ones.

The crops are taken with the store's frame -> crop transforms. An FF++ fake (per-frame or refined) is
pixel-aligned with its original, so it is cut through *its original's* store: every condition of the study
sees the same crop geometry, and tracking jitter cannot tell the classes apart. Cached per video in
``clips.h5``: ``clips`` ``(n, T, s, s, 3)`` uint8 and ``starts`` ``(n,)``; attributes ``video``,
``video_sha256``, ``store_sha256``, ``length``, ``size`` and ``encoding`` (:func:`video_path_note`: how the
video reached the detector, which the study's report compares across classes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor

from nice_core.errors import InputError
from nice_core.face.alignment import warp_crop
from nice_core.io.atomic import atomic_output, refuse_input_overwrite
from nice_core.io.digest import file_sha256
from nice_core.io.reader import VideoReader
from nice_core.provenance.watermark import embed
from nice_core.store import FaceStore

__all__ = ["NoClipError", "StoredClips", "clip_starts", "extract_clips", "video_path_note"]


class NoClipError(InputError):
    """A video too short (or too faceless) for one clip: listed in the study's report with this reason."""


def clip_starts(has_face: np.ndarray, shots: np.ndarray, length: int, count: int) -> list[int]:
    """Start frames of up to ``count`` windows of ``length`` consecutive frames, each with a face in every
    frame and inside one shot, spread evenly over the eligible starts (the first and last included).

    Raises:
        NoClipError: no window is eligible (says the longest run of usable frames).
    """
    ok = np.asarray(has_face, bool)
    shots = np.asarray(shots)
    if length < 1 or count < 1:
        raise ValueError(f"need length >= 1 and count >= 1, got {length}, {count}")
    n = ok.size
    if n >= length:
        faces = np.r_[0, np.cumsum(~ok)]
        window_ok = (faces[length:] - faces[:-length]) == 0
        same_shot = shots[: n - length + 1] == shots[length - 1:]
        eligible = np.flatnonzero(window_ok & same_shot)
    else:
        eligible = np.zeros(0, dtype=np.int64)
    if eligible.size == 0:
        runs, run = [0], 0
        for i in range(n):
            run = run + 1 if ok[i] and (run == 0 or shots[i] == shots[i - 1]) else int(ok[i])
            runs.append(run)
        raise NoClipError(f"no {length} consecutive frames with a face in one shot (longest run: {max(runs)} of "
                          f"{n} frames)")
    picks = np.unique(np.round(np.linspace(0, eligible.size - 1, min(count, eligible.size))).astype(int))
    return [int(s) for s in eligible[picks]]


def video_path_note(video: str | Path) -> str:
    """How ``video`` was encoded and by whom, in one line: ``h264 yuv420p CRF 23, written by nice-core`` (a
    refined video, or a parity copy: decoded and encoded again by nice-core's writer, with its mark) or
    ``..., as found``. Two classes whose videos differ here can be told apart by their encoding alone (the
    mark's payload, which parity copies and synthetic outputs do not share, is the watermark probe's)."""
    from nice_core.io.probe import container_tags, describe_encoding, video_encoding

    tags = container_tags(video)
    writer = "written by nice-core" if tags.get("generator", "").startswith("nice-core") else "as found"
    return f"{describe_encoding(video_encoding(video))}, {writer}"


def extract_clips(video: str | Path, store_path: str | Path, output: str | Path, length: int = 16,
                  count: int = 4, size: int = 112, mark: int | None = None) -> Path:
    """Cut ``count`` clips of ``length`` frames from ``video`` through ``store_path``'s crops' geometry,
    resized to ``size`` px, into ``output`` (``clips.h5``, written atomically); one decoded frame in memory
    at a time besides the clips. Returns ``output``.

    ``mark``: embed nice-core's watermark with this payload in every whole frame before it is cropped, as the
    writer does to a refined video (the watermark probe's clips of real videos).

    Raises:
        NoClipError: no eligible window (see :func:`clip_starts`).
        InputError: ``video`` has another frame count than the store's video.
        OutputError: ``output`` is ``video`` or the store.
    """
    import cv2

    video, store_path = Path(video), Path(store_path)
    refuse_input_overwrite(output, [video, store_path])  # before any work
    with FaceStore.open(store_path) as store:
        has_face, shots = store["has_face"][()], store.shots()
        transforms, crop = store["transforms"][()], store.crop_size
    starts = clip_starts(has_face, shots, length, count)
    wanted: dict[int, list[tuple[int, int]]] = {}  # frame -> every (clip, position) that holds it
    for k, s in enumerate(starts):
        for f in range(s, s + length):
            wanted.setdefault(f, []).append((k, f - s))
    clips = np.zeros((len(starts), length, size, size, 3), np.uint8)
    with VideoReader(video) as reader:
        if len(reader) != len(has_face):
            raise InputError(f"{video}: {len(reader)} frames, but the store {store_path} tracked "
                             f"{len(has_face)} (is it the same video's geometry?)")
        last = max(wanted)
        for index, frame in enumerate(reader):
            if index > last:
                break
            if index in wanted:
                if mark is not None:
                    frame = embed(frame, mark)
                image = warp_crop(frame, transforms[index], crop)
                if crop != size:
                    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
                for k, t in wanted[index]:
                    clips[k, t] = image
    with atomic_output(output, [video, store_path]) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("clips", data=clips, chunks=(1, length, size, size, 3))
        h5.create_dataset("starts", data=np.asarray(starts, np.int64))
        h5.attrs.update(video=str(video), video_sha256=file_sha256(video), store_sha256=file_sha256(store_path),
                        length=length, size=size, mark=-1 if mark is None else mark,
                        encoding=video_path_note(video))
    return Path(output)


class StoredClips:
    """The clips of several ``clips.h5`` files as a :class:`~nice_core.detect.train.ClipSet` (labels and
    video ids given per file); clips are read on demand."""

    def __init__(self, files: Sequence[str | Path], labels: Sequence[int], videos: Sequence[str]) -> None:
        if not len(files) == len(labels) == len(videos):
            raise ValueError("need one label and video id per clips file")
        self._where: list[tuple[Path, int]] = []
        self.labels, self.videos = [], []
        self._hashes = []
        #: video id -> how it was encoded (:func:`video_path_note`; ``unknown`` for files cut before it).
        self.encodings: dict[str, str] = {}
        for path, label, video in zip(files, labels, videos, strict=True):
            with h5py.File(path, "r") as h5:
                n = h5["clips"].shape[0]
                self._hashes.append(str(h5.attrs["video_sha256"]))
                self.encodings[video] = str(h5.attrs.get("encoding", "unknown"))
            self._where += [(Path(path), k) for k in range(n)]
            self.labels += [int(label)] * n
            self.videos += [video] * n
        self._open: dict[Path, h5py.File] = {}

    def __len__(self) -> int:
        return len(self._where)

    def clip(self, index: int) -> Tensor:
        path, k = self._where[index]
        if path not in self._open:
            self._open[path] = h5py.File(path, "r")
        data = self._open[path]["clips"][k]  # (T, s, s, 3) uint8
        return torch.from_numpy(np.ascontiguousarray(data)).permute(3, 0, 1, 2).float() / 255.0

    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256("|".join([*self._hashes, *map(str, self.labels), *self.videos]).encode()).hexdigest()[:16]

    def close(self) -> None:
        for h5 in self._open.values():
            h5.close()
        self._open.clear()

"""Frame-accurate video reading with decord: random access by index, bounded memory.

decord decodes on demand (it keeps an index, not the frames), and applies the container's display
rotation, so frames come out upright with the probe's ``width x height``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nice_core.errors import InputError
from nice_core.io.probe import VideoProbe, probe_video


class VideoReader:
    """Read RGB frames of a video by index.

    Args:
        path: the video file.
        probe: its probe, if already computed (otherwise the file is probed and validated here).
        num_threads: decoder threads; 0 lets decord choose.

    Frames are ``(H, W, 3)`` ``uint8`` RGB arrays. ``len(reader)`` is the number of decodable frames.
    """

    def __init__(self, path: str | Path, probe: VideoProbe | None = None, num_threads: int = 0) -> None:
        import decord

        self.path = Path(path)
        self.probe = probe if probe is not None else probe_video(self.path)
        try:
            self._reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=num_threads)
        except Exception as err:  # decord raises its own error types from C++
            raise InputError(f"decord cannot open {self.path}: {str(err).splitlines()[0][:200]}") from None
        # decord's index can list a frame or two that do not decode; the probe counted decodable frames.
        self._length = min(len(self._reader), self.probe.n_frames)

    def __len__(self) -> int:
        return self._length

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of every frame."""
        return self.probe.height, self.probe.width

    def __getitem__(self, index: int) -> np.ndarray:
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(f"frame index {index} out of range for {self._length} frames")
        return self._reader[index].asnumpy()

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` in order; decoding is sequential, one frame in memory at a time."""
        stop = self._length if stop is None else min(stop, self._length)
        if start > 0:
            self._reader.seek_accurate(start)
        else:
            self._reader.seek(0)
        for index in range(start, stop):
            yield index, self._reader.next().asnumpy()

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, frame in self.iter_frames():
            yield frame

    def close(self) -> None:
        self._reader = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

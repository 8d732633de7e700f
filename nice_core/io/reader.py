"""Frame-accurate video reading by index with bounded memory.

Two backends decode the same frames (a test checks they agree bit for bit):

* ``pyav`` (the default): FFmpeg through PyAV. Sequential reads decode one frame at a time; a jump
  forward with no keyframe in between decodes on from the last frame read (converting nothing on the way),
  any other read seeks to the keyframe before the wanted frame and decodes forward to it, so sampling a few
  frames spread over a clip in increasing order costs at most one decode of it. Memory stays flat whatever
  the clip length.
* ``decord``: decord's ``VideoReader``. It is fast at random access, but after the first read it decodes
  the rest of the video in a background thread without any bound (dmlc/decord#157, #208), so memory grows
  by one decoded frame per frame of video when the consumer is slower than the decoder, which every stage
  here is (measured by ``bench/reader_readahead.py``: +357 MB for the 19.7 s sample, about 3.2 GB when
  tracking a 200 s clip). Use it only for short clips.

Frames come out upright (the container's display rotation applied), with the probe's ``width x height``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nice_core.errors import InputError
from nice_core.io.probe import VideoProbe, probe_video
from nice_core.io.threads import thread_budget

BACKENDS = ("pyav", "decord")


class VideoReader:
    """Read RGB frames of a video by index.

    Args:
        path: the video file.
        probe: its probe, if already computed (otherwise the file is probed and validated here).
        backend: ``"pyav"`` (bounded memory) or ``"decord"`` (see the module notes).
        num_threads: decoder threads; 0 lets the decoder choose.

    Frames are ``(H, W, 3)`` ``uint8`` RGB arrays. ``len(reader)`` is the number of decodable frames.
    """

    def __init__(self, path: str | Path, probe: VideoProbe | None = None, backend: str = "pyav",
                 num_threads: int = 0) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.path = Path(path)
        self.probe = probe if probe is not None else probe_video(self.path)
        self.backend = backend
        self._impl = _PyAVFrames(self.path, self.probe, num_threads) if backend == "pyav" else \
            _DecordFrames(self.path, num_threads)
        self._length = min(self._impl.length, self.probe.n_frames)

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
        return self._impl.frame(index)

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` in order from ``start``, decoding sequentially."""
        stop = self._length if stop is None else min(stop, self._length)
        for index in range(start, stop):
            yield index, self._impl.frame(index)

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, frame in self.iter_frames():
            yield frame

    def close(self) -> None:
        self._impl.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PyAVFrames:
    """Decode by index with PyAV: sequential reads continue the decoder, others seek first."""

    def __init__(self, path: Path, probe: VideoProbe, num_threads: int) -> None:
        import av

        self._container = av.open(str(path))
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        num_threads = num_threads or thread_budget() or 0
        if num_threads:
            stream.codec_context.thread_count = num_threads
        self._stream = stream
        # Presentation timestamps of every frame, in order: frame i is the i-th smallest pts.
        packets = [(p.pts, p.is_keyframe) for p in self._container.demux(stream) if p.size and p.pts is not None]
        self._pts = np.sort(np.array([pts for pts, _ in packets], dtype=np.int64))
        # Indices of the keyframes: a forward jump past one seeks, a jump within a GOP decodes on.
        self._keys = np.unique(np.searchsorted(self._pts, [pts for pts, key in packets if key]))
        self.length = len(self._pts)
        self._rotation = probe.rotation
        self._decoder: Iterator | None = None
        self._next = 0  # index of the frame the running decoder yields next
        self._seek(0)

    def _seek(self, index: int) -> None:
        import av

        self._container.seek(int(self._pts[index]), stream=self._stream, backward=True, any_frame=False)
        self._decoder = self._container.decode(self._stream)
        self._next = -1  # unknown until frames are matched by pts
        try:
            while True:
                frame = next(self._decoder)
                if frame.pts is not None and frame.pts >= self._pts[index]:
                    self._pending = frame
                    self._next = index
                    return
        except (StopIteration, av.FFmpegError) as err:
            raise InputError(f"cannot decode frame {index} of {self._container.name}: {err}") from None

    def frame(self, index: int) -> np.ndarray:
        import av

        if index != self._next:
            if self._next < 0 or index < self._next or np.any((self._keys > self._next) & (self._keys <= index)):
                self._seek(index)
            else:
                self._decode_on(index)
        frame = self._pending
        self._next = index + 1
        if self._next < self.length:
            try:
                self._pending = next(self._decoder)
            except (StopIteration, av.FFmpegError):
                self._next = -1  # force a seek on the next read
        return self._to_array(frame)

    def _decode_on(self, index: int) -> None:
        """Run the decoder on to frame ``index`` (ahead of the next one, no keyframe between)."""
        import av

        try:
            while self._pending.pts is None or self._pending.pts < self._pts[index]:
                self._pending = next(self._decoder)
        except (StopIteration, av.FFmpegError):
            self._seek(index)
            return
        self._next = index

    def _to_array(self, frame) -> np.ndarray:
        array = frame.to_ndarray(format="rgb24")
        if self._rotation:
            # PyAV reports the display matrix's counter-clockwise angle; np.rot90 turns counter-clockwise.
            array = np.ascontiguousarray(np.rot90(array, k=self._rotation // 90))
        return array

    def close(self) -> None:
        self._container.close()


class _DecordFrames:
    """decord's reader (applies rotation itself). Unbounded read-ahead: short clips only."""

    def __init__(self, path: Path, num_threads: int) -> None:
        import decord

        try:
            self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=num_threads)
        except Exception as err:  # decord raises its own error types from C++
            raise InputError(f"decord cannot open {path}: {str(err).splitlines()[0][:200]}") from None
        self.length = len(self._reader)
        self._next = 0

    def frame(self, index: int) -> np.ndarray:
        if index != self._next:
            self._reader.seek_accurate(index)
        self._next = index + 1
        return self._reader.next().asnumpy()

    def close(self) -> None:
        self._reader = None

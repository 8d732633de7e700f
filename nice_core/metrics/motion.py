"""The target's motion, computed once per target and read by every evaluation of it.

e_stab (:mod:`nice_core.metrics.stability`) warps each evaluated video with the *target's* optical flow.
FF++ evaluates four or five methods of every original, and the flow (DIS forward and backward, about 65 ms
per frame pair at 640x360 on one core) was most of each evaluation's time. ``nice-core motion`` computes it
once per target into ``motion.h5``; ``nice-core eval --motion`` reads it back instead of recomputing.

The file (HDF5; attributes ``format`` = :data:`FORMAT`, ``frames``, ``width``, ``height``, ``video`` and
``video_sha256`` of the target it was computed on):

* ``backward``: ``(frames, 2, H, W)`` float16, the backward flow ``b_t`` in pixels (frame 0: zeros);
* ``valid``: ``(frames, H, W)`` bool, where ``b_t`` is valid (not occluded, inside the frame).

One frame is a chunk (LZF-compressed, about 0.5 MB at 640x360), so reading streams one frame at a time. The
evaluation reads exactly the values it would have computed (the flow is half precision either way), so a
cached and an uncached evaluation give the same numbers.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nice_core.errors import InputError
from nice_core.io import VideoProbe, VideoReader, probe_video
from nice_core.io.atomic import refuse_input_overwrite, temporary_sibling
from nice_core.io.digest import file_sha256
from nice_core.metrics.stability import TargetMotion
from nice_core.progress import progress

__all__ = ["FORMAT", "CachedMotion", "write_motion"]

FORMAT = "nice-core motion 1"


def write_motion(target: str | Path, output: str | Path, *, probe: VideoProbe | None = None,
                 show_progress: bool | None = None) -> int:
    """Compute the target's motion into ``output`` (written whole or not at all); the number of frames.

    Raises:
        InputError: an unreadable target (from the reader).
    """
    import sys

    import h5py

    target, output = Path(target), Path(output)
    show = sys.stderr.isatty() if show_progress is None else show_progress
    refuse_input_overwrite(output, [target])
    probe = probe or probe_video(target)
    n, height, width = probe.n_frames, probe.height, probe.width
    tmp = temporary_sibling(output)
    motion = TargetMotion()
    try:
        with h5py.File(tmp, "w") as h5, VideoReader(target, probe) as reader:
            h5.attrs.update({"format": FORMAT, "frames": n, "width": width, "height": height, "video": str(target),
                             "video_sha256": file_sha256(target)})
            backward = h5.create_dataset("backward", (n, 2, height, width), np.float16, chunks=(1, 2, height, width),
                                         compression="lzf", shuffle=True, fillvalue=0)
            valid = h5.create_dataset("valid", (n, height, width), bool, chunks=(1, height, width), compression="lzf")
            count = 0
            for t, frame in progress(reader.iter_frames(), total=n, desc="motion", enabled=show):
                found = motion.flow(frame)
                if found is not None:
                    backward[t], valid[t] = found
                count += 1
            if count != n:
                raise InputError(f"{target}: read {count} frames, its probe says {n}")
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


class CachedMotion:
    """:class:`~nice_core.metrics.stability.TargetMotion`'s ``step``, read from a ``motion.h5`` of ``target``.

    Raises:
        InputError: not a motion file, or one of another video (its SHA-256, frame count or size differ).
    """

    def __init__(self, path: str | Path, target: str | Path, probe: VideoProbe) -> None:
        import h5py

        self.path = Path(path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as err:
            raise InputError(f"motion file {path} cannot be read: {err}") from None
        attrs = self._h5.attrs
        expected = {"format": FORMAT, "frames": probe.n_frames, "width": probe.width, "height": probe.height}
        wrong = [f"{k} {attrs.get(k)!r}, expected {v!r}" for k, v in expected.items() if attrs.get(k) != v]
        if not wrong and attrs.get("video_sha256") != file_sha256(target):
            wrong.append(f"it was computed on {attrs.get('video')}, not on {target}")
        if wrong:
            self._h5.close()
            raise InputError(f"motion file {path} is not the motion of {target}: {'; '.join(wrong)}")
        self._motion = TargetMotion()
        self._t = 0

    def step(self, _target_frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The next frame's ``(sample_x, sample_y, valid)`` (``None`` for the first), as ``TargetMotion.step``."""
        t, self._t = self._t, self._t + 1
        if t == 0:
            return None
        return self._motion.maps(self._h5["backward"][t], self._h5["valid"][t])

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> CachedMotion:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Reading still images (and a video's first frame) as RGB arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nice_core.errors import InputError


def read_image(path: str | Path) -> np.ndarray:
    """An image file (PNG, JPEG, ...) or a video's first frame as ``(H, W, 3)`` ``uint8`` RGB.

    Decoded with PyAV (FFmpeg): OpenCV's PNG decoder was seen to fail in a process that had already
    loaded mediapipe and decord, while FFmpeg's is the one every video here goes through anyway.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, StopIteration, IndexError, UnicodeDecodeError):
        raise InputError(f"not a readable image: {path}") from None

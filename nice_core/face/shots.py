"""Shot cuts: where a clip jumps to another shot (an edit, or a loop point), found while it streams.

A hard cut breaks every temporal assumption of the chain: the tracked face may be elsewhere or someone
else, the crop smoothing must not blend the two shots' alignments, a short gap must not be interpolated
across it, and the target's optical flow across it is meaningless (e_stab skips that frame pair).

Detection is PySceneDetect's ``AdaptiveDetector``: each frame's HSV content change against the previous
frame, divided by the average change of its neighbours (two frames each side), must exceed 3, and be at
least 15 in absolute terms; a shot lasts at least ``min_shot`` frames. The ratio is what finds cuts between
two shots of one scene (the same person and background a moment apart, whose absolute change is only
about 4x the clip's usual frame-to-frame change), and what keeps a fast camera move from being a cut. It
sees :data:`LAG` frames ahead, so a cut at frame ``c`` is known once frame ``c + LAG`` has been fed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LAG", "ShotDetector", "shot_ids"]

#: Frames the detector needs past a cut before it reports it (AdaptiveDetector's window).
LAG = 2


class ShotDetector:
    """Feed RGB frames in order; :meth:`feed` returns the cuts it has just found (frame indices where a new
    shot starts).

    Args:
        min_shot: the shortest shot in frames (a cut closer than this to the previous one is not one).
    """

    def __init__(self, min_shot: int) -> None:
        from scenedetect.detectors import AdaptiveDetector

        if min_shot < 1:
            raise ValueError(f"min_shot must be >= 1 frame, got {min_shot}")
        self._detector = AdaptiveDetector(min_scene_len=int(min_shot), window_width=LAG)
        self.cuts: list[int] = []

    def feed(self, index: int, frame: np.ndarray) -> list[int]:
        """Frame ``index`` (``(H, W, 3)`` uint8 RGB); the cuts found now (each at most :data:`LAG` back)."""
        import cv2

        found = [int(c) for c in self._detector.process_frame(index, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))]
        self.cuts += found
        return found


def shot_ids(cuts: list[int], n_frames: int) -> np.ndarray:
    """``(n_frames,)`` int32: each frame's shot number, 0 for the first shot, +1 at every cut."""
    ids = np.zeros(n_frames, np.int32)
    for cut in sorted(set(cuts)):
        if not 0 < cut < n_frames:
            raise ValueError(f"cut at frame {cut} is outside 1..{n_frames - 1}")
        ids[cut:] += 1
    return ids

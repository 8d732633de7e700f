#!/usr/bin/env python
"""Cross-check e_stab against an independent, simpler implementation (issue 5).

The simple version: OpenCV Farneback flow (not DIS) of the target, backward warp of the previous frame,
squared RGB error in [0, 1] averaged over the face's bounding box (not the oval), *no* occlusion check.
Both run on the bundled sample against itself and against a flickering self-swap proxy made with the
built-in swapper. Differences are expected where the simple one counts occluded pixels (a hand moving in
front of the face, eyelids) and box corners outside the face; see docs/benchmarks.md.

    python bench/estab_crosscheck.py [--frames 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"


def simple_estab(target: Path, video: Path, frames: int) -> float:
    import cv2

    from nice_core.face.landmarks import FaceMeshDetector
    from nice_core.io import VideoReader

    detector = FaceMeshDetector(max_faces=1)
    errors, prev_t, prev_v = [], None, None
    for (_, t), (_, v) in zip(VideoReader(target).iter_frames(0, frames), VideoReader(video).iter_frames(0, frames)):
        grey = cv2.cvtColor(t, cv2.COLOR_RGB2GRAY)
        faces = detector.detect(t)
        if prev_t is not None and faces:
            flow = cv2.calcOpticalFlowFarneback(grey, prev_t, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            h, w = grey.shape
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            warped = cv2.remap(prev_v.astype(np.float32), xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR)
            x0, y0 = np.maximum(faces[0][:, :2].min(0).astype(int), 0)
            x1, y1 = faces[0][:, :2].max(0).astype(int)
            diff = (v.astype(np.float32) - warped)[y0:y1, x0:x1] / 255.0
            errors.append(float((diff**2).mean()))
        prev_t, prev_v = grey, v
    detector.close()
    return float(np.mean(errors))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    import cv2

    from nice_core.face.landmarks import native_stderr_silenced
    from nice_core.io import VideoReader, VideoWriter
    from nice_core.metrics import evaluate
    from nice_core.provenance import synthetic_label
    from nice_core.proxy.swap import swap_video

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "clip.mp4"
        with VideoReader(SAMPLE) as reader, VideoWriter(
                clip, 640, 360, reader.probe.fps, label=synthetic_label({"target": SAMPLE}, "sample cut")) as writer:
            for _, frame in reader.iter_frames(0, args.frames):
                writer.write(frame)
        still = tmp / "self.png"
        cv2.imwrite(str(still), cv2.cvtColor(VideoReader(SAMPLE)[300], cv2.COLOR_RGB2BGR))
        swap_video(still, clip, tmp / "proxy.mp4", show_progress=False)
        ours = evaluate(clip, tmp / "proxy.mp4", show_progress=False)
        with native_stderr_silenced():
            simple_self = simple_estab(clip, clip, args.frames)
            simple_proxy = simple_estab(clip, tmp / "proxy.mp4", args.frames)
    print(f"sample, first {args.frames} frames (the hand covers the face from about frame 59)")
    print(f"{'':28s}{'nice-core e_stab':>18s}{'simple (Farneback, box, no occl.)':>36s}")
    print(f"{'target vs itself':28s}{ours['target_e_stab']:18.6f}{simple_self:36.6f}")
    print(f"{'self-swap proxy':28s}{ours['e_stab']:18.6f}{simple_proxy:36.6f}")
    print(f"{'proxy / target ratio':28s}{ours['e_stab'] / ours['target_e_stab']:18.1f}"
          f"{simple_proxy / simple_self:36.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Does ``VideoReader`` hold decoded frames beyond the one handed out? (diagnoses ``track_memory.py``)

Opens the video with :class:`nice_core.io.VideoReader`, takes the first frame from ``iter_frames()`` and
then, like a slow consumer (face detection runs at ~25 frames/s, decoding at ~1000), waits ``--wait``
seconds without reading more. RSS is printed before and after, next to what every decoded frame of the
video takes (frames x width x height x 3). If RSS grows by about that much, the decoder is reading ahead
without bound. A PyAV sequential decode is measured the same way for comparison.

    python bench/reader_readahead.py                        # the bundled sample (472 frames)
    python bench/reader_readahead.py --video long.mp4 --wait 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"
MB = 1024 * 1024


def rss_mb() -> float:
    """Current RSS in MB (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SAMPLE, help="input video (default: the bundled sample)")
    parser.add_argument("--wait", type=float, default=3.0, help="seconds to wait after the first frame")
    args = parser.parse_args(argv)

    import av

    from nice_core.io import VideoReader, probe_video

    probe = probe_video(args.video)
    all_frames = probe.n_frames * probe.width * probe.height * 3 / MB
    print(f"video: {args.video}: {probe.n_frames} frames {probe.width}x{probe.height}, "
          f"all frames decoded = {all_frames:.0f} MB")

    base = rss_mb()
    with VideoReader(args.video, probe) as reader:
        frames = reader.iter_frames()
        next(frames)
        first = rss_mb()
        time.sleep(args.wait)
        waited = rss_mb()
        print(f"VideoReader.iter_frames (decord): RSS {base:.0f} MB before, {first:.0f} MB after the first frame, "
              f"{waited:.0f} MB after waiting {args.wait:g} s: +{waited - base:.0f} MB "
              f"({100 * (waited - base) / all_frames:.0f} % of all frames decoded)")
        frames.close()

    base = rss_mb()
    with av.open(str(args.video)) as container:
        decoded = container.decode(video=0)
        next(decoded).to_ndarray(format="rgb24")
        time.sleep(args.wait)
        waited = rss_mb()
    print(f"PyAV container.decode (for comparison): +{waited - base:.0f} MB after the first frame and "
          f"{args.wait:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Watermark robustness, false positives and cost (issue 6).

1. Makes labelled outputs the way the pipeline does (a self-swap proxy of the sample with the built-in
   swapper, and a benchmark set's clean and proxy videos), then for each: re-encodes at H.264 CRF 28,
   rescales to half size, crops 10% of every border, and all three at once, with the metadata stripped;
   prints the detection z-score and whether the payload decoded correctly.
2. Runs detection on unmarked footage: the bundled sample and clips from other sources (FFmpeg's
   synthetic generators, and the sample mirrored, colour-graded and re-encoded).
3. Times embedding per frame at 640x360 and 1920x1080.

    python bench/watermark.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"
TRANSFORMS = {
    "as written": None,
    "CRF 28": ["-c:v", "libx264", "-crf", "28"],
    "half size": ["-vf", "scale=iw/2:ih/2", "-c:v", "libx264", "-crf", "23"],
    "crop 10%": ["-vf", "crop=iw*0.8:ih*0.8:iw*0.1:ih*0.1", "-c:v", "libx264", "-crf", "23"],
    "all three": ["-vf", "crop=iw*0.8:ih*0.8:iw*0.1:ih*0.1,scale=iw/2:ih/2", "-c:v", "libx264", "-crf", "28"],
}


def ffmpeg(*args: str) -> None:
    from nice_core.io import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


def main() -> int:
    import cv2

    from nice_core.io import VideoReader
    from nice_core.provenance.verify import verify_file
    from nice_core.provenance.watermark import DETECT_Z, embed
    from nice_core.proxy.benchmark import BenchConfig, make_benchmark
    from nice_core.proxy.swap import swap_video

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        identity = tmp / "self.png"
        cv2.imwrite(str(identity), cv2.cvtColor(VideoReader(SAMPLE)[300], cv2.COLOR_RGB2BGR))
        swap_video(identity, SAMPLE, tmp / "swap.mp4", show_progress=False)
        make_benchmark(SAMPLE, tmp / "bench", BenchConfig(frames=120), show_progress=False)
        outputs = {"swap proxy (472 frames)": tmp / "swap.mp4", "bench clean (120)": tmp / "bench" / "clean.mp4",
                   "bench proxy (120)": tmp / "bench" / "proxy.mp4"}
        print(f"detection threshold z >= {DETECT_Z}; up to 96 frames read per video")
        print(f"{'output':26s} {'transform':12s} {'z':>6s}  detected  payload ok")
        for name, path in outputs.items():
            expected = verify_file(path).watermark.payload
            for label, args in TRANSFORMS.items():
                target = path
                if args is not None:
                    target = tmp / f"{path.stem}_{label.replace(' ', '_').replace('%', '')}.mp4"
                    ffmpeg("-i", str(path), "-map_metadata", "-1", *args, str(target))
                w = verify_file(target).watermark
                print(f"{name:26s} {label:12s} {w.z:6.1f}  {'yes' if w.found else 'NO':8s}  "
                      f"{'yes' if w.found and w.payload == expected else '-'}")

        clean = {"bundled sample": SAMPLE}
        generators = {
            "testsrc2": "testsrc2=size=640x360:rate=25", "mandelbrot": "mandelbrot=size=640x360:rate=25",
            "life": "life=size=640x360:rate=25:mold=10:ratio=0.5", "smptehdbars": "smptehdbars=size=640x360",
            "cellauto": "cellauto=size=640x360:rate=25", "noise": "color=gray:size=640x360,noise=alls=20:allf=t",
        }
        for name, source in generators.items():
            clean[name] = tmp / f"{name}.mp4"
            ffmpeg("-f", "lavfi", "-i", source, "-t", "4", "-pix_fmt", "yuv420p", str(clean[name]))
        clean["sample mirrored + graded"] = tmp / "graded.mp4"
        ffmpeg("-i", str(SAMPLE), "-vf", "hflip,eq=contrast=1.3:saturation=1.5:gamma=0.8", "-c:v", "libx264",
               "-crf", "28", str(clean["sample mirrored + graded"]))
        clean["sample half size"] = tmp / "half.mp4"
        ffmpeg("-i", str(SAMPLE), "-vf", "scale=320:180", str(clean["sample half size"]))
        print("\nunmarked footage (false positives):")
        positives = 0
        for name, path in clean.items():
            w = verify_file(path).watermark
            positives += w.found
            print(f"  {name:28s} z = {w.z:5.2f}  {'FALSE POSITIVE' if w.found else 'clean'}")
        print(f"false positives: {positives} of {len(clean)}")

        print("\nembedding cost:")
        for height, width in ((360, 640), (1080, 1920)):
            frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
            embed(frame, 1)  # builds the cached overlay
            start = time.perf_counter()
            for _ in range(50):
                embed(frame, 1)
            print(f"  {width}x{height}: {1000 * (time.perf_counter() - start) / 50:.2f} ms/frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Watermark robustness by clip length, false positives, invisibility and cost (issue 6).

1. Writes marked clips the way the pipeline does (``VideoWriter``, which embeds the watermark in every
   frame) from the first 48, 72 and 120 frames of the bundled 640x360 sample and from the whole sample
   (472 frames), then for each: re-encodes at H.264 CRF 28; halves the size (320x180) at CRF 28; crops 10%
   of every border at CRF 28; and all three at once (256x144, CRF 28), every copy with its metadata
   stripped. Prints the detection z-score (what ``nice-core verify`` reads: up to 96 frames) and whether
   the payload decoded correctly. ``--swap`` adds the built-in swapper's self-swap proxy of the sample.
2. Runs detection on unmarked footage: the bundled sample and clips from other sources (FFmpeg's
   synthetic generators, and the sample mirrored, colour-graded and re-encoded, and halved).
3. PSNR of marked against unmarked frames of the sample, and embedding time per frame at 640x360 and
   1920x1080.

Everything runs single-threaded (``cv2.setNumThreads(1)``, ``-threads 1`` for FFmpeg), so the timings
are one core's.

    python bench/watermark.py [--swap]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"
LENGTHS = (48, 72, 120, None)  # None: the whole sample
CROP = "crop=iw*0.8:ih*0.8:iw*0.1:ih*0.1"
TRANSFORMS = {
    "as written": None,
    "CRF 28": ["-c:v", "libx264", "-crf", "28"],
    "half size": ["-vf", "scale=iw/2:ih/2", "-c:v", "libx264", "-crf", "28"],
    "crop 10%": ["-vf", CROP, "-c:v", "libx264", "-crf", "28"],
    "all three": ["-vf", f"{CROP},scale=iw/2:ih/2", "-c:v", "libx264", "-crf", "28"],
}


def ffmpeg(*args: str) -> None:
    from nice_core.io import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-threads", "1", *args], check=True)


def write_marked(frames, out: Path, fps) -> int:
    """Write ``frames`` with the pipeline's writer (watermark and tags); returns the payload."""
    from nice_core.io import EncodeOptions, VideoWriter
    from nice_core.provenance import synthetic_label

    with VideoWriter(out, frames[0].shape[1], frames[0].shape[0], fps, label=synthetic_label({"target": SAMPLE}),
                     encode=EncodeOptions(extra={"threads": "1"})) as writer:
        for frame in frames:
            writer.write(frame)
        return writer.label.payload


def robustness(outputs: dict[str, tuple[Path, int]], tmp: Path) -> None:
    from nice_core.provenance.verify import verify_file

    print("| clip | " + " | ".join(TRANSFORMS) + " |")
    print("|---|" + "---:|" * len(TRANSFORMS))
    misses = 0
    for name, (path, payload) in outputs.items():
        cells = []
        for label, args in TRANSFORMS.items():
            target = path
            if args is not None:
                target = tmp / f"{path.stem}_{label.replace(' ', '_').replace('%', '')}.mp4"
                ffmpeg("-i", str(path), "-map_metadata", "-1", *args, str(target))
            w = verify_file(target).watermark
            ok = w.found and w.payload == payload
            misses += not ok
            cells.append(f"{w.z:.1f}" + ("" if ok else (" (wrong payload)" if w.found else " (missed)")))
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nmissed or wrong payload: {misses} of {len(outputs) * len(TRANSFORMS)}")


def false_positives(tmp: Path) -> None:
    from nice_core.provenance.verify import verify_file

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
    clean["sample, all three"] = tmp / "clean_all3.mp4"
    ffmpeg("-i", str(SAMPLE), "-vf", f"{CROP},scale=iw/2:ih/2", "-c:v", "libx264", "-crf", "28",
           str(clean["sample, all three"]))
    print("\nunmarked footage (false positives):")
    positives, top = 0, 0.0
    for name, path in clean.items():
        w = verify_file(path).watermark
        positives += w.found
        top = max(top, w.z)
        print(f"  {name:28s} z = {w.z:5.2f}  {'FALSE POSITIVE' if w.found else 'clean'}", flush=True)
    print(f"false positives: {positives} of {len(clean)}; highest clean z = {top:.2f}")


def invisibility_and_cost(frames) -> None:
    from nice_core.provenance.watermark import embed

    def psnr(a, b):
        mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
        return 10 * np.log10(255.0**2 / mse)

    picks = frames[::8]
    values = [psnr(f, embed(f, 0x5A5A5)) for f in picks]
    print(f"\nPSNR marked vs unmarked ({len(picks)} frames of the sample): min {min(values):.2f} dB, "
          f"mean {np.mean(values):.2f} dB")
    import cv2

    print("embedding cost (one core):")
    for height, width in ((360, 640), (1080, 1920)):
        batch = [np.ascontiguousarray(cv2.resize(f, (width, height))) for f in frames[:20]]
        embed(batch[0], 1)  # builds the cached overlay
        start = time.perf_counter()
        for _ in range(10):
            for f in batch:
                embed(f, 1)
        print(f"  {width}x{height}: {1000 * (time.perf_counter() - start) / (10 * len(batch)):.2f} ms/frame")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swap", action="store_true", help="also the self-swap proxy of the sample (slow)")
    args = parser.parse_args()
    import cv2

    cv2.setNumThreads(1)
    from nice_core.io import VideoReader
    from nice_core.provenance.watermark import DETECT_Z

    with VideoReader(SAMPLE, num_threads=1) as reader:
        fps = reader.probe.fps
        frames = [frame for _, frame in reader.iter_frames()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        outputs = {}
        for length in LENGTHS:
            part = frames if length is None else frames[:length]
            path = tmp / f"marked_{len(part)}.mp4"
            outputs[f"{len(part)} frames{' (whole sample)' if length is None else ''}"] = \
                (path, write_marked(part, path, fps))
        if args.swap:
            from nice_core.proxy.swap import swap_video

            identity = tmp / "self.png"
            cv2.imwrite(str(identity), cv2.cvtColor(frames[300], cv2.COLOR_RGB2BGR))
            swap_video(identity, SAMPLE, tmp / "swap.mp4", show_progress=False)
            outputs["self-swap proxy (472)"] = (tmp / "swap.mp4", verify_file_payload(tmp / "swap.mp4"))
        print(f"640x360 sample; detection threshold z >= {DETECT_Z}; up to 96 frames read per video; "
              "every transformed copy has its metadata stripped\n")
        robustness(outputs, tmp)
        false_positives(tmp)
    invisibility_and_cost(frames)
    return 0


def verify_file_payload(path: Path) -> int:
    """The payload the writer recorded in the file's tags (``watermark`` tag)."""
    from nice_core.provenance.verify import verify_file

    return int(verify_file(path).tags["watermark"].rsplit(" ", 1)[1], 16)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Fidelity of the crop -> frame paste-back: paste every stored crop back unchanged and compare.

Runs ``track_video`` once (or reads an existing store with ``--store``), then for every frame with a face
calls ``paste_back(frame, crop, mask, transform)`` with the stored crop, mask (uint8) and frame -> crop
transform, and compares the result with the original decoded frame:

* PSNR inside the mask, over all three channels of the pixels where the mask warped into the frame
  (independently of ``paste_back``: ``cv2.warpAffine`` of mask/255 through the inverse transform over the
  whole frame, bilinear, zero border, as ``paste_back`` documents) is > 0.5; also printed for weight > 0
  (every blended pixel) and weight >= 254.5/255 (where the crop fully replaces the frame);
* changed pixels outside the mask support: pixels where that warped weight is exactly 0 and the pasted
  frame differs from the original in any channel; must be 0 (paste_back promises bit-identical).

Targets: PSNR >= 40 dB inside (weight > 0.5), exactly 0 changed pixels outside.

    python bench/pasteback_fidelity.py
    python bench/pasteback_fidelity.py --crop-size 512
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"
TARGET_PSNR = 40.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two equally shaped uint8 arrays (inf when equal, nan when empty)."""
    if a.size == 0:
        return float("nan")
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def warped_weight(mask: np.ndarray, matrix: np.ndarray, height: int, width: int) -> np.ndarray:
    """The crop mask in frame coordinates, ``(H, W)`` float32 in [0, 1]."""
    import cv2

    from nice_core.face.alignment import invert_affine

    alpha = mask.astype(np.float32) / 255.0
    weight = cv2.warpAffine(alpha, invert_affine(matrix), (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return np.clip(weight, 0.0, 1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SAMPLE, help="input video (default: the bundled sample)")
    parser.add_argument("--store", type=Path, help="use this existing face.h5 (of --video) instead of tracking")
    parser.add_argument("--crop-size", type=int, default=256, help="crop_size for tracking (default 256)")
    parser.add_argument("--worst", type=int, default=5, help="how many of the worst frames to list")
    args = parser.parse_args(argv)

    from nice_core.composite.paste import paste_back
    from nice_core.face.track import TrackConfig, track_video
    from nice_core.io import VideoReader
    from nice_core.store import FaceStore

    rows = []
    changed_outside_total = 0
    changed_outside_frames = []
    with tempfile.TemporaryDirectory(prefix="nice_bench_") as tmp:
        store_path = args.store
        if store_path is None:
            print(f"video: {args.video}")
            result = track_video(args.video, tmp, TrackConfig(crop_size=args.crop_size), show_progress=False)
            print(f"tracked: {result.summary()}")
            store_path = result.store
        with FaceStore.open(store_path) as store, VideoReader(args.video) as reader:
            has_face = store["has_face"][:]
            align = store["align"][:]
            size = store.crop_size
            for index, frame in reader.iter_frames():
                if not has_face[index]:
                    continue
                crop, mask = store["crops"][index], store["masks"][index]
                matrix = store["transforms"][index]
                pasted = paste_back(frame, crop, mask, matrix)
                height, width = frame.shape[:2]
                weight = warped_weight(mask, matrix, height, width)
                half, support, full = weight > 0.5, weight > 0, weight >= 254.5 / 255
                outside = ~support
                changed = np.any(pasted != frame, axis=-1)
                n_out = int(np.count_nonzero(changed & outside))
                changed_outside_total += n_out
                if n_out:
                    changed_outside_frames.append(index)
                rows.append({
                    "frame": index,
                    "psnr_half": psnr(pasted[half], frame[half]),
                    "psnr_support": psnr(pasted[support], frame[support]),
                    "psnr_full": psnr(pasted[full], frame[full]),
                    "px_half": int(half.sum()),
                    "px_changed": int(changed.sum()),
                    "changed_outside": n_out,
                    "side": float(2 * np.exp(align[index, 2])),
                })

    if not rows:
        print("no frame with a face")
        return 1
    p_half = np.array([r["psnr_half"] for r in rows])
    p_support = np.array([r["psnr_support"] for r in rows])
    p_full = np.array([r["psnr_full"] for r in rows])
    side = np.array([r["side"] for r in rows])
    print(f"frames with a face: {len(rows)}, crop size {size} px, crop side in the frame: mean {side.mean():.1f} px "
          f"(scale frame/crop {side.mean() / size:.2f}), mask pixels (weight > 0.5) per frame: "
          f"mean {np.mean([r['px_half'] for r in rows]):.0f}")
    print()
    for label, values in (("weight > 0.5 (primary)", p_half), ("weight > 0 (all blended)", p_support),
                          ("weight >= 254.5/255 (full)", p_full)):
        finite = values[np.isfinite(values)]
        worst = int(np.argmin(values))
        print(f"PSNR inside mask, {label:<27s}: mean {finite.mean():6.2f} dB, median {np.median(values):6.2f} dB, "
              f"min {values[worst]:6.2f} dB (frame {rows[worst]['frame']}), "
              f"frames < {TARGET_PSNR:g} dB: {int(np.sum(values < TARGET_PSNR))}")
    print(f"changed pixels outside the mask support (weight == 0): {changed_outside_total} "
          f"in {len(changed_outside_frames)} frames {changed_outside_frames[:10]}"
          f"{' ...' if len(changed_outside_frames) > 10 else ''}")
    print()
    order = np.argsort(p_half)[: args.worst]
    print(f"worst {len(order)} frames (weight > 0.5):")
    for k in order:
        r = rows[k]
        print(f"  frame {r['frame']:5d}: {r['psnr_half']:6.2f} dB (> 0: {r['psnr_support']:6.2f}, full: "
              f"{r['psnr_full']:6.2f}), crop side {r['side']:.1f} px")
    ok_psnr = p_half.min() >= TARGET_PSNR
    ok_out = changed_outside_total == 0
    print()
    print(f"target PSNR >= {TARGET_PSNR:g} dB inside (weight > 0.5, every frame): {'PASS' if ok_psnr else 'FAIL'}; "
          f"exact outside: {'PASS' if ok_out else 'FAIL'}")
    print("json:", json.dumps({"crop_size": size, "frames": len(rows), "psnr_half_mean": float(p_half.mean()),
                               "psnr_half_min": float(p_half.min()), "psnr_support_mean": float(p_support.mean()),
                               "psnr_support_min": float(p_support.min()), "changed_outside": changed_outside_total}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

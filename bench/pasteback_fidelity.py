#!/usr/bin/env python
"""Fidelity of the crop -> frame paste-back: paste every stored crop back and compare with the frame.

For each ``--crop-sizes`` value, runs ``track_video`` once (preview off; or reads an existing store with
``--store``), then for every frame with a face uses the stored crop, mask (uint8) and frame -> crop
transform:

* **replace** mode (``paste_back(frame, crop, mask, transform)``, the crop replaces the frame under the mask),
  with the unchanged crop, compared with the decoded frame:

  * PSNR inside the mask, over all three channels of the pixels where the mask warped into the frame
    (independently of ``paste_back``: ``cv2.warpAffine`` of mask/255 through the inverse transform over the
    whole frame, bilinear, zero border, as ``paste_back`` documents) is > 0.5; also printed for weight > 0
    (every blended pixel) and weight >= 254.5/255 (where the crop fully replaces the frame);
  * changed pixels outside the mask support: pixels where that warped weight is exactly 0 and the pasted
    frame differs from the original in any channel; must be 0 (paste_back promises bit-identical).

* **residual** mode, if ``paste_back`` has an ``original_crop`` argument (the crop's *change* is pasted):

  * round trip ``paste_back(frame, crop, mask, transform, original_crop=crop)``: frames not bit-identical
    to the decoded frame (must be 0), largest absolute difference, PSNR inside (weight > 0.5);
  * a known edit: ``edited = clip(crop + --brightness)`` (every crop pixel brighter; the mask limits it to
    the face), pasted with ``original_crop=crop``; compared, inside (weight > 0.5), with the expected frame
    ``clip(round(frame + w * warp(edited - crop)))`` (``w`` the warped weight, the crop-space difference
    warped bilinearly into the frame); changed pixels outside the support.
    The same edit pasted in replace mode is compared with the same expectation, for contrast.

Targets: PSNR >= 40 dB inside (weight > 0.5), exactly 0 changed pixels outside.

    python bench/pasteback_fidelity.py                       # crop sizes 256, 384, 512
    python bench/pasteback_fidelity.py --crop-sizes 256
"""

from __future__ import annotations

import argparse
import inspect
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


def has_residual_mode() -> bool:
    from nice_core.composite.paste import paste_back

    return "original_crop" in inspect.signature(paste_back).parameters


def warp_to_frame(image: np.ndarray, matrix: np.ndarray, height: int, width: int) -> np.ndarray:
    """A crop-space float image warped into the frame (bilinear, replicated border)."""
    import cv2

    from nice_core.face.alignment import invert_affine

    return cv2.warpAffine(image, invert_affine(matrix), (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def evaluate(video: Path, store_path: Path, brightness: float, residual: bool) -> tuple[int, list[dict]]:
    """Per-frame measurements for one store; returns (crop size, rows)."""
    from nice_core.composite.paste import paste_back
    from nice_core.io import VideoReader
    from nice_core.store import FaceStore

    rows = []
    with FaceStore.open(store_path) as store, VideoReader(video) as reader:
        has_face = store["has_face"][:]
        align = store["align"][:]
        size = store.crop_size
        for index, frame in reader.iter_frames():
            if not has_face[index]:
                continue
            crop, mask = store["crops"][index], store["masks"][index]
            matrix = store["transforms"][index]
            height, width = frame.shape[:2]
            weight = warped_weight(mask, matrix, height, width)
            half, support, full = weight > 0.5, weight > 0, weight >= 254.5 / 255
            outside = ~support
            pasted = paste_back(frame, crop, mask, matrix)
            changed = np.any(pasted != frame, axis=-1)
            row = {
                "frame": index,
                "psnr_half": psnr(pasted[half], frame[half]),
                "psnr_support": psnr(pasted[support], frame[support]),
                "psnr_full": psnr(pasted[full], frame[full]),
                "px_half": int(half.sum()),
                "changed_outside": int(np.count_nonzero(changed & outside)),
                "side": float(2 * np.exp(align[index, 2])),
            }
            if residual:
                edited = np.clip(crop.astype(np.float32) + brightness, 0, 255).astype(np.uint8)
                delta = warp_to_frame(edited.astype(np.float32) - crop.astype(np.float32), matrix, height, width)
                expected = np.clip(np.round(frame + weight[..., None] * delta), 0, 255).astype(np.uint8)
                same = paste_back(frame, crop, mask, matrix, original_crop=crop)
                out = paste_back(frame, edited, mask, matrix, original_crop=crop)
                replaced = paste_back(frame, edited, mask, matrix)
                row.update({
                    "res_identical": bool(np.array_equal(same, frame)),
                    "res_maxdiff": int(np.abs(same.astype(int) - frame).max()),
                    "res_psnr_half": psnr(same[half], frame[half]),
                    "res_changed_outside": int(np.count_nonzero(np.any(same != frame, axis=-1) & outside)),
                    "edit_res_psnr_half": psnr(out[half], expected[half]),
                    "edit_res_changed_outside": int(np.count_nonzero(np.any(out != frame, axis=-1) & outside)),
                    "edit_rep_psnr_half": psnr(replaced[half], expected[half]),
                    "edit_res_gain_median": float(np.median(out[full].astype(int) - frame[full])),
                })
            rows.append(row)
    return size, rows


def stats(values: np.ndarray) -> tuple[float, float, float, int]:
    """(mean of finite, median, min, argmin) of per-frame PSNRs (inf = identical)."""
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if finite.size else float("inf")
    return mean, float(np.median(values)), float(values.min()), int(np.argmin(values))


def report(size: int, rows: list[dict], residual: bool, brightness: float, worst_n: int) -> dict:
    p_half = np.array([r["psnr_half"] for r in rows])
    p_support = np.array([r["psnr_support"] for r in rows])
    p_full = np.array([r["psnr_full"] for r in rows])
    side = np.array([r["side"] for r in rows])
    changed_outside = sum(r["changed_outside"] for r in rows)
    bad_frames = [r["frame"] for r in rows if r["changed_outside"]]
    print(f"== crop size {size} px: frames with a face {len(rows)}, crop side in the frame: mean {side.mean():.1f} px "
          f"(scale frame/crop {side.mean() / size:.2f}), mask pixels (weight > 0.5) per frame: "
          f"mean {np.mean([r['px_half'] for r in rows]):.0f}")
    print("replace mode, unchanged crop vs decoded frame:")
    for label, values in (("weight > 0.5 (primary)", p_half), ("weight > 0 (all blended)", p_support),
                          ("weight >= 254.5/255 (full)", p_full)):
        mean, median, low, worst = stats(values)
        print(f"  PSNR inside mask, {label:<27s}: mean {mean:6.2f} dB, median {median:6.2f} dB, "
              f"min {low:6.2f} dB (frame {rows[worst]['frame']}), frames < {TARGET_PSNR:g} dB: "
              f"{int(np.sum(values < TARGET_PSNR))}")
    print(f"  changed pixels outside the mask support (weight == 0): {changed_outside} in {len(bad_frames)} frames "
          f"{bad_frames[:10]}{' ...' if len(bad_frames) > 10 else ''}")
    order = np.argsort(p_half)[:worst_n]
    print(f"  worst {len(order)} frames (weight > 0.5): " + ", ".join(
        f"{rows[k]['frame']} ({rows[k]['psnr_half']:.2f} dB, side {rows[k]['side']:.0f} px)" for k in order))
    summary = {"crop_size": size, "frames": len(rows), "psnr_half_mean": stats(p_half)[0],
               "psnr_half_median": stats(p_half)[1], "psnr_half_min": float(p_half.min()),
               "psnr_half_min_frame": rows[stats(p_half)[3]]["frame"],
               "psnr_support_mean": stats(p_support)[0], "psnr_support_min": float(p_support.min()),
               "psnr_full_mean": stats(p_full)[0], "psnr_full_min": float(p_full.min()),
               "frames_below_target": int(np.sum(p_half < TARGET_PSNR)), "changed_outside": changed_outside}
    if residual:
        not_identical = [r["frame"] for r in rows if not r["res_identical"]]
        res_out = sum(r["res_changed_outside"] for r in rows)
        res_half = np.array([r["res_psnr_half"] for r in rows])
        e_res = np.array([r["edit_res_psnr_half"] for r in rows])
        e_rep = np.array([r["edit_rep_psnr_half"] for r in rows])
        e_out = sum(r["edit_res_changed_outside"] for r in rows)
        gain = np.array([r["edit_res_gain_median"] for r in rows])
        print("residual mode (original_crop=crop), unchanged crop:")
        print(f"  frames not bit-identical to the decoded frame: {len(not_identical)} {not_identical[:10]}; "
              f"largest |difference| {max(r['res_maxdiff'] for r in rows)}; PSNR (> 0.5) min "
              f"{res_half.min():.2f} dB; changed outside: {res_out}")
        m_res, _, low_res, w_res = stats(e_res)
        m_rep, _, low_rep, w_rep = stats(e_rep)
        print(f"edit: crop + {brightness:g} brightness, vs frame + warped change (weight > 0.5):")
        print(f"  residual mode: PSNR mean {m_res:6.2f} dB, min {low_res:6.2f} dB (frame {rows[w_res]['frame']}); "
              f"median gain where weight is full: {np.median(gain):.1f}; changed outside: {e_out}")
        print(f"  replace mode:  PSNR mean {m_rep:6.2f} dB, min {low_rep:6.2f} dB (frame {rows[w_rep]['frame']})")
        summary.update({"residual_not_identical": len(not_identical),
                        "residual_max_abs_diff": max(r["res_maxdiff"] for r in rows),
                        "residual_changed_outside": res_out,
                        "edit_brightness": brightness, "edit_residual_psnr_mean": m_res,
                        "edit_residual_psnr_min": low_res, "edit_residual_changed_outside": e_out,
                        "edit_residual_gain_median": float(np.median(gain)),
                        "edit_replace_psnr_mean": m_rep, "edit_replace_psnr_min": low_rep})
    print()
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SAMPLE, help="input video (default: the bundled sample)")
    parser.add_argument("--store", type=Path, help="use this existing face.h5 (of --video) instead of tracking")
    parser.add_argument("--crop-sizes", "--crop-size", type=int, nargs="+", default=[256, 384, 512],
                        help="crop_size values to track with (default: 256 384 512)")
    parser.add_argument("--brightness", type=float, default=20.0, help="the residual-mode test edit (default 20)")
    parser.add_argument("--worst", type=int, default=5, help="how many of the worst frames to list")
    args = parser.parse_args(argv)

    from nice_core.face.track import TrackConfig, track_video

    residual = has_residual_mode()
    print(f"video: {args.video}")
    print(f"paste_back residual mode (original_crop): {'present' if residual else 'absent: replace mode only'}")
    print()
    summaries = []
    with tempfile.TemporaryDirectory(prefix="nice_bench_") as tmp:
        if args.store is not None:
            jobs = [args.store]
        else:
            jobs = []
            for size in args.crop_sizes:
                result = track_video(args.video, Path(tmp) / str(size),
                                     TrackConfig(crop_size=size, preview=False), show_progress=False)
                jobs.append(result.store)
        for store_path in jobs:
            size, rows = evaluate(args.video, store_path, args.brightness, residual)
            if not rows:
                print("no frame with a face")
                return 1
            summaries.append(report(size, rows, residual, args.brightness, args.worst))

    print(f"{'crop':>5} {'mean dB':>8} {'median dB':>9} {'min dB':>7} {'< 40 dB':>8} {'out':>4}"
          + (f" {'res exact':>9} {'edit res mean/min dB':>21} {'edit rep mean/min dB':>21} {'edit out':>8}"
             if residual else ""))
    for s in summaries:
        line = (f"{s['crop_size']:>5} {s['psnr_half_mean']:>8.2f} {s['psnr_half_median']:>9.2f} "
                f"{s['psnr_half_min']:>7.2f} {s['frames_below_target']:>4}/{s['frames']:<3} {s['changed_outside']:>4}")
        if residual:
            exact = f"{s['frames'] - s['residual_not_identical']}/{s['frames']}"
            line += (f" {exact:>9} {s['edit_residual_psnr_mean']:>11.2f} / {s['edit_residual_psnr_min']:<7.2f} "
                     f"{s['edit_replace_psnr_mean']:>11.2f} / {s['edit_replace_psnr_min']:<7.2f} "
                     f"{s['edit_residual_changed_outside']:>8}")
        print(line)
    ok_psnr = all(s["psnr_half_min"] >= TARGET_PSNR for s in summaries)
    ok_out = all(s["changed_outside"] == 0 for s in summaries)
    print(f"replace mode: PSNR >= {TARGET_PSNR:g} dB (weight > 0.5, every frame) at every size: "
          f"{'PASS' if ok_psnr else 'FAIL'}; exact outside: {'PASS' if ok_out else 'FAIL'}")
    if residual:
        ok_res = all(s["residual_not_identical"] == 0 for s in summaries)
        print(f"residual mode round trip bit-identical: {'PASS' if ok_res else 'FAIL'}")
    print("json:", json.dumps({"residual_mode": residual, "results": summaries}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

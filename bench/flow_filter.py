#!/usr/bin/env python
"""The classical peer of the carrier: a flow-guided temporal filter of the proxy, guided by the target.

Each proxy frame ``P_t`` is averaged with its neighbours ``P_{t+k}``, ``|k| <= radius``, each warped into
frame ``t`` by the *target's* optical flow (OpenCV DIS, medium preset, on the target's grey frames), with
Gaussian weights in ``k`` (sigma ``sigma`` frames). A warped pixel counts only where the flow passes a
forward-backward check (``|f + b(x + f)|^2 < alpha (|f|^2 + |b|^2) + beta``, alpha 0.01, beta 0.5, the
check e_stab uses); the centre frame always counts. No training; the whole frame is filtered, and the
streamed window holds ``2 radius + 1`` frames of each video, with the flows between them.

    python bench/flow_filter.py TARGET PROXY OUTPUT [--radius 3] [--sigma 2]
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from pathlib import Path

import numpy as np

ALPHA, BETA = 0.01, 0.5


class _Flows:
    """DIS flows between the target's frames in the window, each pair computed once per direction."""

    def __init__(self) -> None:
        import cv2

        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.cache: dict[tuple[int, int], np.ndarray] = {}

    def get(self, grey: dict[int, np.ndarray], a: int, b: int) -> np.ndarray:
        """Flow ``f`` with ``grey[a](x) ~ grey[b](x + f(x))``."""
        if (a, b) not in self.cache:
            self.cache[(a, b)] = self.dis.calc(grey[a], grey[b], None)
        return self.cache[(a, b)]

    def forget_before(self, first: int) -> None:
        for key in [k for k in self.cache if min(k) < first]:
            del self.cache[key]


def _warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    import cv2

    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def filter_frame(t: int, proxy: dict[int, np.ndarray], grey: dict[int, np.ndarray], flows: _Flows,
                 radius: int, sigma: float) -> np.ndarray:
    """Frame ``t`` of the filtered proxy from the window (``proxy`` and ``grey`` keyed by frame index)."""
    total = proxy[t].astype(np.float32)
    weight = np.ones(total.shape[:2], np.float32)
    for k in range(-radius, radius + 1):
        if k == 0 or t + k not in proxy:
            continue
        fwd, bwd = flows.get(grey, t, t + k), flows.get(grey, t + k, t)
        back = _warp(bwd, fwd)
        ok = ((fwd + back) ** 2).sum(-1) < ALPHA * ((fwd**2).sum(-1) + (back**2).sum(-1)) + BETA
        w = np.exp(-0.5 * (k / sigma) ** 2) * ok.astype(np.float32)
        total += _warp(proxy[t + k].astype(np.float32), fwd) * w[..., None]
        weight += w
    return np.clip(np.round(total / weight[..., None]), 0, 255).astype(np.uint8)


def flow_filter(target: str | Path, proxy: str | Path, output: str | Path, radius: int = 3,
                sigma: float = 2.0) -> float:
    """Write the flow-guided filter of ``proxy`` to ``output``; return the seconds it took."""
    import cv2

    from nice_core.io import VideoReader, probe_video
    from nice_core.io.writer import VideoWriter
    from nice_core.provenance import synthetic_label

    start = time.perf_counter()
    probe = probe_video(target)
    n = probe.n_frames
    frames_p: dict[int, np.ndarray] = {}
    frames_g: dict[int, np.ndarray] = {}
    order: deque[int] = deque()
    flows = _Flows()
    with VideoReader(target, probe) as xr, VideoReader(proxy) as pr, VideoWriter(
            output, probe.width, probe.height, probe.fps,
            label=synthetic_label({"target": target, "proxy": proxy}, "flow-guided filter of a synthetic proxy"),
            protect=(target, proxy)) as writer:
        xs, ps = xr.iter_frames(), pr.iter_frames()
        loaded = -1
        for t in range(n):
            while loaded < min(n - 1, t + radius):
                loaded += 1
                frames_g[loaded] = cv2.cvtColor(next(xs)[1], cv2.COLOR_RGB2GRAY)
                frames_p[loaded] = next(ps)[1]
                order.append(loaded)
            while order and order[0] < t - radius:
                old = order.popleft()
                del frames_g[old], frames_p[old]
            flows.forget_before(t - radius)
            writer.write(filter_frame(t, frames_p, frames_g, flows, radius, sigma))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target")
    parser.add_argument("proxy")
    parser.add_argument("output")
    parser.add_argument("--radius", type=int, default=3)
    parser.add_argument("--sigma", type=float, default=2.0)
    args = parser.parse_args()
    seconds = flow_filter(args.target, args.proxy, args.output, args.radius, args.sigma)
    print(f"flow-guided filter: {seconds:.1f} s -> {args.output}")


if __name__ == "__main__":
    main()

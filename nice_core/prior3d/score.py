"""How much of the identity's static detail a video shows, measured in UV (pose-free) space.

The identity's *added* detail is what its static detail has that the target's lacks: ``g = D_id - D_t`` per
skin texel (``D``: the visibility-weighted median of the UV detail over frames, :mod:`~nice_core.prior3d
.appearance`). The video's is ``o = D_video - D_t``, its frames unwrapped on the target's mesh exactly as
the stage unwraps the target and the proxy. Two numbers:

* ``uv_detail_gain = <o, g> / <g, g>``: the share of the identity's added detail the video reproduces at
  the right place (1: all of it; 0: the target's own detail; the proxy's static statistic is the ceiling a
  flicker-free video can reach);
* ``uv_detail_corr``: the correlation of ``o`` and ``g`` (the same, blind to amplitude).

``uv_added_rms`` is ``g``'s size: where the swap adds almost nothing (a self-swap), both scores are noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["detail_map_uri", "uv_detail_scores"]


def uv_detail_scores(video: str | Path, store_path: str | Path, prior3d_path: str | Path, source: str = "identity",
                     video_offset: int = 0) -> dict:
    """The UV detail scores of ``video`` (the target's frame count, e.g. the refined video or the proxy).

    Args:
        video: the video to score; frame ``t + video_offset`` shows target frame ``t``.
        store_path: the target's face store (crop transforms).
        prior3d_path: the 3D prior of the same store.
        source: whose static detail is the identity's: ``identity`` (the identity input; the proxy's for a
            self-swap) or ``proxy``.

    Returns:
        ``{"uv_detail_gain", "uv_detail_corr", "uv_added_rms", "frames", "source"}`` and, under
        ``"maps"``, the ``(U, U)`` ``detail`` of the video, the identity and the target (for the report).
    """
    import json
    from dataclasses import replace

    from nice_core.face.alignment import warp_crop
    from nice_core.io.reader import VideoReader
    from nice_core.prior3d import appearance
    from nice_core.prior3d.analysis import FrameAnalyser
    from nice_core.prior3d.stage import BATCH, Prior3DConfig, open_prior3d
    from nice_core.store import FaceStore

    with open_prior3d(prior3d_path) as h5:
        # The UV detail does not depend on the backend: the mesh one, without loading DECA's encoders.
        config = replace(Prior3DConfig(**json.loads(h5.attrs["config"])), backend="mesh")
        used = source if source in h5 and "static" in h5[source] else "proxy"
        identity = h5[used]["static"]["detail"][()]
        target = h5["target"]["static"]["detail"][()]
        picks = sorted(int(i) for i in h5["target"]["static"]["frames"][()])
        vertices = h5["target"]["vertices"][()]
        skin = h5["uv"]["skin"][()] & (h5[used]["static"]["weight"][()] > 0)
        crop_scale = float(h5.attrs.get("crop_scale", 1.0))
    with FaceStore.open(store_path) as store:
        transforms, size = store["transforms"][:], store.crop_size
    analyser = FrameAnalyser(config, size, crop_scale)
    wanted, frames, pending, details, weights = set(picks), [], [], [], []

    def flush() -> None:
        out = analyser.detail_only(np.stack([c for _, c in pending]), vertices[[t for t, _ in pending]])
        details.append(out["detail"])
        weights.append(out["weight"])
        frames.extend(t for t, _ in pending)
        pending.clear()

    with VideoReader(video) as reader:
        for index, frame in reader.iter_frames(max(0, video_offset), len(reader)):
            t = index - video_offset
            if t in wanted:
                pending.append((t, warp_crop(frame, transforms[t], size)))
                if len(pending) == BATCH:
                    flush()
    if pending:
        flush()
    if not frames:
        raise ValueError(f"{video} has none of the frames the 3D prior's statistics came from")
    median, _ = appearance.weighted_median(np.concatenate(details), np.concatenate(weights))
    detail = analyser.raster.to_map(median)
    o, g = (detail - target)[skin], (identity - target)[skin]
    gain = float(o @ g / max(float(g @ g), 1e-12))
    corr = float(np.corrcoef(o, g)[0, 1]) if o.std() > 0 and g.std() > 0 else 0.0
    return {"uv_detail_gain": round(gain, 4), "uv_detail_corr": round(corr, 4),
            "uv_added_rms": round(float(np.sqrt(np.mean(g * g))), 5), "frames": len(frames), "source": used,
            "maps": {"detail": detail, "identity": identity, "target": target}}


def detail_map_uri(detail: np.ndarray, scale: float = 400.0) -> str:
    """A ``(U, U)`` detail map as a grey PNG data URI: mid-grey is 0, darker marks darker (``scale`` grey
    levels per unit of log-luminance)."""
    import base64

    import cv2

    grey = np.clip(128 + scale * np.asarray(detail, np.float64), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", grey)
    if not ok:
        raise ValueError("could not encode the detail map")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")

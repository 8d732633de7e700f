"""A flicker benchmark with ground truth: ``nice-core bench make SRC OUTDIR``.

From a real clip X it writes:

* ``target.mp4``: X (after the optional synthetic camera move);
* ``clean.mp4``: G, a temporally consistent synthetic face edit of X: a landmark-driven warp (larger
  eyes, narrower jaw, longer nose) and a skin-tone change, both driven by *temporally smoothed* landmarks,
  so G is as stable as X;
* ``proxy.mp4``: P, G with swap-like per-frame faults: colour and brightness casts, a misaligned paste,
  a blend mask whose size and feather jitter, and a few outlier frames with a collapsed mouth or eye;
* ``meta.json``: the settings, the seed and every per-frame fault, so results can be broken down.

A carrier that removes flicker should bring P back toward G. With ``camera_move`` the whole clip pans
and zooms smoothly: trivial temporal filters of P ghost there, because they average misaligned frames.
Every video written carries the synthetic-media label. Run it on footage of one person: it edits that
person's own face and never brings in anyone else's.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nice_core.errors import OutputError
from nice_core.face.landmarks import face_oval_indices
from nice_core.face.mask import polygon_mask
from nice_core.face.subject import face_box
from nice_core.groundtruth.edits import DetailLayer, apply_detail, edit_geometry, make_detail_layer
from nice_core.io import EncodeOptions, VideoReader, VideoWriter, probe_video
from nice_core.progress import progress
from nice_core.provenance import synthetic_label

#: ``"pan"``: a smooth periodic pan and zoom; ``"handheld"``: a seeded, irregular shake with a slight roll.
CAMERA_STYLES = ("pan", "handheld")
#: Files a benchmark folder holds; an existing OUTDIR is replaced only if it holds nothing else.
BENCH_FILES = ("target.mp4", "clean.mp4", "proxy.mp4", "meta.json")


@dataclass
class BenchConfig:
    """Benchmark settings; every strength is 0 to switch that fault off."""

    seed: int = 0
    start: int = 0
    frames: int = 0
    edit_strength: float = 1.0
    tone_strength: float = 1.0
    cast: float = 0.05
    misalign_px: float = 1.5
    mask_jitter: float = 0.06
    outlier_rate: float = 0.06
    camera_move: bool = False
    camera_amplitude: float = 0.06
    camera_style: str = "pan"
    landmark_sigma_frames: float = 2.0
    outline_strength: float = 0.0
    interior_strength: float = 0.0
    spots: int = 0
    lines: int = 0
    brows: float = 0.0
    texture: float = 0.0
    mark_strength: float = 1.0

    def __post_init__(self) -> None:
        for name in ("start", "frames", "edit_strength", "tone_strength", "cast", "misalign_px", "mask_jitter",
                     "landmark_sigma_frames", "outline_strength", "interior_strength", "spots", "lines", "brows",
                     "texture", "mark_strength"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.outlier_rate <= 0.5:
            raise ValueError(f"outlier_rate must be in [0, 0.5], got {self.outlier_rate}")
        if not 0 <= self.camera_amplitude <= 0.25:
            raise ValueError(f"camera_amplitude must be in [0, 0.25], got {self.camera_amplitude}")
        if self.camera_style not in CAMERA_STYLES:
            raise ValueError(f"camera_style must be one of {', '.join(CAMERA_STYLES)}, got {self.camera_style!r}")

    @property
    def geometry(self) -> bool:
        """Whether any geometry edit is on."""
        return bool(self.edit_strength or self.outline_strength or self.interior_strength)

    @property
    def detail(self) -> bool:
        """Whether the clip gets a detail layer (marks or texture)."""
        return bool(self.spots or self.lines or self.brows or self.texture)


def _indices(connections) -> list[int]:
    return sorted({i for edge in connections for i in edge})


def _regions() -> dict[str, list[int]]:
    from nice_core.face.connections import face_mesh_connections

    conn = face_mesh_connections()
    return {"left_eye": _indices(conn.FACEMESH_LEFT_EYE), "right_eye": _indices(conn.FACEMESH_RIGHT_EYE),
            "nose": _indices(conn.FACEMESH_NOSE), "lips": _indices(conn.FACEMESH_LIPS),
            "oval": list(face_oval_indices()), "left_brow": _indices(conn.FACEMESH_LEFT_EYEBROW),
            "right_brow": _indices(conn.FACEMESH_RIGHT_EYEBROW)}


def edit_landmarks(landmarks: np.ndarray, strength: float, regions: dict[str, list[int]]) -> np.ndarray:
    """The consistent geometry edit: eyes 12% larger, lower jaw 6% narrower, nose tip 4% lower.

    Sizes are relative to the face (inter-ocular distance), so the edit follows the face through the clip.
    """
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2].copy()
    out = pts.copy()
    eye_l, eye_r = pts[regions["left_eye"]].mean(0), pts[regions["right_eye"]].mean(0)
    span = np.linalg.norm(eye_l - eye_r)
    down = np.array([-(eye_l - eye_r)[1], (eye_l - eye_r)[0]]) / max(span, 1e-6)  # face's "down" axis
    for side, centre in (("left_eye", eye_l), ("right_eye", eye_r)):
        idx = regions[side]
        out[idx] = centre + (pts[idx] - centre) * (1 + 0.12 * strength)
    centre = pts[regions["oval"]].mean(0)
    lower = [i for i in regions["oval"] if np.dot(pts[i] - centre, down) > 0.15 * span]
    out[lower] = centre + (pts[lower] - centre) * np.array([1.0, 1.0]) - (pts[lower] - centre) * 0.06 * strength
    out[lower] += np.outer(np.dot(pts[lower] - centre, down), down) * 0.06 * strength  # keep the chin's height
    nose_tip = [i for i in regions["nose"] if np.dot(pts[i] - pts[regions["nose"]].mean(0), down) > 0]
    out[nose_tip] += down * 0.04 * span * strength
    return out


def collapse_landmarks(landmarks: np.ndarray, part: str, regions: dict[str, list[int]]) -> np.ndarray:
    """An outlier fault: the mouth or one eye squashed to a fifth of its height."""
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2].copy()
    idx = regions["lips" if part == "mouth" else part]
    centre = pts[idx].mean(0)
    eye_axis = pts[regions["left_eye"]].mean(0) - pts[regions["right_eye"]].mean(0)
    down = np.array([-eye_axis[1], eye_axis[0]]) / max(np.linalg.norm(eye_axis), 1e-6)
    offset = pts[idx] - centre
    pts[idx] = centre + offset - np.outer(offset @ down, down) * 0.8
    return pts


def displacement_warp(image: np.ndarray, source: np.ndarray, target: np.ndarray,
                      box: tuple[int, int, int, int], radius: float) -> np.ndarray:
    """Warp ``image`` so the points at ``source`` move to ``target``, smoothly, inside ``box``.

    The dense backward displacement is a normalised Gaussian kernel regression of the point
    displacements (zero far from the points), computed on a coarse grid and upsampled.
    """
    import cv2

    x0, y0, x1, y1 = box
    step = 4
    gx, gy = np.meshgrid(np.arange(x0, x1, step, dtype=np.float64), np.arange(y0, y1, step, dtype=np.float64))
    grid = np.stack([gx.ravel(), gy.ravel()], 1)
    delta = source - target  # backward: where each target pixel samples from
    moving = np.abs(delta).sum(1) > 1e-3
    anchors = np.concatenate([target[moving], target[~moving]])
    values = np.concatenate([delta[moving], np.zeros(((~moving).sum(), 2))])
    d2 = ((grid[:, None, :] - anchors[None]) ** 2).sum(-1)
    weights = np.exp(-d2 / (2 * radius**2))
    field = (weights @ values) / (weights.sum(1, keepdims=True) + 1e-3)
    height, width = y1 - y0, x1 - x0
    fx = cv2.resize(field[:, 0].reshape(gx.shape).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    fy = cv2.resize(field[:, 1].reshape(gx.shape).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    out = image.copy()
    out[y0:y1, x0:x1] = cv2.remap(image, xs + fx, ys + fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out


def _tone(image: np.ndarray, weight: np.ndarray, strength: float) -> np.ndarray:
    """A warmer, slightly darker skin tone inside ``weight`` (Lab shift)."""
    import cv2

    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    shifted = lab + np.array([-6.0, 5.0, 9.0], np.float32) * strength
    rgb = cv2.cvtColor(np.clip(shifted, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)
    w = weight[..., None]
    return np.round(image * (1 - w) + rgb * w).astype(np.uint8)


def camera_matrix(index: int, n: int, size: tuple[int, int], amplitude: float, style: str = "pan",
                  seed: int = 0) -> np.ndarray:
    """The synthetic camera move at frame ``index``, a ``(2, 3)`` affine.

    ``"pan"``: a smooth pan and zoom, periodic over the clip. ``"handheld"``: three seeded sinusoids per
    axis at 0.25-1.5 Hz (at 24 fps), a slow zoom breathing and up to about 1.5 degrees of roll: an
    irregular shake, still smooth from frame to frame.
    """
    height, width = size
    cx, cy = width / 2, height / 2
    if style == "pan":
        t = index / max(n - 1, 1)
        zoom = 1 + 2 * amplitude + amplitude * np.sin(2 * np.pi * t)
        dx = amplitude * width * np.sin(2 * np.pi * 1.5 * t)
        dy = 0.5 * amplitude * height * np.sin(2 * np.pi * t + 1.0)
        return np.array([[zoom, 0, cx - zoom * cx + dx], [0, zoom, cy - zoom * cy + dy]])
    rng = np.random.default_rng([seed, 2])
    freq, phase, gain = rng.uniform(0.01, 0.06, (4, 3)), rng.uniform(0, 2 * np.pi, (4, 3)), rng.uniform(0.5, 1, (4, 3))
    wave = (gain * np.sin(2 * np.pi * freq * index + phase)).sum(1) / gain.sum(1)
    zoom = 1 + 2 * amplitude + 0.5 * amplitude * wave[2]
    angle = np.deg2rad(1.5) * wave[3]
    a, b = zoom * np.cos(angle), zoom * np.sin(angle)
    dx, dy = amplitude * width * wave[0], 0.6 * amplitude * height * wave[1]
    return np.array([[a, -b, cx - a * cx + b * cy + dx], [b, a, cy - b * cx - a * cy + dy]])


def _smooth_landmarks(landmarks: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    from nice_core.face.alignment import smooth_params

    flat = landmarks.reshape(len(landmarks), -1)
    out = np.full_like(flat, np.nan)
    for column in range(0, flat.shape[1], 64):
        block = flat[:, column:column + 64]
        # smooth_params smooths 4 columns with an angle in the last; pad to keep angle logic off our data.
        for j in range(block.shape[1]):
            series = np.zeros((len(block), 4))
            series[:, 0] = block[:, j]
            out[:, column + j] = smooth_params(series, valid, sigma)[:, 0]
    out[~valid] = np.nan
    return out.reshape(landmarks.shape)


def _prepare_outdir(out_dir: Path) -> Path:
    if out_dir.exists():
        extra = [p.name for p in out_dir.iterdir() if p.name not in BENCH_FILES]
        if extra:
            raise OutputError(f"{out_dir} exists and holds other files ({', '.join(sorted(extra)[:3])}); "
                              "choose an empty or new folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))


def make_benchmark(source: str | Path, out_dir: str | Path, config: BenchConfig | None = None,
                   encode: EncodeOptions | None = None, show_progress: bool | None = None) -> dict:
    """Write ``target.mp4``, ``clean.mp4``, ``proxy.mp4`` and ``meta.json`` into ``out_dir``.

    Returns the metadata written to ``meta.json``. The result is deterministic for a seed.
    """
    import cv2

    config = config or BenchConfig()
    show = sys.stderr.isatty() if show_progress is None else show_progress
    source, out_dir = Path(source), Path(out_dir)
    probe = probe_video(source)
    encode = encode or EncodeOptions(crf=16)
    start = min(config.start, probe.n_frames - 1)
    stop = probe.n_frames if config.frames == 0 else min(probe.n_frames, start + config.frames)
    n = stop - start
    size = (probe.height, probe.width)
    tmp = _prepare_outdir(out_dir)

    def source_frames(reader: VideoReader, desc: str):
        """X's frames, made from the source each pass (not decoded from target.mp4, which already carries the
        watermark and a generation of coding loss that G and P must not inherit)."""
        for index, frame in progress(reader.iter_frames(start, stop), total=n, desc=desc, enabled=show):
            if config.camera_move:
                frame = cv2.warpAffine(frame, camera_matrix(index - start, n, size, config.camera_amplitude,
                                                            config.camera_style, config.seed),
                                       (probe.width, probe.height), flags=cv2.INTER_CUBIC,
                                       borderMode=cv2.BORDER_REFLECT)
            yield index - start, frame

    try:
        # 1. X: the source range, with the optional camera move.
        with VideoReader(source, probe) as reader, VideoWriter(
                tmp / "target.mp4", probe.width, probe.height, probe.fps, encode=encode,
                label=synthetic_label({"source": source}, "benchmark target (source footage"
                                      + (", synthetic camera move)" if config.camera_move else ")"), encode),
                protect=(source,)) as writer:
            for _, frame in source_frames(reader, "target"):
                writer.write(frame)
        # 2. Landmarks of X, smoothed over time so the edit is as stable as X.
        valid, smooth, hands = _smoothed_track(tmp / "target.mp4", tmp / "track", config, show)
        regions = _regions()
        layer = _detail_layer(smooth, valid, config, regions)
        rng = np.random.default_rng(config.seed)
        faults = []
        labels = {"source": source}  # not target.mp4: its bytes hold a creation time, the source's do not
        with VideoReader(source, probe) as reader, \
                VideoWriter(tmp / "clean.mp4", probe.width, probe.height, probe.fps, encode=encode,
                            label=synthetic_label(labels, "benchmark clean synthetic face edit", encode)) as clean, \
                VideoWriter(tmp / "proxy.mp4", probe.width, probe.height, probe.fps, encode=encode,
                            label=synthetic_label(labels, "benchmark synthetic flickering proxy", encode)) as proxy:
            for index, frame in source_frames(reader, "edit"):
                draw = _draw_faults(rng, config)
                if not valid[index]:
                    clean.write(frame)
                    proxy.write(frame)
                    faults.append(None)
                    continue
                g, p, record = _edit_frame(frame, smooth[index], hands[index], config, regions, draw, layer)
                clean.write(g)
                proxy.write(p)
                faults.append(record)
        shutil.rmtree(tmp / "track")
        meta = {"source": str(source), "source_frames": [start, stop], "fps": f"{probe.fps_num}/{probe.fps_den}",
                "config": asdict(config), "frames": n, "frames_with_face": int(valid.sum()),
                "marks": None if layer is None else layer.marks,
                "outlier_frames": [i for i, f in enumerate(faults) if f and f["outlier"]],
                "faults": faults}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _smoothed_track(target: Path, work: Path, config: BenchConfig,
                    show: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Track ``target`` into ``work``: which frames have a face, their ``(N, 478, 2)`` landmarks smoothed
    over time (so the edit is as stable as the footage), and the hands found in front of the face."""
    from nice_core.face.track import TrackConfig, track_video
    from nice_core.store import FaceStore

    track = track_video(target, work, TrackConfig(crop_size=32, preview=False), show_progress=show)
    with FaceStore.open(track.store) as store:
        valid = store["has_face"][:]
        landmarks = store["landmarks"][:, :, :2].astype(np.float64)
        hands = store["hands"][:]
    return valid, _smooth_landmarks(landmarks, valid, config.landmark_sigma_frames), hands


def _draw_faults(rng: np.random.Generator, config: BenchConfig) -> dict:
    """One frame's random faults. Every number is drawn every frame, so frame t's faults do not depend on
    which earlier frames had a face."""
    return {"gain": rng.normal(0, config.cast, 3), "bias": rng.normal(0, config.cast * 0.5),
            "shift": rng.normal(0, config.misalign_px, 2), "mask": rng.normal(0, config.mask_jitter, 2),
            "outlier": rng.random() < config.outlier_rate, "part": rng.choice(["mouth", "left_eye", "right_eye"])}


def _detail_layer(smooth: np.ndarray, valid: np.ndarray, config: BenchConfig,
                  regions: dict[str, list[int]]) -> DetailLayer | None:
    """The clip's detail layer (marks and texture), on the canvas of its first face; ``None`` when off.

    It has its own generator (``[seed, 1]``), so switching it on changes none of the proxy's faults.
    """
    if not config.detail or not valid.any():
        return None
    first = int(np.flatnonzero(valid)[0])
    reference = _edited(smooth[first], config, regions)
    return make_detail_layer(reference, regions, np.random.default_rng([config.seed, 1]), spots=config.spots,
                             lines=config.lines, brows=config.brows, texture=config.texture,
                             mark_strength=config.mark_strength)


def _edited(landmarks: np.ndarray, config: BenchConfig, regions: dict[str, list[int]]) -> np.ndarray:
    """The landmarks after every geometry family of ``config``."""
    edited = edit_landmarks(landmarks, config.edit_strength, regions)
    if config.outline_strength or config.interior_strength:
        edited = edit_geometry(edited, regions, config.outline_strength, config.interior_strength)
    return edited


def _edit_frame(frame: np.ndarray, landmarks: np.ndarray, hands: np.ndarray, config: BenchConfig,
                regions: dict[str, list[int]], draw: dict,
                layer: DetailLayer | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """One frame of G (the consistent edit) and P (G with this frame's faults)."""
    import cv2

    from nice_core.face.mask import hand_mask

    height, width = frame.shape[:2]
    box = face_box(landmarks)
    span = max(box[2] - box[0], box[3] - box[1])
    pad = int(0.25 * span)
    region = (max(int(box[0]) - pad, 0), max(int(box[1]) - pad, 0),
              min(int(box[2]) + pad, width), min(int(box[3]) + pad, height))
    radius = 0.08 * span
    edited = _edited(landmarks, config, regions)
    warped = displacement_warp(frame, landmarks[:, :2], edited, region, radius) if config.geometry else frame
    oval = edited[regions["oval"]]
    skin = polygon_mask(oval, (height, width), 0.06 * span)
    real_hands = [h for h in hands if not np.isnan(h).any()]
    if real_hands:
        skin *= 1 - hand_mask(real_hands, (height, width), 0.03 * span)
    clean = _tone(warped, skin, config.tone_strength) if config.tone_strength else warped
    if layer is not None:
        clean = apply_detail(clean, layer, edited, skin, region)
    # P: paste a faulty copy of G's face back onto G through a jittered mask.
    face = clean
    record = {"outlier": bool(draw["outlier"]), "part": str(draw["part"]) if draw["outlier"] else None}
    if draw["outlier"]:
        collapsed = collapse_landmarks(edited, str(draw["part"]), regions)
        face = displacement_warp(clean, edited, collapsed, region, radius * 0.6)
    gain = 1 + draw["gain"]
    face = np.clip(face.astype(np.float32) * gain + 255 * draw["bias"], 0, 255)
    shift = draw["shift"]
    face = cv2.warpAffine(face, np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float64), (width, height),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    centre = oval.mean(0)
    scale = 1 + draw["mask"][0]
    feather = max(0.02, 0.06 * (1 + 4 * draw["mask"][1]))
    mask = polygon_mask(centre + (oval - centre) * scale, (height, width), feather * span)
    if real_hands:
        mask *= 1 - hand_mask(real_hands, (height, width), 0.03 * span)
    # Outside the pasted face, the proxy shows G (a swapper keeps its own output there), so its only faults
    # are inside the face region.
    w = mask[..., None]
    proxy = np.round(clean * (1 - w) + face * w).astype(np.uint8)
    record.update(gain=[round(float(v), 4) for v in gain], bias=round(float(draw["bias"]), 4),
                  shift_px=[round(float(v), 3) for v in shift], mask_scale=round(float(scale), 4),
                  feather=round(float(feather), 4))
    return clean, proxy, record

"""A classical per-frame face swapper in the spirit of FaceForensics++'s graphics-based "FaceSwap".

For every target frame, independently:

1. the identity face is warped onto the target's face-mesh landmarks, piecewise-affine over the mesh
   triangles (eye and mouth holes filled);
2. its colour is matched to the target's skin (mean and spread per channel in Lab, inside the mask);
3. it is blended into the target inside the face oval, feathered (or Poisson "seamless" cloning).

Pixels outside the blend region are the target's, bit for bit. Because nothing is shared between
frames, landmark noise and lighting changes make the result flicker: it is the built-in *proxy*
generator that the carrier then stabilises, and it lets the whole pipeline run with no external tool.

Ethics: tests and demos use it only as a self-swap (the identity is a still of the same person).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nice_core.config import default
from nice_core.errors import InputError, NoFaceError
from nice_core.face.landmarks import FaceMeshDetector, face_oval_indices, native_stderr_silenced
from nice_core.face.mask import hand_mask, polygon_mask
from nice_core.face.mesh import extended_points, piecewise_affine_maps
from nice_core.face.pose import head_pose
from nice_core.face.subject import SubjectRule, SubjectTracker, face_box
from nice_core.io import EncodeOptions, VideoReader, VideoWriter, probe_video
from nice_core.progress import progress
from nice_core.provenance import synthetic_label

#: Identity-video frames examined when looking for good frontal frames.
IDENTITY_SAMPLES = 48


@dataclass
class SwapConfig:
    """Settings of the built-in swapper (``swap:`` in ``config.yaml``)."""

    blend: str = default("swap.blend")
    feather: float = default("swap.feather")
    color_transfer: bool = default("swap.color_transfer")
    identity_frames: int = default("swap.identity_frames")

    def __post_init__(self) -> None:
        if self.blend not in ("feather", "seamless"):
            raise ValueError(f"blend must be 'feather' or 'seamless', got {self.blend!r}")
        if not 0 <= self.feather < 0.5:
            raise ValueError(f"feather must be in [0, 0.5), got {self.feather}")
        if self.identity_frames < 1:
            raise ValueError(f"identity_frames must be >= 1, got {self.identity_frames}")


@dataclass(frozen=True)
class IdentityFace:
    """One identity frame: ``image`` ``(H, W, 3)`` ``uint8`` RGB, its ``(478, 3)`` landmarks and pose."""

    image: np.ndarray
    landmarks: np.ndarray
    pose: np.ndarray


def _frontalness(face: np.ndarray, shape: tuple[int, int]) -> tuple[float, np.ndarray]:
    pose = head_pose(face, shape)
    box = face_box(face)
    size = (box[2] - box[0]) * (box[3] - box[1])
    # Frontal first (yaw and pitch in degrees), then larger faces (more detail) as a mild tie-breaker.
    return float(abs(pose[0]) + abs(pose[1]) - 2.0 * np.log(max(size, 1.0))), pose


def load_identity(path: str | Path, count: int = 1) -> list[IdentityFace]:
    """Reduce an identity image or video to its ``count`` most frontal face frames.

    A video is sampled at up to :data:`IDENTITY_SAMPLES` evenly spaced frames.

    Raises:
        InputError: unreadable file. NoFaceError: no face in it.
    """
    from nice_core.io.image import read_image

    path = Path(path)
    if not path.is_file():
        raise InputError(f"identity not found: {path}")
    frames: list[np.ndarray]
    try:
        probe = probe_video(path)
        is_video = probe.n_frames > 1
    except InputError:
        is_video = False
    if is_video:
        with VideoReader(path, probe) as reader:
            picks = np.unique(np.linspace(0, len(reader) - 1, min(IDENTITY_SAMPLES, len(reader))).astype(int))
            frames = [reader[int(i)] for i in picks]
    else:
        frames = [read_image(path)]
    candidates = []
    with native_stderr_silenced():
        detector = FaceMeshDetector(max_faces=1, static_image_mode=True)
        try:
            for frame in frames:
                faces = detector.detect(frame)
                if faces:
                    score, pose = _frontalness(faces[0], frame.shape[:2])
                    candidates.append((score, IdentityFace(frame, faces[0], pose)))
        finally:
            detector.close()
    if not candidates:
        raise NoFaceError(f"no face found in the identity {path}")
    candidates.sort(key=lambda item: item[0])
    return [face for _, face in candidates[:count]]


def _match_colour(source: np.ndarray, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Shift ``source``'s Lab mean and spread to ``target``'s where ``weight`` > 0.5 (Reinhard transfer)."""
    import cv2

    inside = weight > 0.5
    if inside.sum() < 16:
        return source
    src = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    tgt = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    s_mean, s_std = src[inside].mean(0), src[inside].std(0) + 1e-3
    t_mean, t_std = tgt[inside].mean(0), tgt[inside].std(0) + 1e-3
    out = (src - s_mean) * (t_std / s_std) + t_mean
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def swap_frame(frame: np.ndarray, landmarks: np.ndarray, identity: IdentityFace,
               config: SwapConfig, hands: list[np.ndarray] | None = None) -> np.ndarray:
    """Swap the identity face onto one target frame.

    Args:
        frame: ``(H, W, 3)`` ``uint8`` RGB target frame (not modified).
        landmarks: ``(478, 2+)`` target face landmarks in pixels.
        identity: the identity face to paste.
        config: blend settings.
        hands: ``(21, 2)`` hand landmarks in pixels; the swap is kept off them.

    Returns:
        A new ``(H, W, 3)`` ``uint8`` frame; pixels outside the blend mask equal ``frame`` exactly.
    """
    import cv2

    height, width = frame.shape[:2]
    target_pts = extended_points(landmarks)
    box = face_box(target_pts)
    x0, y0 = max(int(np.floor(box[0])) - 2, 0), max(int(np.floor(box[1])) - 2, 0)
    x1, y1 = min(int(np.ceil(box[2])) + 3, width), min(int(np.ceil(box[3])) + 3, height)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return frame.copy()
    map_x, map_y, covered = piecewise_affine_maps(extended_points(identity.landmarks), target_pts,
                                                  (x0, y0, x1, y1))
    warped = cv2.remap(identity.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    oval = np.asarray(landmarks)[list(face_oval_indices()), :2] - (x0, y0)
    radius = config.feather * max(x1 - x0, y1 - y0)
    weight = polygon_mask(oval, (y1 - y0, x1 - x0), radius) * covered
    if hands:
        weight *= 1.0 - hand_mask([h - (x0, y0) for h in hands], weight.shape, radius)
    region = frame[y0:y1, x0:x1]
    if config.color_transfer:
        warped = _match_colour(warped, region, weight)
    out = frame.copy()
    if config.blend == "seamless":
        hard = (weight > 0.5).astype(np.uint8) * 255
        if hard.any():
            ys, xs = np.nonzero(hard)
            centre = (int(x0 + (xs.min() + xs.max() + 1) // 2), int(y0 + (ys.min() + ys.max() + 1) // 2))
            canvas = frame.copy()
            canvas[y0:y1, x0:x1] = warped
            full = np.zeros((height, width), np.uint8)
            full[y0:y1, x0:x1] = hard
            cloned = cv2.seamlessClone(canvas, frame, full, centre, cv2.NORMAL_CLONE)
            warped = cloned[y0:y1, x0:x1]
    blended = np.round(region * (1 - weight[..., None]) + warped * weight[..., None]).astype(np.uint8)
    inside = weight > 0
    out[y0:y1, x0:x1][inside] = blended[inside]
    return out


@dataclass(frozen=True)
class SwapResult:
    output: Path
    n_frames: int
    frames_swapped: int


def _nearest_pose(identities: list[IdentityFace], pose: np.ndarray) -> IdentityFace:
    if len(identities) == 1 or np.isnan(pose).any():
        return identities[0]
    return min(identities, key=lambda face: float(np.sum((face.pose[:2] - pose[:2]) ** 2)))


def swap_video(identity: str | Path, target: str | Path, output: str | Path, config: SwapConfig | None = None,
               store: str | Path | None = None, encode: EncodeOptions | None = None,
               show_progress: bool | None = None) -> SwapResult:
    """Swap ``identity`` onto every frame of ``target``, writing a labelled proxy video to ``output``.

    Target landmarks come from the target's face store (``store``, from ``nice-core track``) when given,
    which also keeps the swap off hands in front of the face; else the largest face is detected and
    followed here. Frames without a face are copied unchanged.
    The output keeps the target's frame count, exact rate, size and audio.
    """
    from nice_core.store import FaceStore

    config = config or SwapConfig()
    show = sys.stderr.isatty() if show_progress is None else show_progress
    target, output = Path(target), Path(output)
    probe = probe_video(target)
    identities = load_identity(identity, config.identity_frames)
    face_store = FaceStore.open(store) if store is not None else None
    if face_store is not None and face_store.n_frames != probe.n_frames:
        face_store.close()
        raise InputError(f"face store {store} has {face_store.n_frames} frames but {target} has {probe.n_frames}")
    swapped = 0
    with native_stderr_silenced() as console, VideoReader(target, probe) as reader:
        detector = None if face_store is not None else FaceMeshDetector(max_faces=4)
        tracker = SubjectTracker(SubjectRule(), reacquire_after=int(round(float(probe.fps))))
        try:
            with VideoWriter(output, probe.width, probe.height, probe.fps, audio_from=target, encode=encode,
                             label=synthetic_label({"target": target, "identity": identity},
                                                   "face swap proxy (nice-core swap)", encode),
                             protect=(identity,)) as writer:
                for index, frame in progress(reader.iter_frames(), total=len(reader), desc="swap",
                                             enabled=show, stream=console):
                    hands = None
                    if face_store is not None:
                        landmarks = face_store["landmarks"][index] if face_store["detected"][index] else None
                        hands = [h for h in face_store["hands"][index] if not np.isnan(h).any()]
                    else:
                        landmarks = tracker.update(detector.detect(frame))
                    if landmarks is None:
                        writer.write(frame)
                        continue
                    face = _nearest_pose(identities, head_pose(landmarks, frame.shape[:2]))
                    writer.write(swap_frame(frame, landmarks, face, config, hands))
                    swapped += 1
        finally:
            if detector is not None:
                detector.close()
            if face_store is not None:
                face_store.close()
    if swapped == 0:
        Path(output).unlink(missing_ok=True)
        raise NoFaceError(f"no face found in any of the {probe.n_frames} frames of {target}")
    return SwapResult(output, probe.n_frames, swapped)

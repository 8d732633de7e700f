"""``nice-core eval``: every metric for a video (and its proxy) against the target, in one streaming pass.

All videos are read in lockstep, one frame of each in memory. The target's face mesh gives the face mask
and the reference landmarks; the target's optical flow (computed once) serves every video's e_stab.
See :mod:`~nice_core.metrics.stability`, :mod:`~nice_core.metrics.attributes` and
:mod:`~nice_core.metrics.image` for the exact definitions.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nice_core.errors import InputError
from nice_core.face.identity import SAME_PERSON_DISTANCE, embedding_distance, face_embedding, reference_embedding
from nice_core.face.landmarks import FaceMeshDetector, native_stderr_silenced
from nice_core.face.subject import SubjectRule, SubjectTracker, reference_distance
from nice_core.io import VideoProbe, VideoReader, probe_video, video_encoding
from nice_core.metrics.attributes import gaze_error_deg, landmark_nme, pose_error_deg
from nice_core.metrics.image import (
    FINE_SIGMA_PX,
    INNER_SHARE,
    OUTLINE_GROW,
    detail,
    face_region_mask,
    face_regions,
    fine_detail_transfer,
    fine_transfer_terms,
    masked_psnr,
    masked_ssim,
)
from nice_core.metrics.stability import TargetMotion, mean_or_none, warp_error
from nice_core.progress import progress

#: Frames sampled (evenly) for the identity embedding, which costs about 75 ms a frame.
IDENTITY_SAMPLES = 24

DEFINITIONS = {
    "e_stab": "mean over frames of the masked MSE (RGB in [0,1]) between frame t and frame t-1 warped by the "
              "target's DIS backward flow; face-oval mask of the target, occluded pixels removed by a "
              "forward-backward check (alpha 0.01, beta 0.5); the frame pair across a shot cut is left out",
    "gaze_error_deg": "angle between eye-in-head gaze vectors from the irises (eyeball radius 0.4 eye width)",
    "pose_error_deg": "mean absolute difference of yaw, pitch and roll (solvePnP, 6-point generic face)",
    "landmark_nme_2d": "mean 2D distance of the 478 face-mesh landmarks / target inter-ocular distance",
    "landmark_nme_3d": "mean 3D distance of the 478 face-mesh landmarks / target 3D inter-ocular distance",
    "detail_ratio": "mean |Laplacian| of grey inside the face / the same for the reference (else the target)",
    "identity_distance": f"dlib 128-D embedding distance to the identity image ({IDENTITY_SAMPLES} frames; "
                         f"below {SAME_PERSON_DISTANCE}: same person)",
    "psnr": "PSNR (dB) against the clean reference inside the target's face mask",
    "ssim": "SSIM (grey, Gaussian sigma 1.5) against the clean reference, averaged inside the face mask",
    "psnr_inner": f"PSNR (dB) against the clean reference inside the target's face oval shrunk to {INNER_SHARE}",
    "psnr_ring": f"PSNR (dB) against the clean reference in the outer ring: the oval grown by {OUTLINE_GROW} "
                 "without the inner face",
    "fine_detail_transfer": f"share of the fine structure (luma minus its Gaussian blur, sigma {FINE_SIGMA_PX} px) "
                            "of reference - target that video - target reproduces, pooled over frames: "
                            "sum <f(O-X), f(G-X)> / sum <f(G-X), f(G-X)> in the grown face oval (1 all, 0 none)",
    "uv_detail_gain": "share of the identity's static detail the video reproduces in UV (pose-free) space: "
                      "<D_video - D_target, D_id - D_target> / |D_id - D_target|^2 over the skin, D the "
                      "visibility-weighted median over frames of the high-pass of UV log-luminance (1 all, 0 "
                      "the target's own); needs the 3D prior",
}
_REFERENCE_KEYS = ("psnr", "ssim", "psnr_inner", "psnr_ring")
_PER_FRAME = ("e_stab", "gaze_error_deg", "pose_error_deg", "landmark_nme_2d", "landmark_nme_3d", "detail",
              *_REFERENCE_KEYS)


@dataclass(frozen=True)
class _Shared:
    """What every video's measures of one frame share: the target's flow from the previous frame, its face
    mask and regions and landmarks, the target frame, the clean reference frame (or ``None``)."""

    flow: np.ndarray | None
    mask: np.ndarray
    regions: dict[str, np.ndarray]
    target_lm: np.ndarray | None
    target: np.ndarray
    reference: np.ndarray | None
    size: tuple[int, int]


class _Stream:
    """One evaluated video: its frames, face tracker, previous frame and per-frame measures."""

    def __init__(self, reader: VideoReader, size: tuple[int, int], with_reference: bool, offset: int = 0,
                 rule: SubjectRule | None = None) -> None:
        self.reader = reader
        self.offset = offset
        self.available = reader.probe.n_frames
        self.frames = reader.iter_frames(max(0, offset))
        self.size = size
        self.detector = FaceMeshDetector(max_faces=2)
        self.tracker = SubjectTracker(rule or SubjectRule(), reacquire_after=12)
        self.previous: np.ndarray | None = None
        keys = _PER_FRAME if with_reference else _PER_FRAME[:-len(_REFERENCE_KEYS)]
        self.values: dict[str, list[float | None]] = {k: [] for k in keys}
        self.fine_terms: list[tuple[float, float] | None] = []
        self.embeddings: list[float] = []

    def measure(self, frame: np.ndarray | None, lm: np.ndarray | None, shared: _Shared) -> None:
        """Append this video's per-frame measures of one frame (``None`` where the frame or a face is
        missing)."""
        values = self.values
        if frame is None:  # a proxy frame the offset leaves out
            for name in values:
                values[name].append(None)
            self.fine_terms.append(None)
            self.previous = None
            return
        mask, target_lm, ref_frame = shared.mask, shared.target_lm, shared.reference
        values["e_stab"].append(None if shared.flow is None or self.previous is None
                                else warp_error(frame, self.previous, shared.flow, mask))
        self.previous = frame
        both = lm is not None and target_lm is not None
        values["gaze_error_deg"].append(gaze_error_deg(target_lm, lm) if both else None)
        values["pose_error_deg"].append(pose_error_deg(target_lm, lm, shared.size) if both else None)
        values["landmark_nme_2d"].append(landmark_nme(target_lm, lm, 2) if both else None)
        values["landmark_nme_3d"].append(landmark_nme(target_lm, lm, 3) if both else None)
        values["detail"].append(detail(frame, mask))
        if "psnr" in values:
            values["psnr"].append(masked_psnr(frame, ref_frame, mask))
            values["ssim"].append(masked_ssim(frame, ref_frame, mask))
            values["psnr_inner"].append(masked_psnr(frame, ref_frame, shared.regions["inner"]))
            values["psnr_ring"].append(masked_psnr(frame, ref_frame, shared.regions["ring"]))
            self.fine_terms.append(fine_transfer_terms(frame, ref_frame, shared.target, shared.regions["face"]))

    def covers(self, t: int) -> bool:
        """Whether target frame ``t`` has a frame in this video (a proxy with an offset may lack a few)."""
        return 0 <= t + self.offset < self.available

    def next_frame(self, t: int = 0) -> np.ndarray | None:
        import cv2

        if not self.covers(t):
            return None
        _, frame = next(self.frames)
        extra = (frame.shape[0] - self.size[0], frame.shape[1] - self.size[1])
        if extra != (0, 0) and 0 <= min(extra) and max(extra) <= 1:
            frame = frame[: self.size[0], : self.size[1]]  # an odd-sized target written padded to even sizes
        elif extra != (0, 0):
            frame = cv2.resize(frame, self.size[::-1], interpolation=cv2.INTER_AREA)
        return frame


#: A face in an evaluated video is the target's subject when its box overlaps the subject's by this much.
SAME_PLACE_IOU = 0.3


def _subjects(streams: dict[str, _Stream], frames: dict[str, np.ndarray | None], distance_for) -> dict:
    """Every stream's landmarks of the *target's* subject in this frame.

    The target's tracker follows ``subject`` (as tracking does); the other videos show the same scene, so
    their subject is the face at the same place (box IoU at least :data:`SAME_PLACE_IOU`), whatever its size:
    on a clip with two people the metrics compare the same person, not whichever face is largest.
    """
    from nice_core.face.subject import box_iou, face_box

    target = streams["target"]
    faces = target.detector.detect(frames["target"])
    subject = target.tracker.update(faces, distance_for(frames["target"]) if distance_for else None)
    out = {"target": subject}
    for key, stream in streams.items():
        if key == "target" or frames[key] is None:
            continue
        found = stream.detector.detect(frames[key])
        if subject is None or not found:
            out[key] = None
            continue
        box = face_box(subject)
        overlaps = [box_iou(box, face_box(face)) for face in found]
        best = int(np.argmax(overlaps))
        out[key] = found[best] if overlaps[best] >= SAME_PLACE_IOU else None
    return out


def _same_picture(target: VideoProbe, other: VideoProbe, role: str, path: str | Path) -> None:
    """Refuse a video whose picture cannot be the target's: another aspect ratio or rotation."""
    if other.rotation != target.rotation:
        raise InputError(f"{role} {path} is rotated {other.rotation} degrees, the target {target.rotation}: not the "
                         "target's picture")
    if abs(other.width / other.height - target.width / target.height) > 0.01 * target.width / target.height:
        raise InputError(f"{role} {path} is {other.width}x{other.height}, the target {target.width}x{target.height}"
                         ": another aspect ratio, not the target's picture")


def _open(path: str | Path, n: int, role: str, offset: int = 0, target: VideoProbe | None = None) -> VideoReader:
    """Open an evaluated video; the video itself must cover every target frame, a proxy with a frame offset
    at least half of them (the frames it lacks get no values)."""
    probe = probe_video(path)
    if target is not None:
        _same_picture(target, probe, role, path)
    covered = min(n, probe.n_frames - offset) - max(0, -offset)
    if role == "proxy" and offset and covered >= 0.5 * n:
        return VideoReader(path, probe)
    if offset < 0:
        raise InputError(f"{role} {path} starts {-offset} frames after the target; evaluation needs every frame")
    if probe.n_frames != n + offset:
        raise InputError(f"{role} {path} has {probe.n_frames} frames but the target has {n}"
                         + (f" (+{offset} offset)" if offset else ""))
    return VideoReader(path, probe)


def _subject_rule(subject: str) -> SubjectRule:
    try:
        rule = SubjectRule.parse(subject)
    except ValueError as err:
        raise InputError(str(err)) from None
    if rule.mode == "reference" and not Path(rule.reference).is_file():
        raise InputError(f"subject reference image not found: {rule.reference}")
    return rule


def evaluate(target: str | Path, video: str | Path, proxy: str | Path | None = None,
             identity: str | Path | None = None, reference: str | Path | None = None,
             name: str | None = None, method: str | None = None, show_progress: bool | None = None,
             video_offset: int = 0, proxy_offset: int = 0, uncertainty: str | Path | None = None,
             subject: str = "largest", store: str | Path | None = None,
             prior3d: str | Path | None = None, motion: str | Path | None = None) -> dict:
    """Metrics of ``video`` (and ``proxy``, if given) against ``target``; the JSON-ready result.

    ``uncertainty`` (the carrier's sigma video from ``nice-core composite --save-uncertainty``) is not
    measured: its path is recorded (key ``"uncertainty"``) for the report's frame strips.

    ``video_offset`` is a constant frame offset of ``video`` (its frame ``t + offset`` shows target frame
    ``t``), as found by :func:`nice_core.proxy.check.check_proxy`; ``proxy_offset`` the same for ``proxy``.
    Videos at another size are resized.

    With the target's ``store`` and its ``prior3d`` (the 3D prior stage's output), the UV detail transfer
    (:mod:`nice_core.prior3d.score`) is measured for the video and the proxy, and ``"uv_detail"`` holds the
    identity's, the target's and the video's static detail maps as PNG data URIs for the report.

    ``motion``: the target's ``motion.h5`` (:mod:`nice_core.metrics.motion`, made once per target), read
    instead of computing the target's flow again; the numbers are the same.

    Raises:
        InputError: unreadable inputs, frame counts that differ from the target's, or a motion file of
            another video.
    """
    show = sys.stderr.isatty() if show_progress is None else show_progress
    rule = _subject_rule(subject)
    if uncertainty is not None and not Path(uncertainty).is_file():
        raise InputError(f"uncertainty video not found: {uncertainty}")
    target_probe = probe_video(target)
    n, size = target_probe.n_frames, (target_probe.height, target_probe.width)
    sampled = set(np.unique(np.linspace(0, n - 1, min(IDENTITY_SAMPLES, n)).astype(int)).tolist())
    with ExitStack() as stack, native_stderr_silenced() as console:
        identity_vector = reference_embedding(identity) if identity is not None else None
        target_reader = stack.enter_context(VideoReader(target, target_probe))
        tp = target_probe
        streams = {"video": _Stream(stack.enter_context(_open(video, n, "video", video_offset, tp)), size,
                                    reference is not None, video_offset)}
        if proxy is not None:
            streams["proxy"] = _Stream(stack.enter_context(_open(proxy, n, "proxy", proxy_offset, tp)), size,
                                       reference is not None, proxy_offset)
        streams["target"] = _Stream(target_reader, size, False, rule=rule)
        distance_for = reference_distance(rule)
        ref_reader = (stack.enter_context(_open(reference, n, "reference", 0, tp)) if reference is not None
                      else None)
        ref_frames = ref_reader.iter_frames() if ref_reader is not None else None
        if motion is not None:
            from nice_core.metrics.motion import CachedMotion

            motion = stack.enter_context(CachedMotion(motion, target, target_probe))
        else:
            motion = TargetMotion()
        baseline_detail: list[float | None] = []
        known_cuts, finder = _shot_cuts(store, target_probe)
        try:
            for t in progress(range(n), total=n, desc="eval", enabled=show, stream=console):
                frames = {key: s.next_frame(t) for key, s in streams.items()}
                if t in known_cuts:  # a new shot: every video's subject is found again
                    for stream in streams.values():
                        stream.tracker.cut()
                if finder is not None:
                    finder.feed(t, frames["target"])
                ref_frame = next(ref_frames)[1] if ref_frames is not None else None
                landmarks = _subjects(streams, frames, distance_for)
                target_lm = landmarks["target"]
                mask = face_region_mask(target_lm, size) if target_lm is not None else np.zeros(size, bool)
                empty = np.zeros(size, bool)
                regions = face_regions(target_lm, size) if target_lm is not None else dict.fromkeys(
                    ("face", "inner", "ring"), empty)
                flow = motion.step(frames["target"])
                baseline = ref_frame if ref_frame is not None else frames["target"]
                baseline_detail.append(detail(baseline, mask))
                shared = _Shared(flow, mask, regions, target_lm, frames["target"], ref_frame, size)
                for key, stream in streams.items():
                    stream.measure(frames[key], landmarks.get(key), shared)
                    frame, lm = frames[key], landmarks.get(key)
                    if identity_vector is not None and t in sampled and lm is not None and key != "target" \
                            and frame is not None:
                        stream.embeddings.append(embedding_distance(face_embedding(frame, lm), identity_vector))
        finally:
            for stream in streams.values():
                stream.detector.close()
    for cut in known_cuts or (finder.cuts if finder is not None else ()):
        for stream in streams.values():  # the flow across a cut does not say how the picture moved
            stream.values["e_stab"][cut] = None
    summaries = {key: _summary(stream, baseline_detail, identity_vector is not None and key != "target")
                 for key, stream in streams.items()}
    uv_detail = None
    if prior3d is not None:
        if store is None:
            raise InputError("the UV detail score needs the target's face store with its 3D prior (--store)")
        uv_detail = _uv_detail(summaries, store, prior3d, {"video": (video, video_offset),
                                                           "proxy": (proxy, proxy_offset)})
    # The evaluated video's metrics (and its "per_frame" curves) are top-level keys; the proxy's, the same
    # structure, go under "proxy_metrics".
    return {
        "name": name or Path(video).stem, "method": method,
        "target": str(target), "video": str(video), "proxy": None if proxy is None else str(proxy),
        "identity": None if identity is None else str(identity),
        "reference": None if reference is None else str(reference),
        "uncertainty": None if uncertainty is None else str(uncertainty),
        "frames": n, "fps": f"{target_probe.fps_num}/{target_probe.fps_den}",
        # how the outputs are compressed: a detector must not tell refined from per-frame videos by it
        "encoding": video_encoding(video), "proxy_encoding": None if proxy is None else video_encoding(proxy),
        **summaries["video"], "proxy_metrics": summaries.get("proxy"),
        "target_e_stab": summaries["target"]["e_stab"], "definitions": DEFINITIONS,
        **({"uv_detail": uv_detail} if uv_detail is not None else {}),
    }


def _uv_detail(summaries: dict, store: str | Path, prior3d: str | Path, videos: dict) -> dict:
    """``uv_detail_gain`` into the video's and the proxy's summaries; the maps as PNG data URIs."""
    from nice_core.prior3d.score import detail_map_uri, uv_detail_scores

    maps, facts = {}, {}
    for key, (path, offset) in videos.items():
        if path is None:
            continue
        scores = uv_detail_scores(path, store, prior3d, video_offset=offset)
        found = scores.pop("maps")
        summaries[key]["uv_detail_gain"] = scores["uv_detail_gain"]
        maps.setdefault("identity", found["identity"])
        maps.setdefault("target", found["target"])
        maps[key] = found["detail"]
        facts = {"source": scores["source"], "added_rms": scores["uv_added_rms"], "frames": scores["frames"]}
    return {**facts, "maps": {name: detail_map_uri(image) for name, image in maps.items()}}


def video_metrics(result: dict) -> dict:
    """The evaluated video's metrics from a result (its top-level metric keys and ``per_frame``)."""
    return {k: v for k, v in result.items() if k in (*DEFINITIONS, "detail_ratio", "per_frame")}


def _shot_cuts(store: str | Path | None, probe: VideoProbe):
    """The target's shot cuts: from its face store when given (as tracking found them), else ``set()`` and a
    :class:`~nice_core.face.shots.ShotDetector` to find them on the target's frames (with the default
    shortest shot)."""
    from nice_core.config import default
    from nice_core.face.shots import ShotDetector

    if store is not None:
        from nice_core.store import FaceStore

        with FaceStore.open(store) as fs:
            shots = fs.shots()
        return set((np.flatnonzero(np.diff(shots)) + 1).tolist()), None
    return set(), ShotDetector(max(1, round(default("face.min_shot_s") * float(probe.fps))))


def _summary(stream: _Stream, baseline_detail: list[float | None], with_identity: bool) -> dict:
    v = stream.values
    ratios = [d / b for d, b in zip(v["detail"], baseline_detail) if d is not None and b]
    out = {
        "e_stab": mean_or_none(v["e_stab"]),
        "gaze_error_deg": mean_or_none(v["gaze_error_deg"]),
        "pose_error_deg": mean_or_none(v["pose_error_deg"]),
        "landmark_nme_2d": mean_or_none(v["landmark_nme_2d"]),
        "landmark_nme_3d": mean_or_none(v["landmark_nme_3d"]),
        "detail_ratio": float(np.mean(ratios)) if ratios else None,
    }
    if with_identity:
        out["identity_distance"] = float(np.mean(stream.embeddings)) if stream.embeddings else None
    if "psnr" in v:
        for key in _REFERENCE_KEYS:
            out[key] = mean_or_none(v[key])
        out["fine_detail_transfer"] = fine_detail_transfer(stream.fine_terms)
    out["per_frame"] = {k: [None if x is None else round(float(x), 6) for x in vals] for k, vals in v.items()}
    return out


def format_table(result: dict) -> str:
    """A readable proxy-vs-output table of the headline numbers."""
    output = video_metrics(result)
    keys = [k for k in ("e_stab", "gaze_error_deg", "pose_error_deg", "landmark_nme_2d", "landmark_nme_3d",
                        "detail_ratio", "identity_distance", "psnr", "ssim", "psnr_inner", "psnr_ring",
                        "fine_detail_transfer", "uv_detail_gain") if k in output]
    columns = [("output", output)] + ([("proxy", result["proxy_metrics"])] if result["proxy_metrics"] else [])

    def fmt(value: float | None, key: str) -> str:
        if value is None:
            return "-"
        return f"{value:.5f}" if key == "e_stab" else f"{value:.3f}"

    lines = [f"{result['name']}: {result['frames']} frames; target's own e_stab = "
             f"{fmt(result['target_e_stab'], 'e_stab')}",
             f"{'metric':20s}" + "".join(f"{label:>12s}" for label, _ in columns)]
    for key in keys:
        lines.append(f"{key:20s}" + "".join(f"{fmt(m.get(key), key):>12s}" for _, m in columns))
    return "\n".join(lines)

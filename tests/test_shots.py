"""Shot cuts (nice_core/face/shots.py): found in a stream, and no stage carries anything across one."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from nice_core.face.alignment import smooth_params, valid_runs
from nice_core.face.shots import ShotDetector, shot_ids
from nice_core.io import VideoReader, VideoWriter
from nice_core.provenance import synthetic_label

from conftest import SAMPLE

#: (first sample frame, frames) of each shot of the cut clip: two moments of the one shipped clip.
SHOTS = ((0, 24), (300, 24))


def two_faces(frame: np.ndarray) -> np.ndarray:
    """The frame and its smaller mirror image side by side (640x180): the larger face on the left."""
    big = cv2.resize(frame, (320, 180), interpolation=cv2.INTER_AREA)
    small = cv2.resize(frame[:, ::-1], (256, 144), interpolation=cv2.INTER_AREA)
    return np.hstack([big, cv2.copyMakeBorder(small, 18, 18, 32, 32, cv2.BORDER_CONSTANT)])


def write_cut_clip(out: Path, compose) -> Path:
    """Shot 1: ``compose`` of sample frames 0-23; shot 2: of frames 300-323, mirrored (a hard cut at 24)."""
    wanted = {first + k: shot for shot, (first, count) in enumerate(SHOTS) for k in range(count)}
    with VideoReader(SAMPLE) as reader:
        probe = reader.probe
        frames = [(wanted[i], f) for i, f in reader.iter_frames() if i in wanted]
    size = compose(frames[0][1]).shape
    with VideoWriter(out, size[1], size[0], probe.fps, label=synthetic_label({"source": SAMPLE})) as writer:
        for shot, frame in frames:
            picture = compose(frame)
            writer.write(np.ascontiguousarray(picture[:, ::-1] if shot else picture))
    return out


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cut_clip(tmp_path_factory.mktemp("shots") / "cut.mp4", two_faces)


@pytest.fixture(scope="module")
def cut_store(cut_clip: Path) -> Path:
    """The cut clip tracked with the default shot detection (64 px crops, no hands: only the track matters)."""
    from nice_core.face import TrackConfig, track_video

    track_video(cut_clip, cut_clip.parent / "tracked", TrackConfig(crop_size=64, preview=False, detect_hands=False),
                show_progress=False)
    return cut_clip.parent / "tracked" / "face.h5"


def test_the_cut_is_found_and_a_continuous_clip_has_none(cut_clip: Path) -> None:
    detector = ShotDetector(min_shot=12)
    with VideoReader(cut_clip) as reader:
        for index, frame in reader.iter_frames():
            assert all(index - 2 <= c <= index for c in detector.feed(index, frame))  # at most LAG frames late
    assert detector.cuts == [24]
    steady = ShotDetector(min_shot=12)
    with VideoReader(SAMPLE) as reader:
        for index, frame in reader.iter_frames():
            steady.feed(index, frame)  # 472 frames of a hand-held camera move: no cut
    assert steady.cuts == []
    assert shot_ids([24], 48).tolist() == [0] * 24 + [1] * 24
    with pytest.raises(ValueError, match="outside"):
        shot_ids([48], 48)


def test_smoothing_never_crosses_a_cut() -> None:
    params = np.zeros((40, 4))
    params[20:, 0] = 100.0  # the face jumps at the cut
    shots = shot_ids([20], 40)
    valid = np.ones(40, bool)
    valid[5] = False
    assert valid_runs(valid, shots) == [(0, 5), (6, 20), (20, 40)]
    kept = smooth_params(params, valid, 3.0, shots)
    assert np.allclose(kept[:, 0], params[:, 0])  # each shot is constant: nothing to smooth
    blended = smooth_params(params, valid, 3.0)
    assert 0 < blended[19, 0] < 100  # the old behaviour, which this prevents


@pytest.mark.slow
def test_tracking_finds_the_subject_again_after_a_cut(cut_clip: Path, cut_store: Path, tmp_path: Path) -> None:
    """On shot 2 the larger face is on the right: the subject ("largest") is chosen again there, where
    following the last box would keep the smaller face on the left; the alignment is smoothed per shot."""
    from nice_core.face import TrackConfig, track_video
    from nice_core.store import FaceStore

    config = TrackConfig()
    with FaceStore.open(cut_store) as store:
        shots, raw, align = store.shots(), store["align_raw"][:], store["align"][:]
        has_face, landmarks, cuts = store["has_face"][:], store["landmarks"][:], store.json_attr("cuts")
    assert cuts == [24] and shots.tolist() == [0] * 24 + [1] * 24
    centre_x = np.nanmean(landmarks[..., 0], axis=1)
    assert (centre_x[:24] < 320).all() and (centre_x[24:] > 320).all(), centre_x.round()
    sigma = config.smooth_sigma_s * float(VideoReader(cut_clip).probe.fps)
    assert np.allclose(align[:24], smooth_params(raw[:24], has_face[:24], sigma))
    assert np.allclose(align[24:], smooth_params(raw[24:], has_face[24:], sigma))

    track_video(cut_clip, tmp_path / "plain", TrackConfig(crop_size=64, preview=False, detect_hands=False,
                                                          shot_cuts=False), show_progress=False)
    with FaceStore.open(tmp_path / "plain" / "face.h5") as store:
        followed = np.nanmean(store["landmarks"][24:, :, 0], axis=1)
        assert store.shots().tolist() == [0] * 48
    assert (followed < 320).all()  # without cuts, the last box's neighbour: the other face


@pytest.mark.slow
def test_e_stab_leaves_out_the_pair_across_a_cut(cut_clip: Path, cut_store: Path) -> None:
    """The flow from the last frame of shot 1 to the first of shot 2 does not say how anything moved: that
    frame pair has no e_stab, whether the cut comes from the store or eval finds it itself."""
    from nice_core.metrics import evaluate

    found = evaluate(cut_clip, cut_clip, show_progress=False)
    stored = evaluate(cut_clip, cut_clip, show_progress=False, store=cut_store)
    for result in (found, stored):
        curve = result["per_frame"]["e_stab"]
        assert curve[24] is None and curve[23] is not None and curve[25] is not None

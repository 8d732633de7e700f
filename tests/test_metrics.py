"""Validation of the metrics on real footage with injected, known faults."""

import numpy as np
import pytest

from nice_core.io import VideoReader, VideoWriter
from nice_core.metrics import evaluate
from nice_core.metrics.attributes import gaze_error_deg, landmark_nme, pose_error_deg
from nice_core.metrics.image import masked_psnr, masked_ssim
from nice_core.provenance import synthetic_label

from conftest import run_ffmpeg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip24(clips):
    out = clips / "clip24.mp4"
    run_ffmpeg("-i", str(clips / "short.mp4"), "-frames:v", "24", "-an", "-c:v", "libx264", "-crf", "16", str(out))
    return out


def rewrite(source, out, edit):
    """Write ``edit(index, frame)`` of every frame of ``source`` to ``out``."""
    label = synthetic_label({"source": source})
    with VideoReader(source) as reader, VideoWriter(out, reader.probe.width, reader.probe.height,
                                                    reader.probe.fps, label=label) as writer:
        for index, frame in reader.iter_frames():
            writer.write(edit(index, frame))
    return out


def flicker(strength, seed=0):
    offsets = np.random.default_rng(seed).normal(0, 1, 100)

    def edit(index, frame):
        return np.clip(frame.astype(np.float32) + strength * offsets[index], 0, 255).astype(np.uint8)
    return edit


@pytest.fixture(scope="module", autouse=True)
def _ensure_short(short_clip):
    return short_clip


@pytest.fixture(scope="module")
def flickering(clip24, tmp_path_factory):
    folder = tmp_path_factory.mktemp("flicker")
    return {s: rewrite(clip24, folder / f"flicker{s}.mp4", flicker(s)) for s in (2, 6, 12)}


def test_e_stab_orders_stable_flickering_and_blurred(clip24, flickering, tmp_path):
    itself = evaluate(clip24, clip24, show_progress=False)
    scores = {s: evaluate(clip24, v, show_progress=False)["e_stab"] for s, v in flickering.items()}
    assert itself["e_stab"] == pytest.approx(itself["target_e_stab"])
    assert itself["e_stab"] < 0.2 * scores[6]
    assert scores[2] < scores[6] < scores[12]  # grows monotonically with flicker strength
    # A temporal blur of the flickering video (3-frame mean) sits between the target and the flicker.
    frames = [f.astype(np.float32) for _, f in VideoReader(flickering[12]).iter_frames()]

    def blur(index, frame):
        window = frames[max(0, index - 1):index + 2]
        return np.clip(np.mean(window, axis=0), 0, 255).astype(np.uint8)
    blurred = evaluate(clip24, rewrite(flickering[12], tmp_path / "blurred.mp4", blur), show_progress=False)
    assert itself["e_stab"] < blurred["e_stab"] < scores[12]


def test_a_video_against_itself_has_no_attribute_difference(clip24):
    result = evaluate(clip24, clip24, reference=clip24, show_progress=False)
    for key in ("gaze_error_deg", "pose_error_deg", "landmark_nme_2d", "landmark_nme_3d"):
        assert result[key] == pytest.approx(0.0, abs=1e-5)
    assert result["detail_ratio"] == pytest.approx(1.0)
    assert result["psnr"] == 100.0 and result["ssim"] == pytest.approx(1.0)
    assert len(result["per_frame"]["e_stab"]) == 24 and result["per_frame"]["e_stab"][0] is None


def test_a_shifted_copy_raises_the_landmark_error(clip24, tmp_path):
    shifted = rewrite(clip24, tmp_path / "shifted.mp4", lambda i, f: np.roll(f, (3, 5), axis=(0, 1)))
    result = evaluate(clip24, shifted, show_progress=False)
    assert result["landmark_nme_2d"] > 0.02
    assert result["landmark_nme_2d"] > 5 * evaluate(clip24, clip24, show_progress=False)["landmark_nme_2d"] + 0.01


def test_identity_distance_of_the_same_person(clip24, sample, tmp_path):
    import cv2

    still = tmp_path / "later.png"
    cv2.imwrite(str(still), cv2.cvtColor(VideoReader(sample)[400], cv2.COLOR_RGB2BGR))
    result = evaluate(clip24, clip24, identity=still, show_progress=False)
    assert result["identity_distance"] < 0.6  # dlib's same-person threshold


def test_attribute_functions_see_real_changes():
    rng = np.random.default_rng(0)
    face = rng.uniform(100, 300, (478, 3))
    assert gaze_error_deg(face, face) == pytest.approx(0.0, abs=1e-6)
    moved = face.copy()
    moved[468:478, 0] += 4  # irises look sideways
    assert gaze_error_deg(face, moved) > 1.0
    assert landmark_nme(face, face + [2, 0, 0], 2) > 0
    assert pose_error_deg(face, face, (480, 640)) == pytest.approx(0.0, abs=1e-6)


def test_masked_psnr_and_ssim_only_look_inside():
    a = np.full((40, 40, 3), 100, np.uint8)
    b = a.copy()
    b[:, 20:] = 0
    mask = np.zeros((40, 40), bool)
    mask[5:35, 2:12] = True
    assert masked_psnr(a, b, mask) == 100.0
    assert masked_ssim(a, b, mask) == pytest.approx(1.0, abs=1e-6)
    assert masked_psnr(a, b, ~mask) < 15


@pytest.fixture(scope="module")
def two_people(clips):
    """Two faces side by side (the sample and its mirror image): in the target the left one is larger, in the
    "video" the right one is, so "the largest face" is a different person in each."""
    target, video = clips / "two_target.mp4", clips / "two_video.mp4"
    run_ffmpeg("-i", str(clips / "short.mp4"), "-frames:v", "24", "-an", "-filter_complex",
               "[0:v]scale=320:180[a];[0:v]hflip,scale=256:144,pad=320:180:32:18[b];[a][b]hstack", "-c:v",
               "libx264", "-crf", "16", str(target))
    run_ffmpeg("-i", str(clips / "short.mp4"), "-frames:v", "24", "-an", "-filter_complex",
               "[0:v]scale=288:162,pad=320:180:16:9[a];[0:v]hflip,scale=320:180[b];[a][b]hstack", "-c:v",
               "libx264", "-crf", "16", str(video))
    return target, video


def test_eval_compares_the_same_person_on_a_two_person_clip(two_people):
    target, video = two_people
    result = evaluate(target, video, show_progress=False, subject="index:0")
    assert result["landmark_nme_2d"] < 0.6  # the left face, a little smaller: not the other person (~8)
    default = evaluate(target, video, show_progress=False)
    assert default["landmark_nme_2d"] < 0.6  # "largest" is the target's largest, followed in the video


def test_eval_refuses_a_video_that_is_not_the_targets_picture(clip24, clips):
    from nice_core.errors import InputError

    cropped = clips / "cropped43.mp4"
    run_ffmpeg("-i", str(clip24), "-vf", "crop=480:360", "-c:v", "libx264", "-crf", "16", str(cropped))
    with pytest.raises(InputError, match="another aspect ratio"):
        evaluate(clip24, cropped, show_progress=False)


def test_eval_error_is_the_last_line(clip24, tmp_path):
    """Once mediapipe has run, its native shutdown warning used to follow the error line."""
    import subprocess
    import sys

    import cv2

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    done = subprocess.run([sys.executable, "-m", "nice_core", "eval", "--target", str(clip24), "--video", str(clip24),
                           "--subject", str(blank), "--json", str(tmp_path / "e.json")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"nice-core: error: no face in the reference image {blank}"]
    assert not (tmp_path / "e.json").exists()


def test_the_targets_cached_motion_gives_the_same_numbers(clip24, flickering, tmp_path):
    """`nice-core motion` once per target, `eval --motion` for each video: e_stab and its per-frame curve
    as computed (bit for bit), the file streamed frame by frame; a motion file of another video is refused."""
    import subprocess
    import sys

    import h5py

    from nice_core.errors import InputError

    motion = tmp_path / "motion.h5"
    done = subprocess.run([sys.executable, "-m", "nice_core", "motion", "--target", str(clip24), "-o", str(motion),
                           "-q"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with h5py.File(motion) as h5:
        assert h5["backward"].shape == (24, 2, 360, 640) and h5["backward"].chunks == (1, 2, 360, 640)
        assert h5["valid"][1:].mean() > 0.9 and not h5["backward"][0].any()
    for video in (clip24, flickering[6]):
        computed = evaluate(clip24, video, show_progress=False)
        cached = evaluate(clip24, video, show_progress=False, motion=motion)
        assert cached["e_stab"] == computed["e_stab"] and cached["target_e_stab"] == computed["target_e_stab"]
        assert cached["per_frame"] == computed["per_frame"]
    with pytest.raises(InputError, match="not the motion of .*computed on"):
        evaluate(flickering[6], clip24, show_progress=False, motion=motion)

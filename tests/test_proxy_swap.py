"""The built-in swapper, as a self-swap only: the identity is a still of the same person."""

from fractions import Fraction

import cv2
import numpy as np
import pytest

from nice_core.errors import NoFaceError
from nice_core.io import VideoReader, VideoWriter, probe_video
from nice_core.provenance import synthetic_label
from nice_core.proxy.swap import SwapConfig, load_identity, swap_frame, swap_video

from conftest import psnr

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def identity_still(sample, tmp_path_factory):
    """A frame of the same woman from later in the sample (a self-swap)."""
    path = tmp_path_factory.mktemp("identity") / "identity.png"
    cv2.imwrite(str(path), cv2.cvtColor(VideoReader(sample)[300], cv2.COLOR_RGB2BGR))
    return path


def test_identity_video_is_reduced_to_frontal_frames(sample):
    faces = load_identity(sample, count=3)
    assert len(faces) == 3
    assert all(abs(f.pose[0]) < 15 and abs(f.pose[1]) < 15 for f in faces)
    assert faces[0].landmarks.shape == (478, 3)


def test_identity_without_a_face_is_refused(no_face_clip):
    with pytest.raises(NoFaceError, match="no face found in the identity"):
        load_identity(no_face_clip)


@pytest.mark.parametrize("blend", ["feather", "seamless"])
def test_swap_frame_changes_the_face_and_nothing_outside(identity_still, short_clip, blend):
    from nice_core.face.landmarks import FaceMeshDetector

    identity = load_identity(identity_still)[0]
    frame = VideoReader(short_clip)[5]
    detector = FaceMeshDetector(max_faces=1, static_image_mode=True)
    landmarks = detector.detect(frame)[0]
    detector.close()
    out = swap_frame(frame, landmarks, identity, SwapConfig(blend=blend))
    changed = np.any(out != frame, axis=2)
    x0, y0 = landmarks[:, :2].min(0) - 2
    x1, y1 = landmarks[:, :2].max(0) + 3
    yy, xx = np.mgrid[: frame.shape[0], : frame.shape[1]]
    outside_face_box = (xx < x0) | (xx > x1) | (yy < y0) | (yy > y1)
    assert not changed[outside_face_box].any()
    inner = (xx > x0 + 0.3 * (x1 - x0)) & (xx < x1 - 0.3 * (x1 - x0)) & (yy > y0 + 0.3 * (y1 - y0)) & (
        yy < y1 - 0.3 * (y1 - y0))
    assert np.abs(out[inner].astype(int) - frame[inner]).mean() > 3


def test_swap_video_keeps_the_target_format(identity_still, short_clip, tmp_path):
    out = tmp_path / "proxy.mp4"
    result = swap_video(identity_still, short_clip, out, show_progress=False)
    assert result.frames_swapped == 48
    target, proxy = probe_video(short_clip), probe_video(out)
    assert (proxy.n_frames, proxy.width, proxy.height) == (target.n_frames, target.width, target.height)
    assert proxy.fps == Fraction(24000, 1001) and proxy.audio is not None
    assert proxy.tags["synthetic_media"] == "true" and "input_identity_sha256" in proxy.tags
    # Compare with the target passed through the same encoder, so only the swap differs, not the codec.
    copy = tmp_path / "copy.mp4"
    label = synthetic_label({"target": short_clip})
    with VideoReader(short_clip) as reader, VideoWriter(copy, 640, 360, target.fps, label=label) as writer:
        for frame in reader:
            writer.write(frame)
    a, b = VideoReader(copy)[20], VideoReader(out)[20]
    # In this part of the sample the face spans columns 363-542 and rows 114-313.
    background, face = (slice(None), slice(0, 300)), (slice(160, 290), slice(400, 510))
    assert psnr(a[background], b[background]) > 40
    assert psnr(a[face], b[face]) < 30


def test_swap_uses_the_store_and_keeps_off_hands(identity_still, hand_clip, tmp_path):
    from nice_core.face import TrackConfig, track_video
    from nice_core.store import FaceStore

    track = track_video(hand_clip, tmp_path / "track", TrackConfig(crop_size=64, preview=False),
                        show_progress=False)
    out = tmp_path / "proxy.mp4"
    swap_video(identity_still, hand_clip, out, store=track.store, show_progress=False)
    with FaceStore.open(track.store) as store:
        index = int(np.flatnonzero(~np.isnan(store["hands"][:, 0, 0, 0]))[0])
        hand = store["hands"][index, 0]
    tip = np.round(hand[8]).astype(int)  # index fingertip
    a, b = VideoReader(hand_clip)[index], VideoReader(out)[index]
    patch = (slice(tip[1] - 3, tip[1] + 4), slice(tip[0] - 3, tip[0] + 4))
    assert np.abs(a[patch].astype(int) - b[patch]).mean() < 4


def test_cli_swap(identity_still, short_clip, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "p.mp4"
    done = subprocess.run([sys.executable, "-m", "nice_core", "swap", "--identity", str(identity_still),
                           "--target", str(short_clip), "-o", str(out), "-q"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"48/48 frames swapped -> {out}"
    missing = subprocess.run([sys.executable, "-m", "nice_core", "swap", "--identity", "nope.png", "--target",
                              str(short_clip), "-o", str(tmp_path / "q.mp4")], capture_output=True, text=True,
                             timeout=300)
    assert missing.returncode != 0 and missing.stderr.strip() == "nice-core: error: identity not found: nope.png"
    assert not (tmp_path / "q.mp4").exists()

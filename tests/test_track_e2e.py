"""The tracking stage end to end on real footage (cuts of the bundled sample), through the library and CLI."""

import subprocess
import sys

import numpy as np
import pytest

from nice_core.face import TrackConfig, track_video
from nice_core.store import FaceStore

from conftest import run_ffmpeg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tracked(short_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("tracked")
    result = track_video(short_clip, out, TrackConfig(crop_size=128), show_progress=False)
    return result


def test_store_holds_everything_later_stages_need(tracked):
    assert tracked.n_frames == 48 and tracked.frames_with_face == 48
    with FaceStore.open(tracked.store) as store:
        assert store.crop_size == 128
        assert store["crops"].shape == (48, 128, 128, 3) and store["crops"].dtype == np.uint8
        assert store["crops"].chunks == (1, 128, 128, 3)
        assert store["landmarks"].shape == (48, 478, 3)
        assert not np.isnan(store["landmarks"][:]).any()
        assert not np.isnan(store["transforms"][:]).any()
        assert np.all(np.abs(store["pose"][:]) < 60)
        assert store.json_attr("probe")["fps"] == "24000/1001"
        assert store.json_attr("config")["crop_size"] == 128
        crop, mask = store.crop(10), store.mask(10)
        # The face is centred: the mask's centre of mass is near the crop centre, and covers a real area.
        yy, xx = np.mgrid[:128, :128]
        assert abs((mask * xx).sum() / mask.sum() - 64) < 12 and abs((mask * yy).sum() / mask.sum() - 64) < 16
        assert 0.15 < mask.mean() < 0.6
        assert crop[mask > 0.9].std() > 5  # a real face, not a blank
        # Iris landmarks (468-477) are there and inside the face box.
        lm = store["landmarks"][10]
        assert lm[468:478, 0].min() > lm[:468, 0].min() and lm[468:478, 0].max() < lm[:468, 0].max()


def test_preview_is_labelled_and_complete(tracked):
    from nice_core.io import probe_video

    probe = probe_video(tracked.preview)
    assert probe.n_frames == 48 and (probe.width, probe.height) == (640, 360)
    assert probe.tags["synthetic_media"] == "true"


def test_smoothed_crops_jitter_less_than_raw(tracked):
    from nice_core.face.alignment import crop_corners

    with FaceStore.open(tracked.store) as store:
        raw, smooth = store["align_raw"][:], store["align"][:]

    def jitter(params):
        corners = np.stack([crop_corners(p) for p in params])
        return np.sqrt(np.mean(np.diff(corners, 2, axis=0) ** 2))

    assert jitter(smooth) < 0.5 * jitter(raw)


def test_a_hand_in_front_of_the_face_is_masked_out(hand_clip, tmp_path):
    with_hands = track_video(hand_clip, tmp_path / "hands", TrackConfig(crop_size=128, preview=False),
                             show_progress=False)
    without = track_video(hand_clip, tmp_path / "plain", TrackConfig(crop_size=128, preview=False,
                                                                     detect_hands=False), show_progress=False)
    with FaceStore.open(with_hands.store) as a, FaceStore.open(without.store) as b:
        hands_seen = ~np.isnan(a["hands"][:, 0, 0, 0])
        assert hands_seen.mean() > 0.5
        area_hands = a["masks"][:].reshape(36, -1).mean(1)
        area_plain = b["masks"][:].reshape(36, -1).mean(1)
        assert np.all(area_hands <= area_plain + 1e-6)
        assert np.median((area_plain - area_hands)[hands_seen] / area_plain[hands_seen]) > 0.1


def test_subject_by_index_in_a_two_face_clip(short_clip, clips, tmp_path):
    """Two copies of the same person side by side (one mirrored and smaller): index:N picks by position."""
    pair = clips / "pair.mp4"
    run_ffmpeg("-i", str(short_clip), "-filter_complex",
               "[0:v]split[a][b];[b]hflip,scale=iw*0.8:ih*0.8,pad=640:360:0:36[c];[a][c]hstack",
               "-frames:v", "12", "-an", "-c:v", "libx264", "-preset", "veryfast", str(pair))
    centers = {}
    for subject in ("index:0", "index:1", "largest"):
        result = track_video(pair, tmp_path / subject.replace(":", "_"),
                             TrackConfig(crop_size=64, subject=subject, preview=False), show_progress=False)
        with FaceStore.open(result.store) as store:
            centers[subject] = np.nanmean(store["align"][:, 0])
    assert centers["index:0"] < 640 < centers["index:1"]
    assert centers["largest"] == pytest.approx(centers["index:0"])


@pytest.fixture(scope="module")
def two_people(short_clip, clips):
    """The sample's woman on the left and, on the right, a still of another person, larger: Grace Hopper's
    official US Navy portrait (public domain), as shipped in matplotlib's sample data. Nothing is swapped:
    the clip only asks the tracker to tell two people apart."""
    from matplotlib import cbook

    hopper = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    pair = clips / "two_people.mp4"
    if not pair.exists():
        portrait = "[1:v]crop=250:250:130:105,scale=360:360,setsar=1[h]"  # her face, larger than the woman's
        run_ffmpeg("-i", str(short_clip), "-loop", "1", "-framerate", "24000/1001", "-i", str(hopper),
                   "-filter_complex", f"{portrait};[0:v][h]hstack=inputs=2:shortest=1", "-frames:v", "12", "-an",
                   "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(pair))
    return pair, hopper


def test_subject_by_reference_image_picks_that_person(two_people, short_clip, tmp_path):
    import cv2

    from nice_core.io import VideoReader

    pair, hopper = two_people
    woman = tmp_path / "woman.png"
    cv2.imwrite(str(woman), cv2.cvtColor(VideoReader(short_clip)[40], cv2.COLOR_RGB2BGR))
    centers = {}
    for name, subject in (("largest", "largest"), ("woman", str(woman)), ("hopper", str(hopper))):
        result = track_video(pair, tmp_path / name, TrackConfig(crop_size=64, subject=subject, preview=False),
                             show_progress=False)
        assert result.frames_with_face == 12, name
        with FaceStore.open(result.store) as store:
            centers[name] = np.nanmean(store["align"][:, 0])
    # The portrait is the larger face, so only the reference can pick the woman on the left.
    assert centers["largest"] > 640 and centers["hopper"] > 640
    assert centers["woman"] < 640


def test_no_face_anywhere_fails_and_leaves_nothing(no_face_clip, tmp_path):
    from nice_core.errors import NoFaceError

    with pytest.raises(NoFaceError, match="no face found in any of the 25 frames"):
        track_video(no_face_clip, tmp_path / "out", show_progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def nice_core(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nice_core", *args], capture_output=True, text=True, timeout=300)


def test_cli_track_prints_the_face_count(short_clip, tmp_path):
    out = tmp_path / "cli"
    done = nice_core("track", str(short_clip), "-o", str(out), "--crop-size", "64", "--no-preview", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "48/48 frames with a face"
    assert sorted(p.name for p in out.iterdir()) == ["audio.mka", "face.h5", "probe.json"]
    assert done.stderr == ""


@pytest.mark.parametrize("kind", ["missing", "not_a_video", "no_video_stream", "truncated", "zero_frames", "empty"])
def test_cli_bad_input_one_line_nonzero_nothing_left(bad_inputs, tmp_path, kind):
    out = tmp_path / "out"
    done = nice_core("track", str(bad_inputs[kind]), "-o", str(out), "-q")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nice-core: error: "), done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_cli_no_face_one_line(no_face_clip, tmp_path):
    out = tmp_path / "out"
    done = nice_core("track", str(no_face_clip), "-o", str(out), "-q")
    assert done.returncode != 0
    assert done.stderr.strip() == f"nice-core: error: no face found in any of the 25 frames of {no_face_clip}"
    assert not out.exists()


def test_cli_probe_writes_json(short_clip, tmp_path):
    import json

    done = nice_core("probe", str(short_clip), "-o", str(tmp_path / "p.json"), "--audio", str(tmp_path / "a.mka"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "p.json").read_text())["n_frames"] == 48
    assert (tmp_path / "a.mka").stat().st_size > 1000


def test_cli_rejects_bad_settings(short_clip, tmp_path):
    done = nice_core("track", str(short_clip), "-o", str(tmp_path / "x"), "--crop-size", "8")
    assert done.returncode != 0 and "crop_size" in done.stderr and len(done.stderr.strip().splitlines()) == 1

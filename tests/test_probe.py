from fractions import Fraction

import pytest

from nice_core.errors import InputError
from nice_core.io import probe_video

from conftest import run_ffmpeg

BAD_MESSAGES = {
    "missing": "not found",
    "not_a_video": "",  # ffmpeg may call it unreadable or find no video stream; either is one clear line
    "no_video_stream": "no video stream",
    "truncated": "truncated",
    "zero_frames": "zero decodable frames",
    "empty": "empty file",
}


def test_sample_probe_is_exact(sample):
    probe = probe_video(sample)
    assert probe.n_frames == 472
    assert probe.fps == Fraction(24000, 1001)
    assert (probe.width, probe.height, probe.rotation) == (640, 360, 0)
    assert probe.audio is not None and probe.audio.codec == "aac" and probe.audio.sample_rate == 48000
    assert probe.duration_s == pytest.approx(472 * 1001 / 24000)


def test_probe_json_round_trip(short_clip):
    import json

    from nice_core.io import VideoProbe

    probe = probe_video(short_clip)
    again = VideoProbe.from_dict(json.loads(probe.to_json()))
    assert again == probe
    assert json.loads(probe.to_json())["fps"] == "24000/1001"


@pytest.mark.parametrize("kind", sorted(BAD_MESSAGES))
def test_bad_input_is_refused_with_one_line(bad_inputs, kind):
    with pytest.raises(InputError) as err:
        probe_video(bad_inputs[kind])
    message = str(err.value)
    assert "\n" not in message
    assert BAD_MESSAGES[kind] in message
    assert bad_inputs[kind].name in message


def test_variable_frame_rate_is_refused(clips):
    vfr = clips / "vfr.mp4"
    # Frames at irregular times: every third interval is three times as long.
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=30", "-t", "2",
               "-vf", "setpts='N/30/TB + trunc(N/3)*2/30/TB'", "-fps_mode", "vfr", str(vfr))
    with pytest.raises(InputError, match="variable frame rate"):
        probe_video(vfr)


def test_rotation_is_reported_and_applied(short_clip, clips):
    rotated = clips / "rotated.mp4"
    run_ffmpeg("-display_rotation", "90", "-i", str(short_clip), "-c", "copy", str(rotated))
    probe = probe_video(rotated)
    assert probe.rotation in (90, 270)
    assert (probe.width, probe.height) == (360, 640)

    from nice_core.io import VideoReader

    with VideoReader(rotated) as reader:
        assert reader[0].shape == (640, 360, 3)

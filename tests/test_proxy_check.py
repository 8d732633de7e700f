"""Proxy checks on real footage: proxies are re-encodes, shifts, rescales and edits of the short clip."""

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from nice_core.errors import InputError
from nice_core.io import VideoReader, VideoWriter, probe_video
from nice_core.provenance import synthetic_label
from nice_core.proxy.check import aligned_proxy_frames, check_proxy, read_proxy_frame, resize_to_target

from conftest import psnr, run_ffmpeg

X264 = ("-an", "-c:v", "libx264", "-crf", "23", "-preset", "veryfast")


@pytest.fixture(scope="module")
def proxies(tmp_path_factory, short_clip, sample) -> dict[str, Path]:
    """Proxy variants of the 48-frame short clip, each re-encoded once."""
    out = tmp_path_factory.mktemp("proxies")

    def make(name: str, *args: str, source: Path = short_clip) -> None:
        run_ffmpeg("-i", str(source), *args, *X264, str(out / f"{name}.mp4"))

    make("copy")
    make("late3", "-vf", "tpad=start=3:start_mode=clone")  # 3 repeats of frame 0 first: 51 frames
    make("early3", "-vf", "select=gte(n\\,3),setpts=N/FRAME_RATE/TB")  # frames 3-47: 45 frames
    make("short_tail", "-frames:v", "45")  # frames 0-44: ends early, no offset
    make("late3_same", "-vf", "tpad=start=3:start_mode=clone", "-frames:v", "48")  # late 3, trimmed to 48
    make("early3_same", "-vf", "select=gte(n\\,3),setpts=N/FRAME_RATE/TB,tpad=stop=3:stop_mode=clone")  # 48
    make("half", "-vf", "scale=320:180")
    make("cropped", "-vf", "crop=480:360")
    make("fps25", "-r", "25")
    make("later_moment", "-vf", "select=between(n\\,300\\,347),setpts=N/FRAME_RATE/TB", source=sample)
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=640x360:rate=24000/1001", "-frames:v", "48", *X264,
               str(out / "testsrc.mp4"))
    _face_edit(short_clip, out / "face_edit.mp4")
    make("face_edit_early3", "-vf", "select=gte(n\\,3),setpts=N/FRAME_RATE/TB", source=out / "face_edit.mp4")
    return {path.stem: path for path in out.glob("*.mp4")}


def _face_edit(source: Path, out: Path) -> None:
    """A crude "swap": a filled, skin-coloured ellipse over the whole face in every frame."""
    label = synthetic_label({"target": source})
    with VideoReader(source) as reader, VideoWriter(out, reader.probe.width, reader.probe.height,
                                                    reader.probe.fps, label=label) as writer:
        for frame in reader:
            frame = frame.copy()
            cv2.ellipse(frame, (430, 190), (95, 135), 0, 0, 360, (205, 160, 140), -1)
            writer.write(frame)


def test_identical_copy_is_aligned(short_clip, proxies):
    check = check_proxy(short_clip, proxies["copy"])
    assert (check.frame_offset, check.rescale, check.notes) == (0, False, ())
    assert check.covered == range(48) and check.proxy_index(47) == 47
    assert check.matched_share == check.motion_share == 1.0
    assert check.offsets == tuple(range(-15, 16)) and len(check.errors) == 31
    assert np.argmin(check.errors) == 15 and check.errors[15] < 1 and check.confidence > 2
    json.dumps(check.to_dict())


@pytest.mark.parametrize("name, offset, count, covered", [("late3", 3, 51, range(48)),
                                                           ("early3", -3, 45, range(3, 48))])
def test_offset_is_found_with_its_sign_and_corrected(short_clip, proxies, name, offset, count, covered):
    check = check_proxy(short_clip, proxies[name])
    assert (check.frame_offset, check.proxy.n_frames, check.covered) == (offset, count, covered)
    assert check.offsets[int(np.argmin(check.errors))] == offset and check.confidence > 2
    where = "late" if offset > 0 else "early"
    assert check.notes[0] == f"proxy is 3 frames {where}; corrected (proxy frame t{offset:+d} shows target frame t)"
    with VideoReader(short_clip) as target, VideoReader(proxies[name]) as proxy:
        for index in (20, 30, 40):  # frames with motion: the unshifted proxy frame is clearly wrong there
            aligned = read_proxy_frame(proxy, index, check)
            assert psnr(aligned, target[index]) > 35 > psnr(proxy[index], target[index]) + 5
        assert np.array_equal(read_proxy_frame(proxy, 47, check), proxy[47 + offset])
        pairs = list(aligned_proxy_frames(proxy, check, start=1, stop=6))
        assert [i for i, _ in pairs] == list(range(max(1, covered.start), 6))
        assert np.array_equal(pairs[-1][1], proxy[5 + offset])


def test_early_proxy_leaves_first_target_frames_uncovered(short_clip, proxies):
    check = check_proxy(short_clip, proxies["early3"])
    assert check.notes[1] == "target frames 0-2 have no proxy frame"
    with VideoReader(proxies["early3"]) as proxy, pytest.raises(IndexError, match="only frames 3-47"):
        read_proxy_frame(proxy, 2, check)


def test_offset_is_refused_when_not_corrected(short_clip, proxies):
    with pytest.raises(InputError, match=r"proxy is offset by -3 frames from target \(3 frames early: proxy frame "
                                         r"t-3 shows target frame t, \d+\.\dx better fit than no offset\): .*early3"):
        check_proxy(short_clip, proxies["early3"], correct_offset=False)


@pytest.mark.parametrize("name, offset, covered", [("late3_same", 3, range(45)), ("early3_same", -3, range(3, 48))])
def test_an_offset_proxy_padded_or_trimmed_to_the_targets_length_uses_the_overlap(short_clip, proxies, name, offset,
                                                                                   covered):
    check = check_proxy(short_clip, proxies[name])
    assert (check.frame_offset, check.proxy.n_frames, check.covered) == (offset, 48, covered)
    where = "late" if offset > 0 else "early"
    assert check.notes[1] == (f"proxy has 48 frames 3 frames {where}: target frames {covered.start}-"
                              f"{covered.stop - 1} have a proxy frame, 3 have none")
    with VideoReader(short_clip) as target, VideoReader(proxies[name]) as proxy:
        pairs = dict(aligned_proxy_frames(proxy, check))
        assert sorted(pairs) == list(covered)
        assert psnr(pairs[30], target[30]) > 35


def test_frame_count_not_explained_by_an_offset(short_clip, proxies):
    with pytest.raises(InputError) as err:
        check_proxy(short_clip, proxies["short_tail"])
    assert str(err.value) == (f"proxy frame count does not match the target's: {proxies['short_tail']} has 45 frames, "
                              f"{short_clip} has 48; with no frame offset found the proxy should have 48")


def test_half_resolution_is_rescaled(short_clip, proxies):
    check = check_proxy(short_clip, proxies["half"])
    assert (check.frame_offset, check.rescale, check.proxy_size, check.target_size) == (0, True, (320, 180),
                                                                                       (640, 360))
    assert check.notes == ("proxy is 320x180, target 640x360; proxy frames are resized to the target size",)
    with VideoReader(short_clip) as target, VideoReader(proxies["half"]) as proxy:
        frame = read_proxy_frame(proxy, 30, check)
        assert frame.shape == (360, 640, 3) and frame.dtype == np.uint8
        assert np.array_equal(frame, cv2.resize(proxy[30], (640, 360), interpolation=cv2.INTER_CUBIC))
        assert psnr(frame, target[30]) > 28
        assert all(f.shape == (360, 640, 3) for _, f in aligned_proxy_frames(proxy, check, 40))


def test_larger_proxy_is_shrunk_with_area_interpolation(short_clip, proxies):
    check = check_proxy(short_clip, proxies["copy"])
    big = dataclasses.replace(check, proxy=dataclasses.replace(check.proxy, width=1280, height=720), rescale=True)
    frame = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    assert np.array_equal(resize_to_target(frame, big), cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA))
    with VideoReader(proxies["half"]) as wrong, pytest.raises(ValueError, match="is not the checked proxy"):
        read_proxy_frame(wrong, 0, check)


def test_different_frame_rate_is_refused(short_clip, proxies):
    with pytest.raises(InputError, match=r"proxy frame rate differs from the target's: .*fps25.mp4 is 25 fps "
                                         r"\(25.000\), .*short.mp4 is 24000/1001 fps \(23.976\)"):
        check_proxy(short_clip, proxies["fps25"])


def test_different_aspect_ratio_is_refused(short_clip, proxies):
    with pytest.raises(InputError, match=r"aspect ratio differs.* is 480x360, .* is 640x360 \(a crop or padding"):
        check_proxy(short_clip, proxies["cropped"])


@pytest.mark.parametrize("name", ["later_moment", "testsrc"])
def test_unrelated_video_is_refused(short_clip, proxies, name):
    with pytest.raises(InputError, match=r"^proxy does not match target: at frame offset [+-]\d+ \(best of -15..\+15 "
                                         r"searched\) only \d+% of the frame and \d+% of the target's motion match "
                                         r"within 8 grey levels \(need 50% and 20%\)") as err:
        check_proxy(short_clip, proxies[name])
    assert str(proxies[name]) in str(err.value) and "\n" not in str(err.value)


def test_face_region_edit_still_matches(short_clip, proxies):
    check = check_proxy(short_clip, proxies["face_edit"])
    assert (check.frame_offset, check.notes) == (0, ())
    assert 0.6 < check.matched_share < 0.9 and check.motion_share > 0.3  # the ellipse does not match, the rest does
    shifted = check_proxy(short_clip, proxies["face_edit_early3"])
    assert shifted.frame_offset == -3 and shifted.confidence > 1.3


def test_still_shot_without_a_clear_offset_assumes_zero(short_clip, tmp_path):
    """On the first 14 frames nothing moves much: a heavily compressed copy must not get a made-up offset."""
    still = tmp_path / "still.mp4"
    proxy = tmp_path / "still_crf45.mp4"
    run_ffmpeg("-i", str(short_clip), "-frames:v", "14", *X264, str(still))
    run_ffmpeg("-i", str(still), "-an", "-c:v", "libx264", "-crf", "45", "-preset", "veryfast", str(proxy))
    check = check_proxy(still, proxy, target_probe=probe_video(still))
    assert check.frame_offset == 0
    assert check.notes == () or check.notes[0].startswith("no clear frame offset (best ")  # bundled x264: +5
    assert check.offsets == tuple(range(-7, 8))  # limited to half the clip


def test_offset_at_the_edge_of_the_search_is_refused(short_clip, proxies):
    with pytest.raises(InputError, match=r"offset -3 frames, the edge of the searched range \(\+-3\); the true "
                                         r"offset may be larger \(raise max_offset\)"):
        check_proxy(short_clip, proxies["early3"], max_offset=3)
    check = check_proxy(short_clip, proxies["early3"], max_offset=4)
    assert check.frame_offset == -3 and check.offsets == tuple(range(-4, 5))


@pytest.mark.slow
def test_eval_scores_an_offset_proxy_on_the_frames_it_covers(short_clip, proxies):
    from nice_core.metrics import evaluate

    check = check_proxy(short_clip, proxies["late3_same"])
    result = evaluate(short_clip, short_clip, proxy=proxies["late3_same"], proxy_offset=check.frame_offset,
                      show_progress=False)
    curve = result["proxy_metrics"]["per_frame"]["landmark_nme_2d"]
    assert len(curve) == 48 and curve[-3:] == [None, None, None]
    assert all(v is not None and v < 0.02 for v in curve[5:40])  # the aligned proxy is the target itself

"""External swappers run through a command template, with real commands (no mocks)."""

import cv2
import pytest

from nice_core.errors import InputError
from nice_core.io import VideoReader, probe_video
from nice_core.proxy.external import ExternalSwapper, ExternalToolError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def identity_still(sample, tmp_path_factory):
    path = tmp_path_factory.mktemp("identity with space") / "self.png"
    cv2.imwrite(str(path), cv2.cvtColor(VideoReader(sample)[300], cv2.COLOR_RGB2BGR))
    return path


def test_the_built_in_swapper_through_the_template(identity_still, short_clip, tmp_path):
    out_dir = tmp_path / "out dir"
    swapper = ExternalSwapper(preset="nice-core")
    swapper.check_available()
    out = swapper.run(short_clip, identity_still, out_dir / "proxy.mp4", out_dir / "swap.log")
    assert probe_video(out).n_frames == 48
    log = (out_dir / "swap.log").read_text()
    assert log.startswith("$ ") and "48/48 frames swapped" in log
    assert sorted(p.name for p in out_dir.iterdir()) == ["proxy.mp4", "swap.log"]


def test_fsgan_preset_names_what_is_missing(tmp_path):
    swapper = ExternalSwapper(preset="fsgan", tool_root=str(tmp_path / "fsgan"), device="cuda:1")
    with pytest.raises(ExternalToolError, match=r"missing file .*fsgan/inference/swap.py.*set external.tool_root"):
        swapper.check_available()
    args = swapper.command("t.mp4", "i.png", "o.mp4")
    assert args[-3:] == ["--finetune", "--gpus", "1"]
    assert ExternalSwapper(preset="fsgan").command("t.mp4", "i.png", "o.mp4")[-1] == "--cpu_only"


def test_a_missing_program_is_reported(tmp_path):
    swapper = ExternalSwapper(template="my-swapper {target} {identity} {output}", requires=["my-swapper"])
    with pytest.raises(ExternalToolError, match="program 'my-swapper' \\(not on PATH\\)"):
        swapper.check_available()


def test_a_failing_tool_fails_with_its_last_log_line(identity_still, short_clip, tmp_path):
    swapper = ExternalSwapper(template="{python} -c \"import sys; print('model weights not found'); sys.exit(3)\" "
                                       "{target} {output}", requires=["{python}"])
    with pytest.raises(ExternalToolError, match="status 3: model weights not found"):
        swapper.run(short_clip, identity_still, tmp_path / "proxy.mp4", tmp_path / "swap.log")
    assert not (tmp_path / "proxy.mp4").exists()
    assert "model weights not found" in (tmp_path / "swap.log").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["swap.log"]


def test_a_tool_that_writes_the_wrong_video_is_refused(identity_still, short_clip, tmp_path):
    swapper = ExternalSwapper(template="{ffmpeg} -v error -f lavfi -i testsrc=size=640x360:rate=24000/1001 "
                                       "-frames:v 48 -pix_fmt yuv420p -f mp4 {output}", requires=["{ffmpeg}"])
    with pytest.raises(InputError, match="does not match"):
        swapper.run(short_clip, identity_still, tmp_path / "proxy.mp4", tmp_path / "swap.log")
    assert not (tmp_path / "proxy.mp4").exists()


def test_bad_settings():
    with pytest.raises(ValueError, match="exactly one"):
        ExternalSwapper()
    with pytest.raises(ValueError, match="unknown swapper preset"):
        ExternalSwapper(preset="simswap")
    with pytest.raises(ValueError, match="device"):
        ExternalSwapper(preset="fsgan", device="tpu")

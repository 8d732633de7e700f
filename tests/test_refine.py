"""`nice-core refine` end to end, the composite stage, and the CLI contract scripts depend on.

The clips are a 24-frame flicker benchmark of the sample (the person edited with a synthetic, consistent
change), so nobody's face is swapped with anyone else's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nice_core.carrier import CarrierUNet, UNetConfig, read_checkpoint
from nice_core.cli import main
from nice_core.composite.render import CompositeConfig, composite_video, sigma_to_image
from nice_core.io import VideoReader, probe_video
from nice_core.provenance.verify import verify_file

from conftest import kill_when, psnr, run_ffmpeg

#: A fit of a few seconds: a tiny UNet at 64 px.
TINY = ["--size", "64", "--set", "unet_base_channels=8", "--set", "unet_depth=3", "--threads", "1", "-q"]


@pytest.fixture
def bench(flicker_bench: SimpleNamespace) -> SimpleNamespace:
    """The shared 24-frame flicker benchmark (conftest): target, proxy and the target's store."""
    return flicker_bench


def refine(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["refine", *args])
    out, err = capsys.readouterr()
    return code, out, err


# -- the contract ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_refine_writes_a_labelled_video_like_the_target(bench: SimpleNamespace, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    output, sigma = tmp_path / "out" / "refined.mp4", tmp_path / "out" / "sigma.mp4"
    code, out, err = refine(capsys, "--target", str(bench.target), "--proxy", str(bench.proxy), "--output",
                            str(output), "--epochs", "2", "--seed", "3", "--save-uncertainty", str(sigma),
                            "--json", str(tmp_path / "result.json"), *TINY)
    assert code == 0, err
    assert "24/24 frames refined" in out
    target, refined = probe_video(bench.target), probe_video(output)
    assert (refined.n_frames, refined.fps, refined.width, refined.height) == (
        target.n_frames, target.fps, target.width, target.height)
    assert (refined.audio is None) == (target.audio is None)
    assert verify_file(output).found and verify_file(sigma).found
    assert probe_video(sigma).n_frames == 24
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["epochs"] == 2 and set(result["seconds"]) >= {"tracking", "fitting", "compositing"}
    # The default work folder (store, checkpoints) is removed after a success.
    assert sorted(p.name for p in output.parent.iterdir()) == ["refined.mp4", "sigma.mp4"]
    # The output differs from the target only around the face: the frame corners are the target's.
    with VideoReader(bench.target) as a, VideoReader(output) as b:
        x, y = a[10], b[10]
    assert psnr(x[:40, :40], y[:40, :40]) > 35
    assert not np.array_equal(x, y)


def bad_cases(bench: SimpleNamespace, bad_inputs: dict[str, Path], no_face_clip: Path, tmp_path: Path) -> dict:
    other_rate = tmp_path / "other_rate.mp4"
    run_ffmpeg("-i", str(bench.proxy), "-r", "30", "-c:v", "libx264", "-preset", "veryfast", str(other_rate))
    t, p = str(bench.target), str(bench.proxy)
    return {
        "missing target": ([str(bad_inputs["missing"]), p], "not found"),
        "not a video": ([str(bad_inputs["not_a_video"]), p], "not a readable video"),
        "truncated target": ([str(bad_inputs["truncated"]), p], "truncated"),
        "truncated proxy": ([t, str(bad_inputs["truncated"])], "truncated"),
        "proxy at another rate": ([t, str(other_rate)], "fps"),
        "no face": ([str(no_face_clip), str(no_face_clip)], "no face"),
    }


@pytest.mark.slow
def test_refine_refuses_bad_input_with_one_line_and_no_output(bench: SimpleNamespace, bad_inputs: dict[str, Path],
                                                              no_face_clip: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    for case, ((target, proxy), words) in bad_cases(bench, bad_inputs, no_face_clip, tmp_path).items():
        folder = tmp_path / case.replace(" ", "_")
        folder.mkdir()
        code, out, err = refine(capsys, "--target", target, "--proxy", proxy, "--output", str(folder / "o.mp4"),
                                "--epochs", "1", *TINY)
        lines = err.strip().splitlines()
        assert code != 0, case
        assert len(lines) == 1 and lines[0].startswith("nice-core: error:"), (case, err)
        assert words in lines[0].lower(), (case, lines[0])
        assert list(folder.iterdir()) == [], (case, list(folder.iterdir()))


@pytest.mark.slow
def test_refine_refuses_to_overwrite_its_input(bench: SimpleNamespace, capsys: pytest.CaptureFixture) -> None:
    before = bench.proxy.read_bytes()
    code, _, err = refine(capsys, "--target", str(bench.target), "--proxy", str(bench.proxy), "--output",
                          str(bench.proxy), *TINY)
    assert code != 0 and "refusing to write --output" in err and "it is the input --proxy" in err
    assert bench.proxy.read_bytes() == before

@pytest.mark.parametrize("content", [None, "{}", "not json"])
def test_fit_and_eval_refuse_a_bad_proxy_check_json(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     content: str | None) -> None:
    check = tmp_path / "check.json"
    if content is not None:
        check.write_text(content)
    output = tmp_path / "carrier.safetensors"
    commands = [["fit", "--store", str(tmp_path / "face.h5"), "--proxy", str(tmp_path / "p.mp4"), "--check",
                 str(check), "-o", str(output)],
                ["eval", "--target", str(tmp_path / "t.mp4"), "--video", str(tmp_path / "v.mp4"), "--video-check",
                 str(check), "--json", str(tmp_path / "m.json")]]
    for command in commands:
        code = main(command)
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("nice-core: error:"), (command[0], lines)
        assert str(check) in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if content is None else ["check.json"])

KILLED_REFINE = """
import sys, time
import nice_core.carrier.fit as fit

original = fit.write_checkpoint
def write_then_stall(*args, **kwargs):
    original(*args, **kwargs)
    time.sleep(120)  # killed here, after the first checkpoint
fit.write_checkpoint = write_then_stall

from nice_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_refine_resumes_after_kill(bench: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    def args(name: str) -> list[str]:
        return ["refine", "--target", str(bench.target), "--proxy", str(bench.proxy), "--output",
                str(tmp_path / f"{name}.mp4"), "--work-dir", str(tmp_path / name), "--epochs", "3", *TINY]

    assert main(args("reference")) == 0
    child = subprocess.Popen([sys.executable, "-c", KILLED_REFINE, *args("killed")])
    state = tmp_path / "killed" / "checkpoint" / "state.json"
    kill_when(child, state, 180, "refine's first checkpoint")
    assert json.loads(state.read_text())["epoch"] == 1
    assert not (tmp_path / "killed.mp4").exists()
    capsys.readouterr()
    assert main(args("killed")) == 0
    err = capsys.readouterr().err
    assert "reusing" in err and "resuming from epoch 1/3" in err
    a = read_checkpoint(tmp_path / "reference" / "checkpoint").model
    b = read_checkpoint(tmp_path / "killed" / "checkpoint").model
    assert all(torch.equal(a[k], b[k]) for k in a)
    with VideoReader(tmp_path / "reference.mp4") as x, VideoReader(tmp_path / "killed.mp4") as y:
        assert all(np.array_equal(x[i], y[i]) for i in (0, 12, 23))


# -- the composite stage ---------------------------------------------------------------------------------------


def identity_carrier() -> CarrierUNet:
    """A residual carrier whose head is zero: it returns the target crop unchanged."""
    net = CarrierUNet(UNetConfig(base_channels=8, depth=3, output="residual"))
    torch.nn.init.zeros_(net.head.weight)
    torch.nn.init.zeros_(net.head.bias)
    return net.eval()


@pytest.mark.slow
def test_an_unchanged_crop_gives_back_the_target(bench: SimpleNamespace, tmp_path: Path) -> None:
    values = {}
    for paste in ("residual", "replace"):
        output = tmp_path / f"{paste}.mp4"
        result = composite_video(bench.target, bench.store, identity_carrier(), output,
                                 config=CompositeConfig(paste=paste), show_progress=False)
        assert result.frames_refined == 24
        with VideoReader(bench.target) as a, VideoReader(output) as b:
            values[paste] = min(psnr(a[i], b[i]) for i in (0, 11, 23))
    # Residual mode adds a zero change: only the re-encode and the watermark differ. Replace mode resamples the
    # face through the 128 px crop, which costs detail.
    assert values["residual"] > 38, values
    assert values["replace"] < values["residual"] - 1, values


@pytest.mark.slow
def test_composite_refuses_a_store_of_another_video(bench: SimpleNamespace, short_clip: Path, tmp_path: Path) -> None:
    from nice_core.errors import InputError

    with pytest.raises(InputError, match="not made from"):
        composite_video(short_clip, bench.store, identity_carrier(), tmp_path / "x.mp4", show_progress=False)
    assert not (tmp_path / "x.mp4").exists()


def test_sigma_to_image() -> None:
    image = sigma_to_image(np.array([[0.0, 0.125], [0.25, 3.0]], np.float32), sigma_max=0.25)
    assert image.shape == (2, 2, 3) and image.dtype == np.uint8
    assert image[..., 0].tolist() == [[0, 128], [255, 255]]


# -- the demo chain --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_runs_the_whole_chain(short_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`nice-core demo`: a self-swap proxy, the carrier, compositing, metrics and the report, for one video."""
    out = tmp_path / "demo"
    code = main(["demo", str(short_clip), "-o", str(out), "--quick", "--epochs", "1", *TINY])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert f"Report: {(out / 'report.html').resolve()}" in stdout
    for name in ("proxy.mp4", "refined.mp4", "uncertainty.mp4"):
        assert verify_file(out / name).found, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "self-swap" and metrics["proxy_metrics"] is not None
    assert metrics["frames"] == probe_video(short_clip).n_frames
    assert metrics["e_stab"] is not None and metrics["proxy_metrics"]["e_stab"] is not None
    html = (out / "report.html").read_text()
    assert "data:video/mp4;base64," in html and html.count("data:image/jpeg;base64,") >= 6


def test_demo_refuses_bad_input_and_leaves_nothing(bad_inputs: dict[str, Path], no_face_clip: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    for video, words in ((bad_inputs["missing"], "not found"), (no_face_clip, "no face")):
        out = tmp_path / "demo"
        assert main(["demo", str(video), "-o", str(out), "-q", *TINY]) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("nice-core: error:")]
        assert len(errors) == 1 and words in errors[0], errors
        assert not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")
def test_a_failure_to_write_keeps_the_fit(bench: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture
                                          ) -> None:
    """The output's disk fills up after the fit: one line, the work folder (an explicit --work-dir) keeps the
    store and the finished fit, and the rerun only writes."""
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(small)], timeout=60).returncode:
        pytest.skip("this machine does not allow mounting a tmpfs")
    work = tmp_path / "work"
    common = ["--target", str(bench.target), "--proxy", str(bench.proxy), "--work-dir", str(work), "--epochs", "2",
              *TINY]
    try:
        code, _, err = refine(capsys, "--output", str(small / "r.mp4"), *common)
        assert code == 2
        assert f"no space left on device writing {small / 'r.mp4'}" in err and f"kept {work}" in err
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True, timeout=60)
    assert (work / "face.h5").is_file() and json.loads((work / "checkpoint" / "state.json").read_text())["complete"]
    code, out, err = refine(capsys, "--output", str(tmp_path / "r.mp4"), *common)
    assert code == 0 and "reusing" in err and "carrier: epoch" not in err

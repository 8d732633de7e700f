"""Every command refuses, before any work and in one line, an output that is an input, is named twice or
cannot be written (issue 12, items 1, 4 and 15)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nice_core.cli import main


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def work(tiny_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(tiny_clip, tmp_path / "t.mp4")
    shutil.copy(tiny_clip, tmp_path / "p.mp4")
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path / "t.mp4", tmp_path / "link.mp4")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refused(argv: list[str], capsys: pytest.CaptureFixture, *words: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nice-core: error: "), err
    for word in words:
        assert word in err[0], err[0]


@pytest.mark.parametrize("argv", [
    ["eval", "--target", "t.mp4", "--video", "p.mp4", "--json", "t.mp4"],
    ["probe", "t.mp4", "-o", "t.mp4"],
    ["probe", "t.mp4", "-o", "sub/../t.mp4"],
    ["probe", "link.mp4", "-o", "t.mp4"],
    ["check-proxy", "--target", "t.mp4", "--proxy", "p.mp4", "-o", "p.mp4"],
    ["refine", "--target", "t.mp4", "--proxy", "p.mp4", "-o", "out.mp4", "--json", "t.mp4"],
    ["refine", "--target", "t.mp4", "--proxy", "p.mp4", "-o", "link.mp4"],
    ["swap", "--identity", "t.mp4", "--target", "t.mp4", "-o", "t.mp4"],
])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(work, capsys, argv) -> None:
    before = digest(work / "t.mp4"), digest(work / "p.mp4")
    refused(argv, capsys, "refusing to write", "it is the input")
    assert (digest(work / "t.mp4"), digest(work / "p.mp4")) == before
    assert sorted(p.name for p in work.iterdir()) == ["link.mp4", "p.mp4", "sub", "t.mp4"]


def test_a_file_where_a_folder_goes_and_two_outputs_in_one_place(work, capsys) -> None:
    refused(["track", "t.mp4", "-o", "p.mp4"], capsys, "is a file, not a folder")
    refused(["refine", "--target", "t.mp4", "--proxy", "p.mp4", "-o", "r.mp4", "--save-uncertainty", "r.mp4"],
            capsys, "--output and --save-uncertainty name the same path")
    refused(["probe", "t.mp4", "-o", "sub"], capsys, "it is a folder")
    refused(["probe", "t.mp4", "-o", "p.mp4/x.json"], capsys, "is a file, not a folder")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a read-only tmpfs needs root")
def test_unwritable_outputs_are_one_line_before_any_work(work, capsys) -> None:
    ro = work / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], timeout=60).returncode:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        for argv in (["track", "t.mp4", "-o", "ro/t"], ["swap", "--identity", "t.mp4", "--target", "t.mp4", "-o",
                                                          "ro/p.mp4"],
                     ["refine", "--target", "t.mp4", "--proxy", "p.mp4", "-o", "ro/r.mp4"],
                     ["eval", "--target", "t.mp4", "--video", "p.mp4", "--json", "ro/e.json"]):
            refused(argv, capsys, "cannot write", "read-only file system")
    finally:
        subprocess.run(["umount", str(ro)], check=True, timeout=60)


def test_the_installed_command_says_it_in_one_line(work) -> None:
    result = subprocess.run([sys.executable, "-m", "nice_core", "probe", "t.mp4", "-o", "t.mp4"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "nice-core: error: refusing to write --output t.mp4: it is the input VIDEO (t.mp4)"]


@pytest.mark.parametrize(("output", "words"), [("out.webm", "WebM cannot hold libx264"),
                                               ("out.avi", "AVI cannot carry the synthetic-media label"),
                                               ("out.xyz", "not a supported video container")])
def test_impossible_video_formats_are_refused_before_any_work(work, capsys, output, words) -> None:
    refused(["refine", "--target", "t.mp4", "--proxy", "p.mp4", "-o", output], capsys, words)
    refused(["swap", "--identity", "t.mp4", "--target", "t.mp4", "-o", output], capsys, words)
    assert not (work / output).exists()


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".mov", ".mkv", ".webm"])
def test_every_accepted_container_carries_the_label(tmp_path, suffix) -> None:
    from fractions import Fraction

    import numpy as np

    from nice_core.io import EncodeOptions, VideoWriter, probe_video
    from nice_core.provenance import synthetic_label
    from nice_core.provenance.verify import verify_file

    out = tmp_path / f"v{suffix}"
    codec = "libvpx-vp9" if suffix == ".webm" else "libx264"
    encode = EncodeOptions(codec=codec, crf=30, preset=None if suffix == ".webm" else "veryfast")
    frames = 24
    with VideoWriter(out, 128, 96, Fraction(24), encode=encode, label=synthetic_label(None, encode=encode)) as writer:
        for i in range(frames):
            writer.write(np.full((96, 128, 3), 40 + 4 * i, np.uint8))
    assert probe_video(out).n_frames == frames
    report = verify_file(out)
    assert report.label_found, f"no metadata label in {suffix}: {report.tags}"


def test_a_yaml_error_is_one_line_with_its_place(work, capsys) -> None:
    (work / "bad.yaml").write_text("face:\n  crop_size: [1, 2\n  x: 3\n")
    refused(["track", "t.mp4", "-o", "out", "--config", "bad.yaml"], capsys, "cannot read config bad.yaml",
            "at line 3, column 4")
    assert not (work / "out").exists()

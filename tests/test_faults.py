"""Faults while writing: SIGTERM and SIGKILL leave nothing behind (or the next run removes it), a full disk
is one line, and ffmpeg's failures say why (issue 12, items 2, 5 and 6). Real child processes and a real
tmpfs where the machine allows mounting one."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nice_core.io.atomic import remove_stale_partials, temporary_sibling
from nice_core.io.writer import ffmpeg_cause

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def _small_disk(tmp_path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted for the block (the test is skipped where none can be mounted)."""
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(small)], timeout=60).returncode:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        yield small
    finally:
        subprocess.run(["umount", str(small)], check=True, timeout=60)


def _swap_cmd(clip: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "nice_core", "swap", "--identity", str(clip), "--target", str(clip), "-o", str(out)]


def _wait_for_partial(folder: Path, proc: subprocess.Popen, timeout: float = 120) -> list[Path]:
    """The partial files ``proc`` itself writes, once it has started writing."""
    start = time.time()
    while time.time() - start < timeout and proc.poll() is None:
        partials = [p for p in folder.iterdir() if p.name.endswith(".partial") and f".{proc.pid}-" in p.name]
        if partials and partials[0].stat().st_size > 0:
            return partials
        time.sleep(0.2)
    raise AssertionError("no partial output appeared")


def test_sigterm_during_writing_is_handled_like_ctrl_c(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.mp4"
    proc = subprocess.Popen(_swap_cmd(sample, out), stderr=subprocess.PIPE, text=True)
    _wait_for_partial(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "terminated (SIGTERM)" in err.strip().splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_killed_writer_leaves_partials_that_the_next_run_removes(sample: Path, short_clip: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "p.mp4"
    proc = subprocess.Popen(_swap_cmd(sample, out), stderr=subprocess.DEVNULL)
    left = _wait_for_partial(tmp_path, proc)
    proc.kill()
    proc.wait(timeout=60)
    time.sleep(0.5)  # ffmpeg notices its closed pipe and exits
    assert all(p.exists() for p in left)
    subprocess.run(_swap_cmd(short_clip, out), check=True, timeout=300, stderr=subprocess.DEVNULL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.mp4"]


def test_stale_partials_of_live_writers_and_other_hosts_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    mine = temporary_sibling(out)  # this process is alive
    other_host = tmp_path / ".v.some-other-node.1.mp4.partial"
    other_host.write_text("x")
    dead = tmp_path / mine.name.replace(f".{os.getpid()}-", ".999999999-")
    dead.write_text("x")
    (tmp_path / dead.name.replace(".partial", ".log")).write_text("x")
    removed = remove_stale_partials(out)
    assert sorted(p.name for p in removed) == sorted([dead.name, dead.name.replace(".partial", ".log")])
    assert mine.exists() and other_host.exists()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")
def test_a_full_disk_is_one_line_and_leaves_nothing(short_clip: Path, tmp_path: Path) -> None:
    with _small_disk(tmp_path, "200k") as small:
        result = subprocess.run(_swap_cmd(short_clip, small / "p.mp4"), capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines()[-1] == (
            f"nice-core: error: no space left on device writing {small / 'p.mp4'}")
        assert list(small.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")
def test_a_disk_that_fills_while_the_store_is_written_is_one_line(tiny_clip: Path, tmp_path: Path) -> None:
    """HDF5 used to print nine tracebacks and segfault (exit 139) here, leaving its partial file."""
    with _small_disk(tmp_path, "2m") as small:
        cmd = [sys.executable, "-m", "nice_core", "track", str(tiny_clip), "-o", str(small / "t"), "--no-preview"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1] == (
            f"nice-core: error: no space left on device writing {small / 't' / 'face.h5'}")
        assert list(small.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")
def test_a_disk_that_fills_while_the_fit_caches_proxy_crops_keeps_the_store(tiny_clip: Path, tmp_path: Path) -> None:
    """The fit's proxy-crop cache is a file of its own beside the tracking store: a full disk is one line,
    nothing of the cache is left, and the store is untouched (it is only read)."""
    from nice_core.io.digest import file_sha256
    from nice_core.store import FaceStore

    work = tmp_path / "work"
    nice = [sys.executable, "-m", "nice_core"]
    subprocess.run([*nice, "track", str(tiny_clip), "-o", str(work), "--no-preview", "--no-detect-hands"],
                   check=True, capture_output=True, timeout=300)
    proxy = tmp_path / "p.mp4"
    subprocess.run(_swap_cmd(tiny_clip, proxy)[:-2] + ["--store", str(work / "face.h5"), "-o", str(proxy)],
                   check=True, capture_output=True, timeout=300)
    size_k = (work / "face.h5").stat().st_size // 1024 + 1024  # room for the store, not for the crops' cache
    with _small_disk(tmp_path, f"{size_k}k") as small:
        shutil.copy(work / "face.h5", small / "face.h5")
        with FaceStore.open(work / "face.h5") as store:
            landmarks = store["landmarks"][:]
        digest = file_sha256(small / "face.h5")
        result = subprocess.run([*nice, "fit", "--store", str(small / "face.h5"), "--proxy", str(proxy), "-o",
                                 str(tmp_path / "c.safetensors"), "--proxy-crops", str(small / "proxy_crops.h5"),
                                 "--epochs", "1", "--threads", "1"], capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr[-3000:]
        assert result.stderr.strip().splitlines()[-1] == (
            f"nice-core: error: no space left on device writing the proxy-crop cache {small / 'proxy_crops.h5'}")
        with FaceStore.open(small / "face.h5") as store:
            assert np.array_equal(store["landmarks"][:], landmarks, equal_nan=True)
        assert file_sha256(small / "face.h5") == digest and [p.name for p in small.iterdir()] == ["face.h5"]
        assert not (tmp_path / "c.safetensors").exists()


def test_ffmpeg_cause_skips_the_generic_closing_lines() -> None:
    log = ["Input #0, rawvideo", "[mp4 @ 0x1] Could not find tag for codec vp9 in stream #0", "Conversion failed!"]
    assert ffmpeg_cause(log) == "[mp4 @ 0x1] Could not find tag for codec vp9 in stream #0"
    assert ffmpeg_cause(["frame=  10 fps=0.0", "Conversion failed!"]) == "Conversion failed!"
    assert ffmpeg_cause([]) == ""


def test_a_second_writer_of_the_same_output_fails_at_once(sample: Path, short_clip: Path, tmp_path: Path) -> None:
    """One writer per output: the second gets one line naming the first; a killed holder blocks nobody."""
    out = tmp_path / "p.mp4"
    first = subprocess.Popen(_swap_cmd(sample, out), stderr=subprocess.DEVNULL)
    try:
        _wait_for_partial(tmp_path, first)
        second = subprocess.run(_swap_cmd(sample, out), capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        line = second.stderr.strip().splitlines()[-1]
        assert line.startswith("nice-core: error: ") and f"pid {first.pid}" in line and "being written" in line
    finally:
        first.kill()
        first.wait(timeout=60)
    # A writer of another output runs to the end and leaves no lock (a short clip: the whole sample adds 30 s).
    third = subprocess.run(_swap_cmd(short_clip, tmp_path / "q.mp4"), timeout=300, capture_output=True)
    assert third.returncode == 0
    assert not (tmp_path / ".q.mp4.lock").exists()
    assert (tmp_path / ".p.mp4.lock").exists()  # the killed holder's file: harmless, the lock died with it
    rerun = subprocess.Popen(_swap_cmd(sample, out), stderr=subprocess.DEVNULL)
    _wait_for_partial(tmp_path, rerun)  # it writes: not blocked by the dead holder's lock file
    rerun.kill()
    rerun.wait(timeout=60)

import hashlib
from fractions import Fraction

import av
import numpy as np
import pytest

from nice_core.errors import OutputError
from nice_core.io import (
    EncodeOptions,
    VideoReader,
    VideoWriter,
    describe_encoding,
    extract_audio,
    probe_video,
    video_encoding,
)
from nice_core.provenance import synthetic_label

from conftest import run_ffmpeg

#: The synthetic-media label of the test clips that are made from nothing.
LABEL = synthetic_label(None, "test pattern")


def audio_packets_md5(path) -> str:
    digest = hashlib.md5()
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.audio[0]):
            if packet.size:
                digest.update(bytes(packet))
    return digest.hexdigest()


def test_random_access_matches_sequential(short_clip):
    with VideoReader(short_clip) as reader:
        assert len(reader) == 48
        sequential = {i: f for i, f in reader.iter_frames() if i in (0, 7, 30, 47)}
        for index in (30, 0, 47, 7):
            assert np.array_equal(reader[index], sequential[index])
        assert np.array_equal(reader[-1], sequential[47])
        with pytest.raises(IndexError):
            reader[48]


def test_jumps_within_and_across_gops_match_a_sequential_read(short_clip, tmp_path):
    # Keyframes every 8 frames and B-frames: jumps forward within a GOP (decoded on), across keyframes
    # (seek), back (seek), and the same frame twice.
    clip = tmp_path / "gop8.mp4"
    run_ffmpeg("-i", str(short_clip), "-an", "-c:v", "libx264", "-g", "8", "-bf", "2", "-preset", "veryfast",
               str(clip))
    with VideoReader(clip) as reader:
        sequential = [frame.copy() for frame in reader]
    with VideoReader(clip) as reader:
        assert len(reader) == len(sequential) == 48
        for index in (0, 4, 5, 12, 20, 21, 47, 3, 44, 44, 45, 46, 47):
            assert np.array_equal(reader[index], sequential[index]), index


def test_iter_from_the_middle(short_clip):
    with VideoReader(short_clip) as reader:
        tail = list(reader.iter_frames(40))
        assert [i for i, _ in tail] == list(range(40, 48))
        assert np.array_equal(tail[0][1], reader[40])


def test_writer_keeps_exact_rate_frames_audio_and_labels(short_clip, tmp_path):
    out = tmp_path / "copy.mp4"
    with VideoReader(short_clip) as reader, VideoWriter(
        out, reader.probe.width, reader.probe.height, reader.probe.fps, audio_from=short_clip,
        label=synthetic_label({"target": short_clip}),
    ) as writer:
        for frame in reader:
            writer.write(frame)
    probe = probe_video(out)
    assert probe.fps == Fraction(24000, 1001)
    assert probe.n_frames == 48
    assert audio_packets_md5(out) == audio_packets_md5(short_clip)
    assert probe.tags["synthetic_media"] == "true"
    assert "SYNTHETIC MEDIA" in probe.tags["comment"]
    assert len(probe.tags["input_target_sha256"]) == 64
    assert not list(tmp_path.glob(".*partial*"))


def test_writer_codec_and_quality_are_options(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(6)]
    sizes = {}
    for crf in (0, 40):
        out = tmp_path / f"crf{crf}.mkv"
        with VideoWriter(out, 64, 48, Fraction(25), encode=EncodeOptions(crf=crf, preset="veryfast"),
                         label=LABEL) as w:
            for f in frames:
                w.write(f)
        sizes[crf] = out.stat().st_size
        encoding = video_encoding(out)  # what was written, read back from the stream and x264's settings
        assert encoding["codec"] == "h264" and encoding["pix_fmt"] == "yuv420p" and encoding["fps"] == "25"
        assert encoding["lossless"] == (crf == 0) and (crf == 0 or encoding["crf"] == crf)
        assert describe_encoding(encoding) == ("h264 yuv420p lossless" if crf == 0 else f"h264 yuv420p CRF {crf}")
    assert sizes[0] > sizes[40]
    out = tmp_path / "mpeg4.mkv"
    with VideoWriter(out, 64, 48, Fraction(30000, 1001), encode=EncodeOptions(codec="mpeg4", crf=None,
                                                                                preset=None), label=LABEL) as w:
        for f in frames:
            w.write(f)
    probe = probe_video(out)
    assert probe.codec == "mpeg4" and probe.fps == Fraction(30000, 1001)
    assert video_encoding(out)["encoder"] is None and video_encoding(out)["crf"] is None  # not x264: unknown


def test_an_odd_frame_size_is_padded_to_even_yuv420p_and_said(tmp_path, capfd):
    """4:4:4 H.264 (the only way to keep an odd size) is refused by many players: pad by one pixel instead."""
    out = tmp_path / "odd.mp4"
    y, x = np.mgrid[:47, :63]
    frames = [np.stack([x * 4, y * 5, (x + y + 20 * i) % 256], -1).astype(np.uint8) for i in range(3)]
    with VideoWriter(out, 63, 47, Fraction(25), encode=EncodeOptions(crf=0, preset="ultrafast"),
                     label=LABEL) as writer:
        for frame in frames:
            writer.write(frame)
    assert "the frame size 63x47 is odd; written as 64x48" in capfd.readouterr().err
    probe = probe_video(out)
    assert (probe.width, probe.height) == (64, 48)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
        first = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert np.abs(first[:, 63] - first[:, 62]).mean() < 0.5 * np.abs(first[:, 62] - first[:, 60]).mean()  # repeated
    assert np.abs(first[:47, :63] - frames[0]).mean() < 3  # the picture itself is unchanged


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 64, 48, Fraction(25), label=LABEL) as writer:
            writer.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("the caller failed mid-video")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError, match="expected"):
        with VideoWriter(out, 64, 48, Fraction(25), label=LABEL) as writer:
            writer.write(np.zeros((10, 10, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_no_video_is_written_without_a_label(tmp_path):
    with pytest.raises(TypeError, match="label"):
        VideoWriter(tmp_path / "v.mp4", 64, 48, Fraction(25))  # the missing argument is the test
    with pytest.raises(OutputError, match="every video written carries a label"):
        VideoWriter(tmp_path / "v.mp4", 64, 48, Fraction(25), label=None)
    assert list(tmp_path.iterdir()) == []


def test_an_input_is_never_overwritten(short_clip, tmp_path):
    before = short_clip.read_bytes()
    with pytest.raises(OutputError, match="refusing to overwrite an input"):
        VideoWriter(short_clip, 640, 360, Fraction(25), audio_from=short_clip, label=LABEL)
    link = tmp_path / "link.mp4"
    link.symlink_to(short_clip)
    with pytest.raises(OutputError, match="refusing"):
        VideoWriter(link, 640, 360, Fraction(25), label=synthetic_label({"target": short_clip}))
    with pytest.raises(OutputError, match="refusing"):
        extract_audio(short_clip, short_clip)
    assert short_clip.read_bytes() == before


def test_extract_audio_copies_the_stream(short_clip, no_face_clip, tmp_path):
    out = extract_audio(short_clip, tmp_path / "audio.mka")
    assert audio_packets_md5(out) == audio_packets_md5(short_clip)
    assert extract_audio(no_face_clip, tmp_path / "none.mka") is None
    assert not (tmp_path / "none.mka").exists()


def test_the_jobs_thread_budget_reaches_the_encoder_and_the_pools(tmp_path, monkeypatch):
    """Snakemake's OMP_NUM_THREADS (or --threads) bounds x264 (which would take 1.5 threads per core of the
    node), OpenCV's pool and torch's, not only torch's."""
    import re
    import subprocess
    import sys

    from nice_core.io.threads import thread_budget

    frames = [np.full((256, 256, 3), 40 * i, np.uint8) for i in range(4)]

    def x264_threads(out) -> str:
        with VideoWriter(out, 256, 256, Fraction(25), encode=EncodeOptions(preset="veryfast"), label=LABEL) as w:
            for f in frames:
                w.write(f)
        return re.search(rb" threads=(\w+)", out.read_bytes()).group(1).decode()

    monkeypatch.delenv("NICE_CORE_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Snakemake sets for a rule of 1 thread
    assert thread_budget() == 1
    assert x264_threads(tmp_path / "one.mp4") == "1"
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert thread_budget() is None and x264_threads(tmp_path / "auto.mp4") != "1"  # x264's own choice
    code = ("import sys, cv2, torch; from nice_core.io.threads import apply_thread_budget; apply_thread_budget(1); "
            "import os; print(cv2.getNumThreads(), torch.get_num_threads(), os.environ['OPENCV_FOR_THREADS_NUM'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["1", "1", "1"], done.stderr


def test_a_command_run_in_process_leaves_its_callers_thread_settings(tmp_path, monkeypatch):
    """The budget is the command's: run in-process (a test, a notebook), it leaves the caller's environment
    (which the processes it starts later inherit: `nproc` reads OMP_NUM_THREADS) and torch's pool alone."""
    import os

    import torch

    from nice_core.cli import main

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("NICE_CORE_THREADS", raising=False)
    before = torch.get_num_threads()
    status = main(["prior3d", "--store", str(tmp_path / "none.h5"), "-o", str(tmp_path / "p.h5"), "--threads", "1"])
    assert status != 0  # no such store: one line, and the budget is undone all the same
    assert "OMP_NUM_THREADS" not in os.environ and "NICE_CORE_THREADS" not in os.environ
    assert "OPENCV_FOR_THREADS_NUM" not in os.environ and torch.get_num_threads() == before

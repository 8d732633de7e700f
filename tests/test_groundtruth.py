"""`nice-core bench make`: deterministic ground truth; G as stable as X, P much less stable."""

import json

import numpy as np
import pytest

from nice_core.groundtruth.clip import BenchConfig, make_benchmark
from nice_core.io import VideoReader, probe_video

from conftest import psnr

pytestmark = pytest.mark.slow


def temporal_energy(path, box=(slice(60, 300), slice(180, 460))) -> float:
    """Mean absolute frame-to-frame change in the face region."""
    previous, changes = None, []
    for _, frame in VideoReader(path).iter_frames():
        patch = frame[box].astype(np.float64)
        if previous is not None:
            changes.append(np.abs(patch - previous).mean())
        previous = patch
    return float(np.mean(changes))


@pytest.fixture(scope="module")
def bench(short_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "set"
    meta = make_benchmark(short_clip, out, BenchConfig(seed=3, frames=24, outlier_rate=0.1), show_progress=False)
    return out, meta


def test_files_and_meta(bench):
    out, meta = bench
    assert sorted(p.name for p in out.iterdir()) == ["clean.mp4", "meta.json", "proxy.mp4", "target.mp4"]
    assert json.loads((out / "meta.json").read_text()) == meta
    assert meta["frames"] == 24 and len(meta["faults"]) == 24
    for name in ("target", "clean", "proxy"):
        probe = probe_video(out / f"{name}.mp4")
        assert probe.n_frames == 24 and probe.tags["synthetic_media"] == "true"
    assert meta["outlier_frames"] == [i for i, f in enumerate(meta["faults"]) if f["outlier"]]


def test_clean_is_as_stable_as_target_and_proxy_is_not(bench):
    out, _ = bench
    x, g, p = (temporal_energy(out / f"{n}.mp4") for n in ("target", "clean", "proxy"))
    assert g < 1.25 * x
    assert p > 1.5 * x


def test_the_edit_changes_the_face(bench):
    out, _ = bench
    x, g = VideoReader(out / "target.mp4")[10], VideoReader(out / "clean.mp4")[10]
    face = (slice(100, 260), slice(230, 410))
    assert np.abs(x[face].astype(int) - g[face]).mean() > 3
    assert psnr(x[:, :100], g[:, :100]) > 38  # background left alone (up to the codec)


def test_deterministic_for_a_seed(short_clip, bench, tmp_path):
    out, meta = bench
    again = make_benchmark(short_clip, tmp_path / "again", BenchConfig(seed=3, frames=24, outlier_rate=0.1),
                           show_progress=False)
    assert again["faults"] == meta["faults"]
    assert np.array_equal(VideoReader(tmp_path / "again" / "proxy.mp4")[7], VideoReader(out / "proxy.mp4")[7])
    other = make_benchmark(short_clip, tmp_path / "other", BenchConfig(seed=4, frames=24), show_progress=False)
    assert other["faults"] != meta["faults"]


def test_camera_move_and_refusing_a_busy_folder(short_clip, tmp_path):
    from nice_core.errors import OutputError

    meta = make_benchmark(short_clip, tmp_path / "moving", BenchConfig(frames=6, camera_move=True),
                          show_progress=False)
    assert meta["config"]["camera_move"] is True
    a, b = VideoReader(short_clip)[5], VideoReader(tmp_path / "moving" / "target.mp4")[5]
    assert np.abs(a.astype(int) - b).mean() > 5
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("keep me")
    with pytest.raises(OutputError, match="holds other files"):
        make_benchmark(short_clip, tmp_path / "busy", BenchConfig(frames=4), show_progress=False)
    assert (tmp_path / "busy" / "thesis.tex").read_text() == "keep me"


def test_identity_detail_moves_with_the_face_and_leaves_the_faults_alone(short_clip, tmp_path):
    """Marks and texture: the same faults as without them, a clearly visible fine change of G inside the face
    only, in every frame, and a hand-held camera move that is smooth."""
    from nice_core.face.landmarks import FaceMeshDetector
    from nice_core.io import EncodeOptions
    from nice_core.metrics.image import face_regions, fine_structure, grey

    lossless = EncodeOptions(crf=0, preset="ultrafast", pix_fmt="yuv444p")
    plain = make_benchmark(short_clip, tmp_path / "plain", BenchConfig(seed=5, frames=6, camera_move=True,
                                                                       camera_style="handheld"),
                           encode=lossless, show_progress=False)
    marked = make_benchmark(short_clip, tmp_path / "marked",
                            BenchConfig(seed=5, frames=6, camera_move=True, camera_style="handheld", spots=12,
                                        lines=3, brows=1.0, texture=0.5), encode=lossless, show_progress=False)
    assert marked["faults"] == plain["faults"]
    assert len(marked["marks"]["spots"]) == 12 and len(marked["marks"]["lines"]) == 3 and plain["marks"] is None
    detector = FaceMeshDetector(max_faces=1)
    try:
        for t in range(6):
            with_marks, without = VideoReader(tmp_path / "marked" / "clean.mp4")[t], VideoReader(
                tmp_path / "plain" / "clean.mp4")[t]
            fine = np.abs(fine_structure(grey(with_marks) - grey(without)))
            landmarks = detector.detect(without)[0]
            regions = face_regions(landmarks, without.shape[:2])
            assert fine[regions["inner"]].mean() > 1.5, t
            assert fine[~regions["face"]].mean() < 0.02 * fine[regions["inner"]].mean(), t
    finally:
        detector.close()
    a, b = VideoReader(tmp_path / "plain" / "target.mp4")[2], VideoReader(tmp_path / "plain" / "target.mp4")[3]
    assert 0.5 < np.abs(a.astype(int) - b).mean() < 12  # moving, and smoothly


def test_geometry_families_move_what_they_say():
    from nice_core.groundtruth.clip import _regions
    from nice_core.groundtruth.edits import edit_geometry, face_axes

    regions = _regions()
    rng = np.random.default_rng(0)
    points = rng.normal(0, 1, (478, 2)) * 5 + 200
    points[regions["left_eye"]] = [240, 180] + rng.normal(0, 3, (len(regions["left_eye"]), 2))
    points[regions["right_eye"]] = [160, 180] + rng.normal(0, 3, (len(regions["right_eye"]), 2))
    oval = regions["oval"]
    angle = np.linspace(0, 2 * np.pi, len(oval), endpoint=False)
    points[oval] = np.stack([200 + 90 * np.cos(angle), 220 + 120 * np.sin(angle)], 1)
    across, _, iod = face_axes(points, regions)
    wide = edit_geometry(points, regions, outline=1.0)
    jaw = [i for i in oval if points[i, 1] > 300]
    assert np.ptp(wide[jaw, 0]) / np.ptp(points[jaw, 0]) == pytest.approx(1.07, abs=0.01)
    assert np.allclose(wide[regions["left_eye"]], points[regions["left_eye"]])
    apart = edit_geometry(points, regions, interior=1.0)
    _, _, iod_after = face_axes(apart, regions)
    assert iod_after / iod == pytest.approx(1.10, abs=0.005)
    assert np.allclose(apart[oval], points[oval])

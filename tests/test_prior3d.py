"""The 3D prior stage: UV raster and unwrap, visibility, lighting and albedo, detail and its robust statistic,
shape codes, the 3D losses, and the stage end to end on a clip whose edit adds marks the target lacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from nice_core.prior3d import appearance
from nice_core.prior3d.losses import tolerant_detail_distance
from nice_core.prior3d.shape import shape_code, shape_distance
from nice_core.prior3d.topology import canonical_mesh
from nice_core.prior3d.uv import texel_normals, texel_points, texel_visibility, unwrap, uv_raster

S = 256  # crop side of the synthetic faces


def frontal_face(yaw_degrees: float = 0.0, scale: float = 8.0) -> torch.Tensor:
    """The canonical face as an unmirrored camera sees it (x right, y down, z away), ``(1, 468, 3)`` crop px."""
    a = np.radians(yaw_degrees)
    rotation = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    v = canonical_mesh().vertices.astype(np.float64) @ rotation.T
    crop = np.stack([S / 2 + scale * v[:, 0], S / 2 - scale * v[:, 1], -scale * v[:, 2]], axis=1)
    return torch.tensor(crop[None], dtype=torch.float32)


@pytest.fixture(scope="module")
def raster():
    return uv_raster(128)


def test_the_raster_covers_the_layout_with_barycentrics_that_sum_to_one(raster) -> None:
    assert 0.5 < raster.count / raster.size**2 < 0.8
    assert np.allclose(raster.bary.sum(axis=1), 1, atol=1e-5) and raster.bary.min() >= -1e-6
    # the texel under each eye and mouth opening is not skin; the forehead is
    from nice_core.face.mesh import mesh_topology

    uv = canonical_mesh().uv
    texel = {int(t): k for k, t in enumerate(raster.texels)}
    for loop in mesh_topology()[1]:
        col, row = (uv[list(loop)].mean(axis=0) * raster.size).astype(int)
        assert not raster.skin[texel[row * raster.size + col]]
    col, row = (uv[151] * raster.size).astype(int)  # forehead, above the brows
    assert raster.skin[texel[row * raster.size + col]]


def test_texel_points_are_exact_for_a_mesh_laid_out_as_its_uvs(raster) -> None:
    uv = torch.from_numpy(canonical_mesh().uv.astype(np.float32))
    vertices = torch.cat([uv * S, torch.zeros(468, 1)], dim=1)[None]
    points = texel_points(vertices, raster)[0, :, :2].numpy()
    col, row = raster.texels % raster.size, raster.texels // raster.size
    expected = np.stack([(col + 0.5), (row + 0.5)], axis=1) * (S / raster.size)
    assert np.abs(points - expected).max() < 1e-3


def test_the_unwrap_samples_where_the_texels_are_and_passes_gradients(raster) -> None:
    vertices = frontal_face()
    points = texel_points(vertices, raster)
    xs = (torch.arange(S, dtype=torch.float32) + 0.5) / S
    image = torch.stack([xs.expand(S, S), xs[:, None].expand(S, S), torch.zeros(S, S)])[None]
    image.requires_grad_(True)
    colours = unwrap(image, points, S)
    assert torch.allclose(colours[0, 0], points[0, :, 0] / S, atol=1e-4)  # x ramp sampled at x
    assert torch.allclose(colours[0, 1], points[0, :, 1] / S, atol=1e-4)
    colours.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_visibility_sees_the_front_and_hides_the_far_cheek(raster) -> None:
    front = frontal_face()
    seen = texel_visibility(texel_points(front, raster), texel_normals(front, raster), S)[0]
    assert (seen > 0).float().mean() > 0.9
    turned = frontal_face(yaw_degrees=60)
    seen = texel_visibility(texel_points(turned, raster), texel_normals(turned, raster), S)[0]
    u = raster.texels % raster.size
    # turned 60 degrees towards its left (x), the face shows its right cheek (small u) and hides its left
    near, far = seen[torch.from_numpy(u < 40)].mean(), seen[torch.from_numpy(u > 88)].mean()
    assert near > 0.6 and far < 0.05, (near, far)


def test_lighting_is_divided_out_of_a_constant_albedo(raster) -> None:
    vertices = frontal_face()
    normals = texel_normals(vertices, raster)
    weights = texel_visibility(texel_points(vertices, raster), normals, S) * torch.from_numpy(
        raster.skin.astype(np.float32))
    light = torch.tensor([[1.2, 0.3, -0.4, 0.5, 0.05, -0.1, 0.08, 0.1, -0.05]])  # a strong side light
    shade = appearance.shading(light, normals)
    colours = torch.tensor([0.7, 0.5, 0.4])[None, :, None] * shade  # skin-coloured constant reflectance
    fitted = appearance.fit_lighting(colours, normals, weights, ridge=0.0)
    albedo = appearance.albedo(colours, fitted, normals, weights, raster, sigma=4.0)[0]
    on = weights[0] > 0.3
    spread = albedo[:, on].std(dim=1) / albedo[:, on].mean(dim=1)
    assert spread.max() < 0.02, spread  # flat once the lighting is out
    ratio = albedo[:, on].mean(dim=1)
    assert torch.allclose(ratio / ratio[0], torch.tensor([1.0, 5 / 7, 4 / 7]), atol=0.01)  # colour kept
    raw = colours[0][:, on].std(dim=1) / colours[0][:, on].mean(dim=1)
    assert raw.min() > 0.2  # the shading did vary


def test_detail_marks_a_dark_spot_and_nothing_on_smooth_skin(raster) -> None:
    vertices = frontal_face()
    points = texel_points(vertices, raster)
    visibility = texel_visibility(points, texel_normals(vertices, raster), S)
    yy, xx = torch.meshgrid(torch.arange(S, dtype=torch.float32), torch.arange(S, dtype=torch.float32),
                            indexing="ij")
    smooth = 0.4 + 0.3 * xx / S  # a gentle gradient
    spot = smooth * (1 - 0.5 * torch.exp(-((xx - 150) ** 2 + (yy - 110) ** 2) / (2 * 2.5**2)))
    maps = []
    for image in (smooth, spot):
        colours = unwrap(image.expand(3, S, S)[None], points, S)
        maps.append(appearance.detail(colours, visibility, raster, sigma=3.0)[0])
    inside = visibility[0] > 0.3
    assert maps[0][inside].abs().max() < 0.02
    near = ((points[0, :, 0] - 150) ** 2 + (points[0, :, 1] - 110) ** 2).sqrt() < 2.0
    assert maps[1][near & inside].mean() < -0.3
    assert maps[1][~near & inside & (((points[0, :, 0] - 150) ** 2 + (points[0, :, 1] - 110) ** 2).sqrt() > 12)
                   ].abs().max() < 0.02


def test_the_weighted_median_ignores_frames_that_do_not_see_a_texel() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(7, 50))
    median, total = appearance.weighted_median(values, np.ones_like(values))
    assert np.allclose(median, np.median(values, axis=0), atol=1e-6) and np.allclose(total, 7)
    values[0] = 100.0  # an outlier frame ...
    weights = np.ones_like(values)
    weights[0] = 0.0  # ... that does not see the texels
    weights[:, 3] = 0.0
    median, total = appearance.weighted_median(values, weights)
    assert np.allclose(median[:3], np.median(values[1:, :3], axis=0), atol=0.5) and median.max() < 5
    assert median[3] == 0 and total[3] == 0


def test_the_statistics_keep_their_frames_without_pinning_the_batches() -> None:
    """A long clip's statistics take one frame from many batches; a view of that row would keep the whole
    batch alive (the stage's memory grew with the clip's length)."""
    from nice_core.prior3d.analysis import SourceStats

    batch = {name: np.zeros((16, 3, 500), np.float32) for name in ("detail", "albedo", "weight")}
    batch |= {"embedding": np.zeros((16, 128), np.float32), "shape": np.zeros((16, 468, 3), np.float32)}
    stats = SourceStats()
    stats.add(3, batch, 2, shape=True)
    kept = [stats.details[0], stats.albedos[0], stats.weights[0], stats.embeddings[0], stats.shapes[0]]
    assert not any(np.shares_memory(row, array) for row in kept for array in batch.values())


def test_the_shape_code_removes_pose_and_scale() -> None:
    mesh = canonical_mesh()
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    posed = 37.0 * mesh.vertices.astype(np.float64) @ q.T + rng.normal(size=3) * 50
    code = shape_code(posed)
    assert shape_distance(code, mesh.vertices) < 1e-4
    wider = mesh.vertices.copy()
    wider[:, 0] *= 1.1
    assert shape_distance(shape_code(37.0 * wider @ q.T), mesh.vertices) > 0.2


def test_the_detail_distance_forgives_one_texel_in_part_and_not_three(raster) -> None:
    import cv2

    # detail-like: marks and texture a few texels across (white noise would match some neighbour by chance)
    rng = np.random.default_rng(2)
    image = cv2.GaussianBlur(rng.normal(size=(raster.size, raster.size)).astype(np.float32), (0, 0), 1.5)
    image /= image.std()
    base = torch.from_numpy(raster.from_map(image))[None]
    weights = torch.from_numpy(raster.skin.astype(np.float32))[None]

    def shifted(by: int) -> torch.Tensor:
        return torch.from_numpy(raster.from_map(np.roll(image, by, axis=1)))[None]

    same = tolerant_detail_distance(base, base, weights, raster)
    one = tolerant_detail_distance(shifted(1), base, weights, raster)
    three = tolerant_detail_distance(shifted(3), base, weights, raster)
    flat = tolerant_detail_distance(torch.zeros_like(base), base, weights, raster)
    assert same < 1e-6 and one < 0.45 * flat and three > 0.9 * flat and flat > 0.4


# -- the stage on a clip --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def marked(short_clip: Path, tmp_path_factory: pytest.TempPathFactory):
    """A 24-frame benchmark whose edit adds 14 spots and 4 lines, its target and clean edit tracked at 128 px,
    and the 3D prior of the target with the proxy, and with the clean edit in the proxy's place."""
    from nice_core.face import TrackConfig, track_video
    from nice_core.groundtruth.clip import BenchConfig, make_benchmark
    from nice_core.prior3d.stage import build_prior3d

    root = tmp_path_factory.mktemp("prior3d")
    make_benchmark(short_clip, root / "bench", BenchConfig(frames=24, spots=14, lines=4, seed=5), show_progress=False)
    track = track_video(root / "bench" / "target.mp4", root / "track", TrackConfig(crop_size=128, preview=False),
                        show_progress=False)
    result = build_prior3d(track.store, root / "prior3d.h5", proxy=root / "bench" / "proxy.mp4", show_progress=False)
    clean = build_prior3d(track.store, root / "clean.h5", proxy=root / "bench" / "clean.mp4", show_progress=False)
    return root, track.store, result, clean


@pytest.mark.slow
def test_the_stage_writes_every_frame_and_records_its_inputs(marked) -> None:
    from nice_core.io.digest import file_sha256

    root, store, result, _ = marked
    assert result.frames == 24 and result.sources == ("target", "proxy")
    with h5py.File(result.path) as h5:
        assert h5["target/vertices"].shape == (24, 468, 3) and h5["target/detail"].shape == (24, 128, 128)
        assert h5["target/albedo"].shape == (24, 16, 16, 3) and h5["target/embedding"].shape == (24, 128)
        assert h5["target/visibility"].chunks == (1, 128, 128)
        assert h5["target/valid"][()].all() and h5["proxy/valid"][()].all()
        inputs = __import__("json").loads(h5.attrs["inputs"])
        assert inputs["store"]["sha256"] == file_sha256(store)
        assert inputs["proxy"]["sha256"] == file_sha256(root / "bench" / "proxy.mp4")
        models = __import__("json").loads(h5.attrs["models"])
        assert set(models) == {"canonical_mesh", "identity_network"}
        # a self-swap's proxy is the same person: its embedding is near the target's
        distance = np.linalg.norm(h5["proxy/static/embedding"][()] - h5["target/static/embedding"][()])
        assert distance < 0.45


@pytest.mark.slow
def test_the_proxys_static_detail_carries_the_marks_its_frames_blur(marked) -> None:
    """The edit's marks, measured as what G adds over the target in UV detail: the proxy's static statistic
    over its frames recovers them (measured 0.80), single jittering proxy frames do much worse
    (0.02-0.44; frames 0, 8 and 16 are checked)."""
    _, _, result, clean = marked
    with h5py.File(result.path) as h5, h5py.File(clean.path) as g:
        skin = h5["uv/skin"][()] & (h5["proxy/static/weight"][()] > 0)
        target = h5["target/static/detail"][()][skin]
        added = g["proxy/static/detail"][()][skin] - target
        static = h5["proxy/static/detail"][()][skin] - target
        frames = [np.corrcoef(h5["proxy/detail"][f].astype(np.float32)[skin]
                              - h5["target/detail"][f].astype(np.float32)[skin], added)[0, 1] for f in (0, 8, 16)]
        assert np.corrcoef(static, added)[0, 1] > 0.65
        assert np.corrcoef(static, added)[0, 1] > max(frames) + 0.3


@pytest.mark.slow
def test_bad_inputs_get_one_line(marked, tmp_path: Path, sample: Path) -> None:
    import cv2

    from nice_core.io.image import read_image

    root, store, _, _ = marked

    def prior3d(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nice_core", "prior3d", "--store", str(store), *args],
                              capture_output=True, text=True, timeout=300)

    small = tmp_path / "small.png"
    frame = read_image(root / "bench" / "target.mp4")
    cv2.imwrite(str(small), cv2.cvtColor(cv2.resize(frame, None, fx=0.12, fy=0.12), cv2.COLOR_RGB2BGR))
    done = prior3d("--identity", str(small), "-o", str(tmp_path / "p.h5"))
    assert done.returncode != 0 and "too small: its face is" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "p.h5").exists()
    done = prior3d("-o", str(store))
    assert done.returncode != 0 and "input" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = subprocess.run([sys.executable, "-m", "nice_core", "prior3d", "--store", str(tmp_path / "none.h5"),
                           "-o", str(tmp_path / "q.h5")], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "not found" in done.stderr and len(done.stderr.strip().splitlines()) == 1


# -- the 3D losses in the fit ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_detail_loss_moves_pixels_towards_the_identitys_static_detail(marked) -> None:
    """Optimising a target crop's pixels under L_detail alone brings its UV detail to the proxy's static
    detail: the loss falls by more than half and the marks the edit adds appear."""
    from nice_core.prior3d.losses import Prior3DFrames, Prior3DLoss, Window
    from nice_core.store import FaceStore

    _, store, result, clean = marked
    frames = Prior3DFrames(result.path, 128, "proxy")
    loss = Prior3DLoss(frames, 0.0, 0.0, 1.0)
    with FaceStore.open(store) as faces:
        crop = torch.from_numpy(faces["crops"][8]).permute(2, 0, 1).float().div(255)[None]
    pixels = crop.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([pixels], lr=0.01)
    first = None
    for _ in range(120):
        value, logs = loss(pixels, [8], Window(0, 0, 128, 128))
        first = first if first is not None else logs["detail3d"]
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        with torch.no_grad():
            pixels.clamp_(0, 1)
    assert logs["detail3d"] < 0.5 * first, (first, logs)
    frames.close()


@pytest.mark.slow
def test_a_fit_with_every_3d_loss_logs_them_and_records_the_prior(marked, tmp_path: Path) -> None:
    import json
    import shutil

    from nice_core.carrier import FitConfig, fit_carrier
    from nice_core.carrier.config import with_overrides
    from nice_core.errors import InputError

    root, store, result, _ = marked
    copy = tmp_path / "face.h5"
    shutil.copy(store, copy)
    config = with_overrides(FitConfig(), epochs=1, size=64, patch=32, unet_base_channels=8, unet_depth=3,
                            loss_perceptual_weight=0.0, threads=1, loss_albedo3d_weight=1.0,
                            loss_shape3d_weight=0.1, loss_detail3d_weight=1.0)
    with pytest.raises(InputError, match="needs the 3D prior"):
        fit_carrier(copy, root / "bench" / "proxy.mp4", config, None)
    fitted = fit_carrier(copy, root / "bench" / "proxy.mp4", config, tmp_path / "ckpt", prior3d=result.path,
                         log=lambda line: None)
    record = fitted.history[0]
    assert {"albedo3d", "shape3d", "detail3d"} <= set(record) and all(np.isfinite(record[k]) for k in record)
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    from nice_core.io.digest import file_sha256

    assert state["identity"]["prior3d_sha256"] == file_sha256(result.path)


@pytest.mark.slow
def test_the_uv_detail_score_is_zero_for_the_target_and_high_for_the_clean_swap(marked) -> None:
    from nice_core.prior3d.score import detail_map_uri, uv_detail_scores

    root, store, result, _ = marked
    bench = root / "bench"
    target = uv_detail_scores(bench / "target.mp4", store, result.path)
    proxy = uv_detail_scores(bench / "proxy.mp4", store, result.path)
    clean = uv_detail_scores(bench / "clean.mp4", store, result.path)
    assert target["source"] == "proxy" and target["frames"] == 24  # a self-swap benchmark: no identity input
    assert abs(target["uv_detail_gain"]) < 0.05
    assert proxy["uv_detail_gain"] == pytest.approx(1.0, abs=1e-3)  # the identity's detail is the proxy's
    assert clean["uv_detail_gain"] > 0.6 and clean["uv_detail_corr"] > 0.6
    assert detail_map_uri(clean["maps"]["detail"]).startswith("data:image/png;base64,")


# -- the deca backend -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_deca_backend_caches_decas_codes_and_its_losses_read_them(marked, tmp_path: Path) -> None:
    """With a DECA file in DECA's format (random weights, written here): every frame's codes and crop box are
    cached with the file's SHA-256, a changed file makes the cache stale, and the fit's terms recompute the
    codes where the stage did (the target crop itself: albedo distance 0) with gradients into the pixels."""
    import json

    from nice_core.io.digest import file_sha256
    from nice_core.prior3d.losses import Prior3DFrames, Prior3DLoss, Window
    from nice_core.prior3d.stage import Prior3DConfig, build_prior3d, prior3d_current
    from nice_core.store import FaceStore

    from conftest import write_deca_model

    root, store, _, _ = marked
    model = tmp_path / "deca_model.tar"
    write_deca_model(model, seed=1)
    config = Prior3DConfig(backend="deca", deca_model=str(model), aggregate_frames=8)
    proxy = root / "bench" / "proxy.mp4"
    result = build_prior3d(store, tmp_path / "deca.h5", proxy=proxy, config=config, show_progress=False)
    with h5py.File(result.path) as h5:
        assert h5.attrs["backend"] == "deca" and h5.attrs["backend_version"] == "mesh-1+deca-1"
        assert json.loads(h5.attrs["models"])["deca_model"]["sha256"] == file_sha256(model)
        for source in ("target", "proxy"):
            assert h5[f"{source}/deca/shape"].shape == (24, 100) and h5[f"{source}/deca/detail"].shape == (24, 128)
            assert np.isfinite(h5[f"{source}/deca/tex"][()]).all()
            assert h5[f"{source}/static/deca/detail"].shape == (128,)
        boxes = h5["target/deca/box"][()]
        assert (boxes[:, 2] > 0.5 * 128).all() and (boxes[:, 2] < 1.5 * 128).all()  # a face-sized box in the crop
        # the proxy's codes are the proxy's (its pixels differ from the target's), on the target's box
        apart = float(np.abs(h5["proxy/deca/tex"][()] - h5["target/deca/tex"][()]).mean())
        assert apart > 0
    assert prior3d_current(result.path, store, proxy, None, config)
    frames = Prior3DFrames(result.path, 128, "proxy")
    loss = Prior3DLoss(frames, 1.0, 1.0, 1.0)
    with FaceStore.open(store) as faces:
        crops = torch.from_numpy(faces["crops"][[3, 9]]).permute(0, 3, 1, 2).float().div(255)
    pixels = crops.clone().requires_grad_(True)
    value, logs = loss(pixels, [3, 9], Window(0, 0, 128, 128))
    # (random weights make codes that vary little with the input: the bar is relative to the proxy's distance)
    assert logs["albedo3d"] < 0.02 * apart and logs["detail3d"] > 0 and logs["shape3d"] > 0, (logs, apart)
    value.backward()
    assert pixels.grad.abs().sum() > 0
    # the window's output pasted into the whole crop: the same terms
    window = Window(32, 32, 64, 128)
    _, windowed = loss(crops[:, :, 32:96, 32:96], [3, 9], window, crops)
    assert windowed["albedo3d"] < 0.02 * apart
    shifted = Window(0, 0, 128, 128)  # a crop moved by 6 px: DECA sees other pixels, the albedo code moves
    _, moved = loss(torch.roll(crops, 6, dims=-1), [3, 9], shifted)
    assert moved["albedo3d"] > 0.05 * apart, (moved, apart)
    frames.close()
    write_deca_model(model, seed=2)  # the user replaces the file: the cache is stale and the fit refuses it
    assert not prior3d_current(result.path, store, proxy, None, config)
    from nice_core.errors import InputError

    with pytest.raises(InputError, match="changed since"):
        Prior3DFrames(result.path, 128, "proxy")


@pytest.mark.slow
def test_the_deca_backend_says_which_file_it_lacks(marked, tmp_path: Path) -> None:
    _, store, _, _ = marked

    def prior3d(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nice_core", "prior3d", "--store", str(store),
                               "-o", str(tmp_path / "p.h5"), "--backend", "deca", *args],
                              capture_output=True, text=True, timeout=300)

    done = prior3d()
    assert done.returncode != 0 and "needs deca_model" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    missing = tmp_path / "models" / "deca_model.tar"
    done = prior3d("--deca-model", str(missing))
    assert done.returncode != 0 and f"DECA model not found: {missing}" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "p.h5").exists()

"""The neural identity carrier: network, loss, data, fitting (determinism, resume after kill -9), inference,
and a quality check on a short synthetic flicker benchmark made from the sample (self-edit, nobody else's face)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nice_core.carrier import (
    CarrierDataset,
    CarrierLoss,
    CarrierUNet,
    CheckpointMismatchError,
    FitConfig,
    LossConfig,
    UNetConfig,
    aleatoric_loss,
    fit_carrier,
    load_carrier,
    one_cycle_lr,
    plan_fit,
    prepare_proxy_crops,
    read_checkpoint,
    run_carrier,
)
from nice_core.carrier.data import PROXY_CROPS
from nice_core.carrier.fit import resolve_device
from nice_core.carrier.loss import balanced_aleatoric_objective, feature_distance, loss_weight
from nice_core.errors import InputError
from nice_core.face.alignment import warp_crop
from nice_core.metrics import crops
from nice_core.store import FaceStore

from conftest import kill_when

TINY = UNetConfig(base_channels=8, depth=3)


def tiny_config(**changes) -> FitConfig:
    """A fit that takes about a second: 32 px windows of 64 px crops, a tiny UNet, 3 epochs, one thread."""
    settings = dict(size=64, patch=32, epochs=3, unet=TINY, threads=1, batch_size=4, seed=0)
    settings.update(changes)
    return FitConfig(**settings)


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def bench(flicker_bench: SimpleNamespace) -> SimpleNamespace:
    """The shared 24-frame flicker benchmark (conftest), with its proxy crops cached in the store."""
    from nice_core.proxy.check import check_proxy

    check = check_proxy(flicker_bench.target, flicker_bench.proxy)
    count = prepare_proxy_crops(flicker_bench.store, flicker_bench.proxy, check)
    return SimpleNamespace(**vars(flicker_bench), frames=count, check=check)


def state_tensors(path: Path) -> dict[str, torch.Tensor]:
    ckpt = read_checkpoint(path)
    out = {f"model.{k}": v for k, v in ckpt.model.items()}
    for index, tensors in ckpt.optim.items():
        out.update({f"optim.{index}.{k}": v for k, v in tensors.items()})
    return out


def assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ: {different[:5]}"


# -- network --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["direct", "residual"])
@pytest.mark.parametrize("s_head", ["detached", "shared"])
def test_unet_shapes_and_ranges(output: str, s_head: str) -> None:
    torch.manual_seed(0)
    net = CarrierUNet(UNetConfig(base_channels=8, depth=3, output=output, s_head=s_head, s_min=-4.0))
    x = torch.rand(2, 3, 64, 64)
    xo, s = net(x)
    assert xo.shape == (2, 3, 64, 64) and s.shape == (2, 1, 64, 64)
    assert xo.min() >= 0 and xo.max() <= 1
    assert s.min() > -4.0 and s.abs().max() < 1.0  # starts near 0
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.rand(1, 3, 60, 64))
    with pytest.raises(ValueError, match="RGB"):
        net(torch.rand(1, 1, 64, 64))


def test_residual_head_starts_at_the_target() -> None:
    net = CarrierUNet(UNetConfig(base_channels=8, depth=2, output="residual"))
    torch.nn.init.zeros_(net.head.weight)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(net(x)[0], x)


def test_straight_through_clamp() -> None:
    from nice_core.carrier.unet import straight_through_clamp

    y = torch.tensor([-0.5, 0.3, 1.7], requires_grad=True)
    out = straight_through_clamp(y)
    assert out.tolist() == pytest.approx([0.0, 0.3, 1.0])
    out.sum().backward()
    assert y.grad.tolist() == [1.0, 1.0, 1.0]


def test_detached_s_head_sends_no_gradient_to_the_trunk() -> None:
    net = CarrierUNet(UNetConfig(base_channels=8, depth=2))
    _, s = net(torch.rand(1, 3, 32, 32))
    s.sum().backward()
    assert net.inc[0].weight.grad is None or net.inc[0].weight.grad.abs().max() == 0
    assert net.s_branch[0].weight.grad.abs().max() > 0


def test_unet_config_is_checked() -> None:
    with pytest.raises(ValueError):
        UNetConfig(output="sideways")
    with pytest.raises(ValueError):
        UNetConfig(depth=0)
    with pytest.raises(ValueError, match="multiple of 16"):
        FitConfig(size=72, unet=UNetConfig(depth=4))
    with pytest.raises(ValueError, match="patch 80 must be"):
        FitConfig(patch=80)
    with pytest.raises(ValueError):
        FitConfig(grad_clip=0.0)


# -- loss -----------------------------------------------------------------------------------------------


def test_loss_reduces_to_d_when_s_is_zero() -> None:
    torch.manual_seed(0)
    d = torch.rand(2, 1, 8, 8)
    w = torch.rand(2, 1, 8, 8)
    zero = torch.zeros_like(d)
    assert torch.allclose(aleatoric_loss(d, zero), d.mean())
    assert torch.allclose(aleatoric_loss(d, zero, w), (d * w).sum() / w.sum())
    assert torch.allclose(aleatoric_loss(d, None, w), aleatoric_loss(d, zero, w))
    # The full loss with s = 0 reports D's weighted mean, and its balanced objective gives the output D's gradient.
    loss_fn = CarrierLoss(LossConfig(perceptual_weight=0.0, gradient_weight=0.5))
    xo = torch.rand(2, 3, 32, 32, requires_grad=True)
    xref, mask = torch.rand(2, 3, 32, 32), torch.rand(2, 1, 32, 32)
    objective, logs = loss_fn(xo, torch.zeros(2, 1, 32, 32), xref, mask)
    plain, plain_logs = loss_fn(xo, torch.zeros(2, 1, 32, 32), xref, mask, uncertainty=False)
    assert logs["loss"] == pytest.approx(plain_logs["loss"], rel=1e-6)
    (g_balanced,) = torch.autograd.grad(objective, xo)
    (g_plain,) = torch.autograd.grad(plain, xo)
    assert torch.allclose(g_balanced, g_plain, atol=1e-7)


@pytest.mark.parametrize("balanced", [False, True])
def test_uncertainty_term_raises_s_where_d_is_large(balanced: bool) -> None:
    """For a fixed D the optimal s is log D: larger where D is larger, and it down-weights those pixels."""
    d = torch.tensor([0.01, 0.05, 0.2, 0.8]).view(1, 1, 2, 2)
    s = torch.zeros_like(d, requires_grad=True)
    opt = torch.optim.Adam([s], lr=0.05)
    for _ in range(1500):
        opt.zero_grad()
        (balanced_aleatoric_objective(d, s) if balanced else aleatoric_loss(d, s)).backward()
        opt.step()
    assert torch.allclose(s.detach(), d.log(), atol=0.02)
    assert torch.all(s.detach().flatten().diff() > 0)
    # The output's gradient at each pixel is D's gradient times exp(-s): the unreliable pixel counts least.
    xo = torch.full((1, 3, 2, 2), 0.5, requires_grad=True)
    xref = xo.detach() + d.expand(1, 3, 2, 2)
    loss_fn = CarrierLoss(LossConfig(perceptual_weight=0.0, balanced=balanced))
    objective, _ = loss_fn(xo, s.detach(), xref)
    (grad,) = torch.autograd.grad(objective, xo)
    assert torch.all(grad[0, 0].flatten().abs().diff() < 0)


def test_feature_distance_and_weight() -> None:
    torch.manual_seed(0)
    feats = [torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)]
    same = feature_distance(feats, feats, (16, 16))
    assert same.shape == (1, 1, 16, 16) and same.abs().max() < 1e-5
    other = feature_distance(feats, [-f for f in feats], (16, 16))
    assert torch.allclose(other, torch.full_like(other, 2.0), atol=1e-4)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 8, 8] = 1
    w = loss_weight(mask, (1, 1, 16, 16), 2, 0.1)
    assert w[..., 6:11, 6:11].min() == 1 and w[..., 0, 0] == pytest.approx(0.1)
    assert loss_weight(None, (1, 1, 16, 16), 2, 0.1) is None


def test_perceptual_loss_runs_and_is_zero_on_the_target() -> None:
    loss_fn = CarrierLoss(LossConfig())
    x = torch.rand(1, 3, 64, 64)
    d, parts = loss_fn.distance(x, x)
    assert set(parts) == {"l1", "perceptual"} and d.shape == (1, 1, 64, 64) and d.abs().max() < 1e-4


# -- schedule and plan ------------------------------------------------------------------------------------


def test_one_cycle_matches_torch() -> None:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=50, cycle_momentum=False)
    for step in range(50):
        assert one_cycle_lr(step, 50, 1e-3) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()


def test_epochs_follow_a_step_budget() -> None:
    config = FitConfig(steps=2400)
    assert plan_fit(240, config).epochs == 10 and plan_fit(120, config).epochs == 20
    assert plan_fit(240, FitConfig(epochs=3)).total_steps == 720
    assert plan_fit(10, FitConfig(batch_size=4, epochs=2)).steps_per_epoch == 3
    assert plan_fit(2400, config).parts == 1 and plan_fit(2400, config).note() is None


def test_a_long_clip_gets_one_pass_in_parts_within_the_budget() -> None:
    # 10-minute clip at 25 fps: one pass of 15000 steps, cut into 7 epochs of at most 2400 steps each.
    plan = plan_fit(15_000, FitConfig(steps=2400))
    assert (plan.passes, plan.parts, plan.epochs, plan.total_steps) == (1, 7, 7, 15_000)
    assert max(plan.part_steps(k) for k in range(plan.parts)) <= 2400
    members = plan.partition(seed=0)
    assert sorted(torch.cat(members).tolist()) == list(range(15_000))  # every frame once per pass
    assert all(m.min() < 1000 and m.max() > 14_000 for m in members)  # each part spans the whole clip
    assert len(members) == plan.parts
    assert torch.equal(plan.partition(seed=0)[3], members[3]) and not torch.equal(plan.partition(seed=1)[3], members[3])
    assert "7 checkpointed parts" in plan.note()
    batched = plan_fit(15_000, FitConfig(steps=2400, batch_size=4))  # 3750 steps: 2 parts
    assert (batched.parts, batched.total_steps) == (2, 3750)


@pytest.mark.slow
def test_a_fit_in_parts_resumes_to_the_same_weights(bench: SimpleNamespace, tmp_path: Path) -> None:
    config = tiny_config(epochs=None, steps=3)  # 24 frames at batch 4: a pass of 6 steps in 2 parts of 3
    assert plan_fit(24, config).epochs == 2
    reference = fit_carrier(bench.store, None, config, tmp_path / "reference", log=quiet)

    def interrupt(epoch: int, _state: dict) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_carrier(bench.store, None, config, tmp_path / "resumed", log=quiet, on_epoch=interrupt)
    lines: list[str] = []
    resumed = fit_carrier(bench.store, None, config, tmp_path / "resumed", log=lines.append)
    assert any("2 checkpointed parts" in line for line in lines)
    assert json.loads((tmp_path / "resumed" / "state.json").read_text())["step"] == 6
    assert_identical(resumed.model.state_dict(), reference.model.state_dict())


def test_config_round_trip() -> None:
    config = tiny_config(lr=2e-3, loss=LossConfig(gradient_weight=0.5))
    assert FitConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown"):
        FitConfig.from_dict({"epochz": 3})


def test_cuda_falls_back_to_the_cpu_with_a_warning() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    lines: list[str] = []
    assert resolve_device("cuda", lines.append).type == "cpu"
    assert len(lines) == 1 and lines[0].startswith("warning:") and "CPU" in lines[0]
    assert resolve_device("auto", lines.append).type == "cpu" and len(lines) == 1


# -- data -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_proxy_crops_use_the_targets_transform(bench: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    from nice_core.io import VideoReader

    assert bench.frames == 24
    import h5py

    from nice_core.carrier.data import default_proxy_crops
    from nice_core.carrier.register import register_proxy_crop

    with FaceStore.open(bench.store) as store, h5py.File(default_proxy_crops(bench.store)) as cache:
        assert "carrier" not in store.h5  # the cache has a file of its own: the tracking store is only read
        cached = cache[PROXY_CROPS][5]
        transform, target, mask = store["transforms"][5], store.crop(5), store["masks"][5]
        shift = cache["carrier/proxy_shift"][5]
        assert cache["carrier"].attrs["complete"] and cache["carrier"].attrs["registered"]
        assert cache[PROXY_CROPS].chunks == (1, 128, 128, 3) and cache[PROXY_CROPS].dtype == np.uint8
    with VideoReader(bench.dir / "proxy.mp4") as reader:
        expected, found, _ = register_proxy_crop(warp_crop(reader[5], transform, 128), target, mask)
    assert np.array_equal(cached, expected) and np.allclose(shift, found)
    # A second call finds the cache: it does not decode the proxy, and the store is not written.
    import nice_core.carrier.data as data_module

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached proxy crops were made again")

    mtime = bench.store.stat().st_mtime_ns
    monkeypatch.setattr(data_module, "VideoReader", no_decoding)
    assert prepare_proxy_crops(bench.store, bench.dir / "proxy.mp4", bench.check) == 24
    assert bench.store.stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_dataset_shapes_and_ranges(bench: SimpleNamespace) -> None:
    with CarrierDataset(bench.store, 64) as data:
        assert len(data) == 24
        xt, xref, mask = data.batch([0, 3, 7])
        assert xt.shape == xref.shape == (3, 3, 64, 64) and mask.shape == (3, 1, 64, 64)
        for t in (xt, xref, mask):
            assert t.dtype == torch.float32 and t.min() >= 0 and t.max() <= 1
        assert mask.mean() > 0.1
        assert [tuple(t.shape) for t in data[2]] == [(3, 64, 64), (3, 64, 64), (1, 64, 64)]
    with CarrierDataset(bench.store) as data:
        assert data.size == 128
    with pytest.raises(InputError, match=r"size must be in \[1, 128\] \(the store's crop size\), got 256"):
        CarrierDataset(bench.store, 256)


# -- fitting: determinism, checkpoints, resume ---------------------------------------------------------------


@pytest.mark.slow
def test_fit_is_deterministic_for_a_seed(bench: SimpleNamespace) -> None:
    a = fit_carrier(bench.store, None, tiny_config(epochs=2), log=quiet).model.state_dict()
    b = fit_carrier(bench.store, None, tiny_config(epochs=2), log=quiet).model.state_dict()
    c = fit_carrier(bench.store, None, tiny_config(epochs=2, seed=1), log=quiet).model.state_dict()
    assert_identical(a, b)
    assert any(not torch.equal(a[k], c[k]) for k in a)


CHILD = """
import json, sys, time
from nice_core.carrier import FitConfig, fit_carrier

PAUSE = int(sys.argv[4]) if len(sys.argv) > 4 else 1

def pause_after_first(epoch, state):
    if epoch == PAUSE:
        time.sleep(120)  # killed here, after that epoch's checkpoint

config = FitConfig.from_dict(json.loads(sys.argv[3]))
fit_carrier(sys.argv[1], None, config, sys.argv[2], on_epoch=pause_after_first, log=lambda line: None)
"""


@pytest.mark.slow
def test_resume_after_kill_equals_an_uninterrupted_fit(bench: SimpleNamespace, tmp_path: Path) -> None:
    config = tiny_config()
    reference = tmp_path / "reference"
    fit_carrier(bench.store, None, config, reference, log=quiet)

    interrupted = tmp_path / "interrupted"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(bench.store), str(interrupted),
                              json.dumps(config.to_dict())])
    kill_when(child, interrupted / "state.json", 120, "its first checkpoint")
    assert child.returncode == -signal.SIGKILL
    state = json.loads((interrupted / "state.json").read_text())
    assert state["epoch"] == 1 and not state["complete"]

    lines: list[str] = []
    result = fit_carrier(bench.store, None, config, interrupted, log=lines.append)
    model = result.model
    assert (result.epochs, result.seed, result.weights) == (3, config.seed, interrupted / "carrier.safetensors")
    assert any("resuming from epoch 1/3" in line for line in lines)
    assert sum("carrier: epoch" in line for line in lines) == 2  # epochs 2 and 3 only
    assert_identical(state_tensors(interrupted), state_tensors(reference))
    assert_identical(model.state_dict(), read_checkpoint(reference).model)
    done = json.loads((interrupted / "state.json").read_text())
    ref_state = json.loads((reference / "state.json").read_text())
    assert done["complete"] and done["step"] == ref_state["step"] == plan_fit(24, config).total_steps
    assert [h["loss"] for h in done["history"]] == [h["loss"] for h in ref_state["history"]]


@pytest.mark.slow
def test_checkpoint_mismatch_is_refused_or_restarted(bench: SimpleNamespace, tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    fit_carrier(bench.store, None, tiny_config(epochs=1), folder, log=quiet)
    # The same config again: already complete, nothing is trained, the checkpoint's weights come back.
    calls: list[int] = []
    model = fit_carrier(bench.store, None, tiny_config(epochs=1, threads=2), folder, log=quiet,
                        on_epoch=lambda epoch, state: calls.append(epoch)).model
    assert calls == []
    assert_identical(model.state_dict(), read_checkpoint(folder).model)
    with pytest.raises(CheckpointMismatchError, match=r"lr: checkpoint 0\.001, now 0\.002.*restart"):
        fit_carrier(bench.store, None, tiny_config(epochs=1, lr=2e-3), folder, log=quiet)
    lines: list[str] = []
    fit_carrier(bench.store, None, tiny_config(epochs=1, lr=2e-3), folder, restart=True, log=lines.append)
    assert any("discarding" in line for line in lines)
    fresh = tmp_path / "fresh"
    fit_carrier(bench.store, None, tiny_config(epochs=1, lr=2e-3), fresh, log=quiet)
    assert_identical(state_tensors(folder), state_tensors(fresh))
    assert load_carrier(folder).config == TINY


# -- inference ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_carrier_yields_every_frame(bench: SimpleNamespace, tmp_path: Path) -> None:
    from nice_core.carrier.data import default_proxy_crops

    store_path = tmp_path / "face.h5"
    shutil.copy(bench.store, store_path)
    shutil.copy(default_proxy_crops(bench.store), default_proxy_crops(store_path))  # the cached crops go along
    with FaceStore.open(store_path, "r+") as store:
        store["has_face"][4] = False
    model = fit_carrier(store_path, None, tiny_config(epochs=1), log=quiet).model
    results = list(run_carrier(model, store_path, 64, batch_size=5))
    assert [r[0] for r in results] == list(range(24))
    assert results[4][1:] == (None, None)
    for _, crop, sigma in results[:4] + results[5:]:
        assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
        assert sigma.shape == (128, 128) and sigma.dtype == np.float32 and sigma.min() > 0
    small = next(iter(run_carrier(model, store_path, 64, output_size=64)))
    assert small[1].shape == (64, 64, 3)


# -- quality -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_carrier_is_more_stable_than_the_proxy(bench: SimpleNamespace) -> None:
    """A small carrier fitted for a few seconds on 24 frames flickers far less than the proxy, and still
    carries the edit: its crops are closer to the clean edit than the target's are."""
    import cv2

    from nice_core.io import VideoReader

    size = 64
    config = FitConfig(size=size, steps=480, batch_size=1, unet=UNetConfig(base_channels=16, depth=3),
                       threads=2, seed=0)
    start = time.perf_counter()
    model = fit_carrier(bench.store, None, config, log=quiet).model
    fit_s = time.perf_counter() - start

    def small(image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)

    import h5py

    from nice_core.carrier.data import default_proxy_crops

    with FaceStore.open(bench.store) as store, h5py.File(default_proxy_crops(bench.store)) as cache:
        target = [small(store.crop(i)) for i in range(24)]
        proxy = [small(cache[PROXY_CROPS][i]) for i in range(24)]
        masks = [small(store["masks"][i]) for i in range(24)]
        transforms = store["transforms"][:]
    with VideoReader(bench.dir / "clean.mp4") as reader:
        clean = [small(warp_crop(frame, transforms[i], 128)) for i, frame in reader.iter_frames()]
    out = [crop for _, crop, _ in run_carrier(model, bench.store, size, output_size=size)]

    ff_x = crops.frame_difference(target, masks)
    ff_p, ff_o = crops.frame_difference(proxy, masks) / ff_x, crops.frame_difference(out, masks) / ff_x
    flicker_p, flicker_o = crops.edit_flicker(proxy, target, masks), crops.edit_flicker(out, target, masks)
    psnr_og, psnr_xg = crops.sequence_psnr(out, clean, masks), crops.sequence_psnr(target, clean, masks)
    print(f"fit {fit_s:.1f} s; frame-to-frame / target's: proxy {ff_p:.2f}, carrier {ff_o:.2f}; "
          f"edit flicker x1e4: proxy {1e4 * flicker_p:.1f}, carrier {1e4 * flicker_o:.1f}; "
          f"PSNR to clean: carrier {psnr_og:.2f}, target {psnr_xg:.2f}, proxy "
          f"{crops.sequence_psnr(proxy, clean, masks):.2f}")
    assert ff_o < 0.5 * ff_p
    assert flicker_o < 0.5 * flicker_p
    assert psnr_og > psnr_xg + 1.0


# -- divergence and the identity texture -----------------------------------------------------------------


def test_divergence_is_told_apart_from_noise() -> None:
    from nice_core.carrier.fit import _divergence

    history = [{"l1": 0.05, "s": 0.0}, {"l1": 0.04, "s": -2.0}]
    assert _divergence({"l1": 0.045, "s": -2.5, "loss": 0.1, "grad_norm": 1.0}, history) is None
    assert "L1" in _divergence({"l1": 0.08, "s": 1.7, "loss": 0.1, "grad_norm": 9.0}, history)
    assert "log-variance" in _divergence({"l1": 0.05, "s": 737.0, "loss": 0.4, "grad_norm": 1.0}, history)
    assert "non-finite" in _divergence({"l1": 0.05, "s": 0.0, "loss": float("nan"), "grad_norm": 1.0}, history)
    assert _divergence({"l1": 0.9, "s": 0.0, "loss": 0.9, "grad_norm": 1.0}, []) is None  # nothing to compare


def test_texture_carrier_needs_and_uses_surface_coordinates() -> None:
    net = CarrierUNet(UNetConfig(base_channels=8, depth=3, texture_channels=4, texture_size=32))
    x = torch.rand(2, 3, 64, 64)
    grid = torch.rand(2, 64, 64, 2) * 2 - 1
    covered = torch.ones(2, 1, 64, 64)
    with pytest.raises(ValueError, match="surface grid"):
        net(x)
    with pytest.raises(ValueError, match="do not match"):
        net(x, grid[:, :32], covered)
    xo, s = net(x, grid, covered)
    assert xo.shape == (2, 3, 64, 64) and s.shape == (2, 1, 64, 64)
    xo.sum().backward()
    assert net.texture.grad is not None and net.texture.grad.abs().sum() > 0
    assert not CarrierUNet(TINY).uses_surface


@pytest.mark.slow
def test_texture_fit_runs_resumes_and_carries(bench: SimpleNamespace, tmp_path: Path) -> None:
    """A texture carrier fits, resumes bit for bit after a stop, and runs over every frame."""
    config = tiny_config(unet=UNetConfig(base_channels=8, depth=3, texture_channels=4, texture_size=64), epochs=2)
    whole = fit_carrier(bench.store, None, config, tmp_path / "whole", log=quiet)

    class Stop(Exception):
        pass

    def stop_after_first(epoch: int, _state: dict) -> None:
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        fit_carrier(bench.store, None, config, tmp_path / "resumed", log=quiet, on_epoch=stop_after_first)
    resumed = fit_carrier(bench.store, None, config, tmp_path / "resumed", log=quiet)
    assert_identical(whole.model.state_dict(), resumed.model.state_dict())
    assert (whole.epochs, whole.steps) == (resumed.epochs, resumed.steps) == (2, whole.steps)
    out = list(run_carrier(whole.model, bench.store, 64))
    assert len(out) == 24 and all(crop is not None and crop.shape == (128, 128, 3) for _, crop, _ in out)


@pytest.mark.slow
def test_a_runaway_fit_is_rolled_back_then_stopped_with_one_line(bench: SimpleNamespace) -> None:
    """At an absurd learning rate every epoch diverges: each is rolled back at half the rate, with a warning,
    and after the last allowed rollback the fit stops with an error that says what to change."""
    lines: list[str] = []
    config = tiny_config(lr=50.0, schedule="constant", grad_clip=None, epochs=2, warmup=0.0)
    with pytest.raises(FloatingPointError, match="diverged 5 times.*lower lr"):
        fit_carrier(bench.store, None, config, log=lines.append)
    warnings = [line for line in lines if "rolled back" in line]
    assert len(warnings) == 4
    assert "0.0625 x the learning rate" in warnings[-1]


@pytest.mark.slow
def test_a_rollback_restores_the_weights_and_the_data_order(bench: SimpleNamespace) -> None:
    from nice_core.carrier.fit import _Run

    config = tiny_config()
    torch.manual_seed(0)
    model = CarrierUNet(config.unet)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    with CarrierDataset(bench.store, config.size) as data:
        run = _Run(model, optimizer, generator, data, CarrierLoss(config.loss), config,
                   plan_fit(len(data), config), torch.device("cpu"))
        before = run.snapshot()
        first, _ = run.epoch(0, 1.0)
        run.restore(before)
        again, _ = run.epoch(0, 1.0)
    assert first["l1"] == again["l1"] and first["loss"] == again["loss"]


@pytest.mark.slow
def test_the_reported_divergence_no_longer_derails_the_fit(bench: SimpleNamespace, tmp_path: Path) -> None:
    """Issue 12's reproduction (30 epochs at 64 px on a 24-frame clip: the uncertainty term exploded at epoch
    12 and the pixel error stayed at 0.55 for six epochs): every kept epoch is within the guard of the best
    one, the fit ends near its best L1, and any rollback said so in the log."""
    lines: list[str] = []
    fit_carrier(bench.store, None, FitConfig(epochs=30, size=64, threads=2), tmp_path / "ckpt", log=lines.append)
    history = json.loads((tmp_path / "ckpt" / "state.json").read_text())["history"]
    assert len(history) == 30
    best = np.minimum.accumulate([h["l1"] for h in history])
    assert all(h["l1"] <= 1.5 * b for h, b in zip(history[1:], best[:-1]))
    assert history[-1]["l1"] < 1.2 * best[-1] and max(h["s"] for h in history) < 8
    rollbacks = json.loads((tmp_path / "ckpt" / "state.json").read_text()).get("rollbacks", 0)
    assert len([line for line in lines if "rolled back" in line]) == rollbacks


@pytest.mark.slow
def test_a_long_epoch_reports_its_progress(bench: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    import nice_core.carrier.fit as fit_module

    monkeypatch.setattr(fit_module, "PROGRESS_SECONDS", 0.0)  # every step counts as "long" here
    lines: list[str] = []
    fit_carrier(bench.store, None, tiny_config(epochs=1), log=lines.append)
    steps = [line for line in lines if ": step " in line]
    assert steps and steps[0].startswith("carrier: epoch 1/1: step 1/") and "L1 so far" in steps[0]


# -- the plateau stop rule ------------------------------------------------------------------------------------


def test_plateau_helpers_spread_measure_and_compress() -> None:
    from nice_core.carrier.plateau import output_change, probe_items, schedule_position

    assert probe_items(80) == [10, 30, 50, 70] and probe_items(2) == [0, 1] and probe_items(1) == [0]
    a = torch.zeros(2, 3, 4, 4)
    b = a.clone()
    b[0, :, :2] = 2 / 255  # half of frame 0 moved by two levels
    weight = torch.ones(2, 1, 4, 4)
    assert output_change(a, b, weight) == pytest.approx(0.5)  # 2 levels on a quarter of the weight
    weight[0, :, :2] = 0
    assert output_change(a, b, weight) == 0.0 and output_change(a, b, torch.zeros_like(weight)) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        output_change(a, b[:1], weight)
    assert [schedule_position(s, None, 10, 100) for s in (0, 50, 99)] == [0.0, 50.0, 99.0]
    assert schedule_position(40, 40, 10, 100) == 40 and schedule_position(50, 40, 10, 100) == 99
    assert schedule_position(45, 40, 10, 100) == pytest.approx(69.5)
    with pytest.raises(ValueError, match="stop must be one of"):
        FitConfig(stop="never")
    with pytest.raises(ValueError, match="plateau_tail"):
        FitConfig(plateau_tail=1.0)


def plateau_config(**changes) -> FitConfig:
    """24 steps (4 epochs of 6); checks every 2 steps from step 8 (the peak), the tail 6 steps."""
    settings = dict(epochs=4, stop="plateau", plateau_every=2, plateau_patience=3, plateau_tail=0.25)
    return tiny_config(**{**settings, **changes})


def test_the_plateau_rule_only_watches_until_it_fires(bench: SimpleNamespace, tmp_path: Path) -> None:
    """With a threshold of 0 the rule never fires: the weights are those of the plain budget, bit for bit,
    and the checks' output changes are in the state."""
    plain = fit_carrier(bench.store, None, tiny_config(epochs=4), log=quiet)
    watched = fit_carrier(bench.store, None, plateau_config(plateau_change=0.0), tmp_path / "w", log=quiet)
    assert_identical(plain.model.state_dict(), watched.model.state_dict())
    assert watched.steps == plain.steps == 24
    checks = json.loads((tmp_path / "w" / "state.json").read_text())["plateau"]["checks"]
    assert [c[0] for c in checks] == list(range(10, 25, 2)) and all(c[1] > 0 for c in checks)


def test_a_plateau_ends_the_fit_at_the_schedules_end(bench: SimpleNamespace) -> None:
    """Any change counts as a plateau here: checks at steps 8 (the first probe), 10, 12 and 14 (the third low
    check: the plateau), then the schedule's rest in 6 steps: the fit ends at step 20 of 24, mid-epoch, at
    the schedule's small final learning rate."""
    lines: list[str] = []
    config = plateau_config(plateau_change=1e9)
    result = fit_carrier(bench.store, None, config, log=lines.append)
    assert result.steps == 20 and result.epochs == 4
    assert any("plateau at step 14" in line and "ending at step 20 of 24" in line for line in lines)
    last = result.history[-1]
    assert last["steps"] == 2 and last["lr"] < 0.05 * config.lr
    full = fit_carrier(bench.store, None, tiny_config(epochs=4), log=quiet)
    assert any(not torch.equal(a, b) for a, b in zip(result.model.state_dict().values(),
                                                     full.model.state_dict().values()))


@pytest.mark.slow
def test_a_resumed_plateau_fit_stops_where_an_uninterrupted_one_does(bench: SimpleNamespace, tmp_path: Path) -> None:
    """Killed after epoch 2 (step 12: two checks counted, the last probe output in the checkpoint), the
    resumed fit finds the plateau at the same step and ends with the same weights."""
    config = plateau_config(plateau_change=1e9)
    reference = tmp_path / "reference"
    fit_carrier(bench.store, None, config, reference, log=quiet)
    interrupted = tmp_path / "interrupted"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(bench.store), str(interrupted),
                              json.dumps(config.to_dict()), "2"])
    kill_when(child, interrupted / "state.json", 120, "its second checkpoint",
              ready=lambda: json.loads((interrupted / "state.json").read_text())["epoch"] == 2)
    state = json.loads((interrupted / "state.json").read_text())
    assert state["plateau"]["low"] == 2 and "previous" in read_checkpoint(interrupted).monitor
    result = fit_carrier(bench.store, None, config, interrupted, log=quiet)
    assert result.steps == 20
    assert_identical(state_tensors(interrupted), state_tensors(reference))
    done = json.loads((interrupted / "state.json").read_text())
    assert done["plateau"] == json.loads((reference / "state.json").read_text())["plateau"]


# -- warm start -------------------------------------------------------------------------------------------------


def test_a_warm_start_begins_at_the_given_carrier(bench: SimpleNamespace, tmp_path: Path) -> None:
    """Started from a fitted carrier, the first epoch's error is already near that carrier's last one (a cold
    start's is far above it); a carrier of another shape is refused with one line, and a checkpoint of a fit
    from another start is not resumed."""
    first = fit_carrier(bench.store, None, tiny_config(epochs=4), tmp_path / "first", log=quiet)
    cold = fit_carrier(bench.store, None, tiny_config(epochs=1), log=quiet)
    warm = fit_carrier(bench.store, None, tiny_config(epochs=1), tmp_path / "warm", init=first.weights, log=quiet)
    end = first.history[-1]["l1"]
    assert warm.history[0]["l1"] < 1.3 * end < cold.history[0]["l1"]
    other = tiny_config(epochs=1, unet=UNetConfig(base_channels=4, depth=3))
    with pytest.raises(InputError, match="warm start .*network"):
        fit_carrier(bench.store, None, other, init=first.weights, log=quiet)
    with pytest.raises(CheckpointMismatchError, match="init_sha256"):
        fit_carrier(bench.store, None, tiny_config(epochs=1), tmp_path / "warm", init=cold_weights(tmp_path, bench),
                    log=quiet)


def cold_weights(tmp_path: Path, bench: SimpleNamespace) -> Path:
    return fit_carrier(bench.store, None, tiny_config(epochs=1, seed=3), tmp_path / "other", log=quiet).weights


def test_bf16_and_channels_last_fits_run_and_stay_close(bench: SimpleNamespace) -> None:
    """channels_last changes only the memory order (the same fit within float rounding); bf16 autocast
    changes the arithmetic but not what is learned: its first epoch's error is within 10 % of float32's."""
    plain = fit_carrier(bench.store, None, tiny_config(epochs=1), log=quiet)
    last = fit_carrier(bench.store, None, tiny_config(epochs=1, channels_last=True), log=quiet)
    half = fit_carrier(bench.store, None, tiny_config(epochs=1, precision="bf16"), log=quiet)
    assert last.history[0]["l1"] == pytest.approx(plain.history[0]["l1"], rel=1e-4)
    assert half.history[0]["l1"] == pytest.approx(plain.history[0]["l1"], rel=0.1)
    assert all(p.dtype == torch.float32 for p in half.model.parameters())
    with pytest.raises(ValueError, match="precision"):
        tiny_config(precision="fp16")

"""The study's detector: the inflated 3D ResNet sees time, labels do not leak, runs are reproducible and
resume after an interruption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nice_core.detect.i3d import I3DConfig, I3DResNet, inflate_2d_state_dict
from nice_core.detect.metrics import roc_auc
from nice_core.detect.train import TrainConfig, score_clips, temporal_toy_clips, train_detector
from nice_core.errors import InputError

#: Offsets of 0.15 per channel: the toy's only class signal, between consecutive frames.
STD = 0.15


def test_shapes_sizes_and_bad_input() -> None:
    model = I3DResNet(I3DConfig.small())
    assert model(torch.rand(2, 3, 8, 32, 32)).shape == (2,)
    assert sum(p.numel() for p in model.parameters()) < 200_000
    assert sum(p.numel() for p in I3DResNet(I3DConfig.r50()).parameters()) > 25_000_000
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model(torch.rand(2, 8, 32, 32))
    with pytest.raises(ValueError, match="temporal_kernel must be odd"):
        I3DConfig(temporal_kernel=2)
    assert I3DConfig.from_dict(I3DConfig.small().to_dict()) == I3DConfig.small()


def test_inflated_2d_weights_give_the_2d_networks_answer_on_a_still_clip() -> None:
    """Inflation (kernel repeated over time, divided by its length) on a clip of one repeated frame equals
    the same network with temporal kernel 1, which is the 2D network applied to each frame."""
    config = I3DConfig.small(temporal_kernel=3, stem_temporal_kernel=3)
    flat = I3DResNet(I3DConfig.small(temporal_kernel=1, stem_temporal_kernel=1)).eval()
    state_2d = {k: (v.squeeze(2) if v.ndim == 5 else v) for k, v in flat.state_dict().items()}
    inflated = I3DResNet(config).eval()
    left = inflate_2d_state_dict(inflated, state_2d)
    assert left == ["fc.weight", "fc.bias"]
    inflated.fc.load_state_dict(flat.fc.state_dict())
    still = torch.rand(1, 3, 1, 32, 32).expand(2, 3, 6, 32, 32)
    torch.testing.assert_close(inflated(still), flat(still), rtol=1e-4, atol=1e-5)
    state_2d["layer1.0.conv1.weight"] = state_2d["layer1.0.conv1.weight"][:, :4]
    with pytest.raises(InputError, match="layer1.0.conv1.weight has shape"):
        inflate_2d_state_dict(I3DResNet(config), state_2d)
    with pytest.raises(InputError, match="no key matches"):
        inflate_2d_state_dict(I3DResNet(config), {"backbone.weight": torch.zeros(1)})


def test_the_toy_clips_differ_only_in_time() -> None:
    clips = temporal_toy_clips(64, seed=3, offset_std=STD)
    real, fake = clips.clips[0::2], clips.clips[1::2]
    assert clips.labels[:4] == [0, 1, 0, 1]
    assert real.diff(dim=2).abs().max() == 0 and fake.diff(dim=2).abs().mean() > 0.05
    # One frame alone: the same distribution of brightness in both classes.
    assert abs(float(real[:, :, 3].mean() - fake[:, :, 3].mean())) < 0.02


@pytest.mark.slow
def test_the_detector_sees_time_and_a_frame_wise_one_does_not() -> None:
    """Issue 16's acceptance: AUC >= 0.9 on held-out toy clips with temporal kernels, <= 0.7 with kernel 1
    (same budget), and the same seed gives bit-identical scores."""
    train = temporal_toy_clips(1024, seed=0, offset_std=STD)
    val, test = temporal_toy_clips(32, seed=1, offset_std=STD), temporal_toy_clips(64, seed=2, offset_std=STD)
    config = TrainConfig(steps=150, batch_size=8, lr=2e-3, val_every=50, threads=1, seed=0)
    temporal = train_detector(train, val, I3DConfig.small(), config)
    frame_wise = train_detector(train, val, I3DConfig.small(temporal_kernel=1, stem_temporal_kernel=1), config)
    auc_temporal = roc_auc(test.labels, score_clips(temporal.model, test))
    auc_frame_wise = roc_auc(test.labels, score_clips(frame_wise.model, test))
    assert auc_temporal >= 0.9, auc_temporal
    assert auc_frame_wise <= 0.7, auc_frame_wise
    assert temporal.best_val_auc is not None and len(temporal.history) == 3


@pytest.mark.slow
def test_same_seed_same_scores_and_a_resumed_run_ends_the_same(tmp_path: Path) -> None:
    train, val = temporal_toy_clips(64, seed=0, offset_std=STD), temporal_toy_clips(16, seed=1, offset_std=STD)
    test = temporal_toy_clips(16, seed=2, offset_std=STD)
    config = TrainConfig(steps=20, batch_size=4, lr=2e-3, val_every=10, threads=1, seed=5)
    a = train_detector(train, val, config=config, checkpoint_dir=tmp_path / "a")
    b = train_detector(train, val, config=config)
    assert np.array_equal(score_clips(a.model, test), score_clips(b.model, test))

    def stop_after_first_check(line: str) -> None:
        if "step 10/20" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_detector(train, val, config=config, checkpoint_dir=tmp_path / "c", log=stop_after_first_check)
    lines: list[str] = []
    c = train_detector(train, val, config=config, checkpoint_dir=tmp_path / "c", log=lines.append)
    assert lines[0] == "detector: resuming at step 10/20"
    assert np.array_equal(score_clips(c.model, test), score_clips(a.model, test))
    assert (c.best_step, c.history) == (a.best_step, a.history)
    with pytest.raises(InputError, match="differs in: config"):
        train_detector(train, val, config=TrainConfig(steps=30, batch_size=4, val_every=10, threads=1),
                       checkpoint_dir=tmp_path / "a")


def test_a_set_without_both_classes_is_refused() -> None:
    clips = temporal_toy_clips(4, seed=0)
    clips.labels = [1, 1, 1, 1]
    with pytest.raises(InputError, match="0 real and 4 fake"):
        train_detector(clips, config=TrainConfig(steps=1, batch_size=2))

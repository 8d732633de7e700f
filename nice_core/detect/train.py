"""Training the study's detector: class-balanced batches, a fixed step budget, seeded, resumable, and the
checkpoint chosen on a validation split.

Every condition of the study (originals + per-frame swaps, originals + refined, all three) trains for the
same ``steps`` with the same balance (each batch half real, half fake, drawn with replacement from each
class), so merging data sets cannot win by more optimisation alone. Binary cross-entropy on one logit
(fake), Adam at ``lr`` with ``weight_decay`` (DeepfakeBench's I3D: 2e-4 and 5e-4).

**Selection.** Every ``val_every`` steps and at the end the validation clips are scored; the weights with
the best validation video AUC are kept as ``best.safetensors``. The test sets are never looked at here.

**Determinism and resume.** Weights are initialised after ``torch.manual_seed(seed)``, batches come from
their own generator, and deterministic algorithms are on: on the CPU the same config and clips give the
same weights and scores bit for bit (on CUDA with ``precision="bf16"`` only up to the kernels' own
determinism). At every check ``checkpoint_dir`` gets ``last.safetensors`` (weights, Adam state, generator
state) and ``state.json`` (step, history, best), each written atomically; a run started again with the
same config and clips continues from the last check and ends with the same weights as a run never
stopped. A checkpoint of another config or other clips is refused.

Clips are ``(3, T, H, W)`` float tensors in ``[0, 1]``: T *consecutive* frames (the flicker the carrier
removes lives between neighbouring frames; never subsample in time).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from nice_core.config import default
from nice_core.detect.i3d import I3DConfig, I3DResNet
from nice_core.detect.metrics import roc_auc, video_scores
from nice_core.errors import InputError
from nice_core.io.atomic import atomic_output
from nice_core.io.threads import deterministic_torch

__all__ = ["ClipSet", "TensorClips", "TrainConfig", "TrainResult", "score_clips", "train_detector"]

FORMAT = "nice-core-detector/1"
LAST, BEST, STATE = "last.safetensors", "best.safetensors", "state.json"


class ClipSet(Protocol):
    """Clips to train on or score: per clip its label (1 fake, 0 real) and video id, and the clip itself."""

    labels: Sequence[int]
    videos: Sequence[str]

    def __len__(self) -> int: ...

    def clip(self, index: int) -> Tensor:
        """Clip ``index`` as ``(3, T, H, W)`` float in ``[0, 1]``."""
        ...

    def fingerprint(self) -> str:
        """A short string that changes when the clips do (a resumed run must see the same data)."""
        ...


class TensorClips:
    """Clips held in memory: ``clips`` ``(N, 3, T, H, W)`` float in ``[0, 1]`` with ``labels`` and ``videos``
    (one per clip; default: each clip its own video)."""

    def __init__(self, clips: Tensor, labels: Sequence[int], videos: Sequence[str] | None = None) -> None:
        if clips.ndim != 5 or clips.shape[1] != 3:
            raise ValueError(f"clips must be (N, 3, T, H, W), got {tuple(clips.shape)}")
        if len(labels) != clips.shape[0] or (videos is not None and len(videos) != clips.shape[0]):
            raise ValueError(f"need one label and video per clip: {clips.shape[0]} clips, {len(labels)} labels")
        self.clips, self.labels = clips, [int(v) for v in labels]
        self.videos = list(videos) if videos is not None else [f"clip{i}" for i in range(clips.shape[0])]

    def __len__(self) -> int:
        return self.clips.shape[0]

    def clip(self, index: int) -> Tensor:
        return self.clips[index]

    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.clips.detach().cpu().contiguous().numpy().tobytes())
        digest.update(json.dumps([self.labels, self.videos]).encode())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class TrainConfig:
    """How the detector trains.

    Args:
        steps: optimizer steps (the same for every condition).
        batch_size: clips per step, half real and half fake (an odd batch gives the extra clip to fakes).
        lr, weight_decay: Adam's.
        seed: weights, batch order.
        val_every: steps between validation checks and checkpoints.
        threads: torch's CPU threads (``None``: torch's default).
        device: ``cpu`` or ``cuda``.
        precision: ``fp32``, or ``bf16`` autocast (CUDA).
    """

    steps: int = default("detector.train.steps")
    batch_size: int = default("detector.train.batch_size")
    lr: float = default("detector.train.lr")
    weight_decay: float = 5e-4
    seed: int = 1024
    val_every: int = default("detector.train.val_every")
    threads: int | None = None
    device: str = default("detector.train.device")
    precision: str = default("detector.train.precision")

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2 or self.val_every < 1:
            raise ValueError(f"need steps >= 1, batch_size >= 2 (one clip per class) and val_every >= 1, got "
                             f"{self.steps}, {self.batch_size}, {self.val_every}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")

    def identity(self) -> dict:
        """What a checkpoint must share with this config to be resumed (not threads or device)."""
        return {k: v for k, v in asdict(self).items() if k not in ("threads", "device")}


@dataclass
class TrainResult:
    """The trained detector: ``model`` holds the best validation weights (the last ones without a validation
    set); ``history`` one record per check; ``best_step`` and ``best_val_auc`` say which."""

    model: I3DResNet
    history: list[dict]
    best_step: int
    best_val_auc: float | None
    checkpoint_dir: Path | None


def _classes(clips: ClipSet, what: str) -> tuple[Tensor, Tensor]:
    labels = torch.tensor(list(clips.labels))
    real, fake = torch.nonzero(labels == 0).flatten(), torch.nonzero(labels == 1).flatten()
    if len(real) == 0 or len(fake) == 0:
        raise InputError(f"{what} needs real and fake clips, got {len(real)} real and {len(fake)} fake")
    return real, fake


def balanced_batch(real: Tensor, fake: Tensor, batch_size: int, generator: torch.Generator) -> list[int]:
    """Clip indices of one batch: ``batch_size // 2`` reals and the rest fakes, each drawn uniformly with
    replacement from its class, real ones first."""
    n_real = batch_size // 2
    picks_real = real[torch.randint(len(real), (n_real,), generator=generator)]
    picks_fake = fake[torch.randint(len(fake), (batch_size - n_real,), generator=generator)]
    return torch.cat([picks_real, picks_fake]).tolist()


def _stack(clips: ClipSet, items: Sequence[int], device: torch.device) -> Tensor:
    return torch.stack([clips.clip(i) for i in items]).to(device)


@torch.no_grad()
def score_clips(model: I3DResNet, clips: ClipSet, batch_size: int = 8, device: str | torch.device = "cpu",
                precision: str = "fp32") -> np.ndarray:
    """Fake probabilities ``(N,)`` of every clip, in ``[0, 1]`` (the model in eval mode)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    out = []
    for first in range(0, len(clips), batch_size):
        items = range(first, min(first + batch_size, len(clips)))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(_stack(clips, items, device))
        out.append(torch.sigmoid(logits.float()).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)


def _val_auc(model: I3DResNet, val: ClipSet, config: TrainConfig, device: torch.device) -> float:
    """Video-level AUC on the validation clips (mean of each video's clip probabilities)."""
    probs = score_clips(model, val, config.batch_size, device, config.precision)
    per_video = video_scores(zip(val.videos, probs, strict=True))
    label_of = dict(zip(val.videos, val.labels, strict=True))
    return roc_auc([label_of[v] for v in per_video], list(per_video.values()))


def _save(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save

    with atomic_output(path) as tmp:
        tmp.write_bytes(save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata))


def _optim_tensors(model: I3DResNet, optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
    out = {}
    for k, param in enumerate(model.parameters()):
        for name, value in optimizer.state.get(param, {}).items():
            out[f"optim.{k}.{name}"] = value if isinstance(value, Tensor) else torch.tensor(value)
    return out


def _load_optim(model: I3DResNet, optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor]) -> None:
    params = list(model.parameters())
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, k, name = key.split(".", 2)
            optimizer.state[params[int(k)]][name] = value.clone()


def _model_tensors(model: I3DResNet) -> dict[str, Tensor]:
    return {f"model.{k}": v for k, v in model.state_dict().items()}


def _resume(directory: Path, identity: dict, model: I3DResNet, optimizer: torch.optim.Optimizer,
            generator: torch.Generator) -> dict | None:
    from safetensors.torch import load_file

    if not (directory / LAST).is_file() or not (directory / STATE).is_file():
        return None
    state = json.loads((directory / STATE).read_text())
    if state.get("identity") != identity:
        differ = sorted(k for k in {**identity, **state.get("identity", {})}
                        if identity.get(k) != state.get("identity", {}).get(k))
        raise InputError(f"{directory}: a checkpoint of another detector run is there (differs in: "
                         f"{', '.join(differ)}); use another folder or remove it")
    tensors = load_file(str(directory / LAST))
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    _load_optim(model, optimizer, tensors)
    generator.set_state(tensors["rng.data"])
    torch.set_rng_state(tensors["rng.torch"])
    return state


def train_detector(train: ClipSet, val: ClipSet | None = None, model_config: I3DConfig | None = None,
                   config: TrainConfig | None = None, checkpoint_dir: str | Path | None = None,
                   log: Callable[[str], None] | None = None, init: dict[str, Tensor] | None = None) -> TrainResult:
    """Train an :class:`I3DResNet` on ``train`` and pick its weights on ``val`` (see the module notes).

    Args:
        train, val: clip sets with both classes.
        model_config: the network (default :meth:`I3DConfig.small`).
        config: the training settings.
        checkpoint_dir: where checkpoints go and a killed run resumes from (``None``: none written).
        log: one line per check (default: nothing).
        init: starting weights for the network (a state dict, e.g. from :func:`~nice_core.detect.i3d.
            inflate_2d_state_dict`'s model); its hash is part of the run's identity.

    Raises:
        InputError: a set lacks a class, or ``checkpoint_dir`` holds another run's checkpoint.
    """
    model_config = model_config or I3DConfig.small()
    config = config or TrainConfig()
    log = log or (lambda _line: None)
    device = torch.device(config.device)
    real, fake = _classes(train, "the training set")
    if val is not None:
        _classes(val, "the validation set")
    identity = {"format": FORMAT, "config": config.identity(), "model": model_config.to_dict(),
                "train": train.fingerprint(), "val": val.fingerprint() if val is not None else None}
    with deterministic_torch(config.threads, device.type):
        torch.manual_seed(config.seed)
        model = I3DResNet(model_config)
        if init is not None:
            model.load_state_dict(init)
            identity["init"] = hashlib.sha256(b"".join(v.cpu().numpy().tobytes() for v in init.values())).hexdigest()
        model.to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        generator = torch.Generator().manual_seed(config.seed)
        directory = Path(checkpoint_dir) if checkpoint_dir is not None else None
        state = {"identity": identity, "step": 0, "history": [], "best_step": 0, "best_val_auc": None,
                 "train_seconds": 0.0}
        resumed = _resume(directory, identity, model, optimizer, generator) if directory is not None else None
        if resumed is not None:
            state = resumed
            log(f"detector: resuming at step {state['step']}/{config.steps}")
        best = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if directory is not None and (directory / BEST).is_file() and state["best_val_auc"] is not None:
            from safetensors.torch import load_file

            best = {k[len("model."):]: v for k, v in load_file(str(directory / BEST)).items()}
        loss_fn = torch.nn.BCEWithLogitsLoss()
        model.train()
        start, losses = time.perf_counter(), []
        while state["step"] < config.steps:
            items = balanced_batch(real, fake, config.batch_size, generator)
            clips = _stack(train, items, device)
            target = torch.tensor([float(train.labels[i]) for i in items], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                logits = model(clips)
            loss = loss_fn(logits.float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            state["step"] += 1
            if state["step"] % config.val_every == 0 or state["step"] == config.steps:
                record = {"step": state["step"], "loss": float(np.mean(losses))}
                if val is not None:
                    record["val_auc"] = _val_auc(model, val, config, device)
                    if state["best_val_auc"] is None or record["val_auc"] > state["best_val_auc"]:
                        state["best_val_auc"], state["best_step"] = record["val_auc"], state["step"]
                        best = {k: v.detach().clone() for k, v in model.state_dict().items()}
                        if directory is not None:
                            _save(directory / BEST, {f"model.{k}": v for k, v in best.items()},
                                  {"format": FORMAT, "model": json.dumps(model_config.to_dict())})
                else:
                    state["best_step"] = state["step"]
                    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
                state["train_seconds"] = round(state["train_seconds"] + time.perf_counter() - start, 3)
                start, losses = time.perf_counter(), []
                state["history"].append(record)
                if directory is not None:
                    tensors = {**_model_tensors(model), **_optim_tensors(model, optimizer),
                               "rng.data": generator.get_state(), "rng.torch": torch.get_rng_state()}
                    _save(directory / LAST, tensors, {"format": FORMAT, "model": json.dumps(model_config.to_dict())})
                    with atomic_output(directory / STATE) as tmp:
                        tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
                log(f"detector: step {record['step']}/{config.steps}, loss {record['loss']:.4f}"
                    + (f", validation AUC {record['val_auc']:.3f}" if "val_auc" in record else ""))
        model.load_state_dict(best)
        model.eval()
    return TrainResult(model, state["history"], state["best_step"], state["best_val_auc"], directory)


def temporal_toy_clips(n: int, frames: int = 8, size: int = 32, seed: int = 0,
                       offset_std: float = 0.08) -> TensorClips:
    """Synthetic clips whose class is only temporal: each clip is a smooth random texture; a real clip has
    one colour offset for all its frames, a fake clip a new offset every frame, both drawn from the same
    ``N(0, offset_std^2)`` per channel. Any single frame is distributed alike in both classes, so only a
    detector that compares frames can tell them apart. Half the clips are fake (the odd ones)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 1, max(2, size // 8), max(2, size // 8), generator=g)
    texture = torch.nn.functional.interpolate(coarse.squeeze(2), size=(size, size), mode="bilinear",
                                              align_corners=False).unsqueeze(2)
    labels = [i % 2 for i in range(n)]
    offsets = torch.randn(n, 3, frames, 1, 1, generator=g) * offset_std
    still = offsets[:, :, :1].expand(-1, -1, frames, -1, -1)
    fake = torch.tensor(labels, dtype=torch.bool).view(n, 1, 1, 1, 1)
    clips = (0.15 + 0.7 * texture + torch.where(fake, offsets, still)).clamp(0, 1)
    return TensorClips(clips.contiguous(), labels)


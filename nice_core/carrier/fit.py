"""Fitting the carrier to one video: DVP-style passes over its frames, OneCycle, checkpoints and resume.

Training (NICe Sec. 3.2.1, after DVP): the carrier sees the video's own frames only. Each epoch is one
pass over every training frame in an order drawn by a seeded ``torch.Generator``; each step fits one batch
of ``(Xt, Xref, mask)`` under :class:`~nice_core.carrier.loss.CarrierLoss` with Adam or AdamW. The
learning rate follows :func:`one_cycle_lr` (torch's ``OneCycleLR`` without momentum cycling, as a pure
function of the step, so resuming needs only the step count). The calibration note measured OneCycle at
max 1e-3 2.3 dB above a constant 3e-4 on the same network.

**How long.** ``epochs`` fixes the passes; left ``None``, a budget of ``steps`` optimizer steps sets them,
``round(steps / steps_per_pass)`` clipped to ``[min_epochs, max_epochs]``: a 10 s clip and a 5 s clip get
the same training time. A long clip, whose one pass needs more steps than the budget (2400 frames at batch
1: 96 s at 25 fps), gets ``min_epochs`` passes over every frame: its fit grows with its number of frames,
like every other stage, and each frame is seen at least once (a cap would leave frames the carrier never
saw). Such a pass is split into parts of at most ``steps`` steps, each a random ``1/parts`` of the frames
spread over the whole clip (:class:`FitPlan`), so that a checkpoint is written, and a diverged epoch
rolled back, at least every budget's worth of steps.
With ``stop = "plateau"`` the fit may end sooner, once its output stops changing (the budget stays the cap;
:mod:`nice_core.carrier.plateau`).

**Warm-up without the uncertainty term.** For the first ``warmup`` share of the steps the loss is the plain
``D``; only then does ``s`` start to count. Early on the carrier's output is far from the proxy
everywhere, and with ``s`` in the loss from step 0 it can explain the consistent identity change away as
noise (raise ``s`` on the edited region) instead of learning it.

**Determinism.** For a fixed config on the CPU the fit is bit-for-bit reproducible: the weights are
initialised after ``torch.manual_seed(seed)``, the data order comes from its own generator, deterministic
algorithms are switched on (and switched back afterwards), and ``threads`` fixes ``torch.set_num_threads``
(the thread count can change float summation order, so a resume should use the same). On CUDA the
deterministic switch only warns where an op has no deterministic kernel.

**Checkpoints and resume** (:mod:`nice_core.carrier.checkpoint`). After every epoch ``checkpoint_dir``
gets ``carrier.safetensors`` (weights, Adam state, generator states) and then ``state.json`` (epoch, step,
config, loss history, encoded generator states), each written atomically. Calling :func:`fit_carrier`
again with the same config, store and proxy continues after the last complete epoch and ends with the same
weights, bit for bit, as a run that was never interrupted; after the last epoch it just loads the result. A
checkpoint from another config or proxy is refused (:class:`CheckpointMismatchError` names the differences)
unless ``restart=True``, which discards it. ``device`` and ``threads`` may change between runs.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from nice_core.carrier.checkpoint import (
    FORMAT,
    STATE_NAME,
    WEIGHTS_NAME,
    decode_bytes,
    encode_bytes,
    read_checkpoint,
    write_checkpoint,
)
from nice_core.carrier.config import (
    SCHEDULES,
    FitConfig,
)
from nice_core.carrier.data import CarrierDataset, prepare_proxy_crops
from nice_core.carrier.loss import CarrierLoss
from nice_core.carrier.plateau import PlateauMonitor, probe_items
from nice_core.carrier.unet import CarrierUNet
from nice_core.errors import InputError
from nice_core.io.threads import deterministic_torch
from nice_core.prior3d.losses import Window

__all__ = [
    "SCHEDULES",
    "CheckpointMismatchError",
    "FitConfig",
    "FitPlan",
    "fit_carrier",
    "one_cycle_lr",
    "plan_fit",
    "resolve_device",
]



class CheckpointMismatchError(InputError):
    """A checkpoint exists for another config, store or proxy (resume refused)."""


@dataclass(frozen=True)
class FitResult:
    """What a fit gives back: the model and how it was made.

    Attributes:
        model: the fitted :class:`CarrierUNet`, on the CPU, in eval mode.
        epochs, steps: the completed epochs and optimizer steps.
        seed: the seed the fit ran with.
        train_seconds: training time summed over epochs (without data preparation).
        device: where it was trained, e.g. ``"cpu"`` or ``"cuda:0"``.
        history: one record per completed epoch (loss terms, learning rate, seconds).
        weights: the checkpoint's ``carrier.safetensors`` (``None`` when fitted without checkpoints).
    """

    model: CarrierUNet
    epochs: int
    steps: int
    seed: int
    train_seconds: float
    device: str
    history: tuple[dict, ...]
    weights: Path | None

    def summary(self) -> str:
        return f"{self.epochs} epochs, {self.steps} steps, {self.train_seconds:.0f} s on {self.device}"


def _result(model: CarrierUNet, state: dict, config: FitConfig, checkpoint_dir: str | Path | None) -> FitResult:
    return FitResult(model=model.cpu().eval(), epochs=int(state["epoch"]), steps=int(state["step"]),
                     seed=config.seed, train_seconds=float(state["train_seconds"]),
                     device=str(state.get("device", "cpu")), history=tuple(state["history"]),
                     weights=Path(checkpoint_dir) / WEIGHTS_NAME if checkpoint_dir is not None else None)


#: Offset of the seed that draws a long clip's fixed split into parts (apart from the data order's).
PARTITION_SEED = 7919


@dataclass(frozen=True)
class FitPlan:
    """How a fit of ``frames`` training frames runs: ``passes`` over the frames, each split into ``parts``
    epochs (a long clip's pass is cut into checkpointed parts; a short clip's pass is one epoch).

    Part ``k`` holds every ``parts``-th frame of one fixed random order of the frames (:meth:`members`), so
    each part spans the whole clip; an epoch is one part in a fresh random order.
    """

    frames: int
    passes: int
    batch_size: int = 1
    parts: int = 1

    @property
    def epochs(self) -> int:
        return self.passes * self.parts

    def part_steps(self, part: int) -> int:
        """Optimizer steps of one epoch of part ``part``."""
        return math.ceil(len(range(part, self.frames, self.parts)) / self.batch_size)

    @property
    def steps_per_epoch(self) -> int:
        """Steps of the longest epoch (every epoch's, when ``parts`` is 1)."""
        return self.part_steps(0)

    @property
    def total_steps(self) -> int:
        return self.passes * sum(self.part_steps(k) for k in range(self.parts))

    def partition(self, seed: int) -> list[Tensor]:
        """Every part's frame indices (into the training frames), ``(n,)`` int64 each, from one draw."""
        if self.parts == 1:
            return [torch.arange(self.frames)]
        order = torch.randperm(self.frames, generator=torch.Generator().manual_seed(seed + PARTITION_SEED))
        return [order[part::self.parts] for part in range(self.parts)]

    def note(self) -> str | None:
        """A line for the log when the clip is long enough to be split, else ``None``."""
        if self.parts == 1:
            return None
        return (f"carrier: {self.frames} training frames: one pass ({self.total_steps // self.passes} steps) is "
                f"over the step budget, so the fit makes {self.passes} pass(es) of every frame, each in "
                f"{self.parts} checkpointed parts; its time grows with the clip's length")


def plan_fit(frames: int, config: FitConfig) -> FitPlan:
    """The passes, parts and steps for ``frames`` training frames (see "How long" in the module notes)."""
    if frames < 1:
        raise ValueError("need at least one training frame")
    per_pass = math.ceil(frames / config.batch_size)
    if config.epochs is not None:
        passes = config.epochs
    else:
        passes = min(max(round(config.steps / per_pass), config.min_epochs), config.max_epochs)
    # A pass longer than the budget is split so that no epoch (the unit of checkpoints and roll-backs)
    # runs longer than the budget: a 10-minute clip's pass would otherwise be ~15000 steps with no
    # checkpoint inside it.
    parts = max(1, math.ceil(per_pass / config.steps))
    return FitPlan(frames, passes, config.batch_size, min(parts, frames))


def one_cycle_lr(step: float, total: int, max_lr: float, pct_start: float = 0.3, div_factor: float = 25.0,
                 final_div_factor: float = 1e4) -> float:
    """The learning rate at ``step`` (0-based) of ``total``: torch's ``OneCycleLR`` with cosine annealing.

    It rises from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of the steps, then
    falls to ``max_lr / div_factor / final_div_factor`` at the last step.
    """
    initial = max_lr / div_factor
    final = initial / final_div_factor
    peak = float(pct_start * total) - 1
    end = float(total - 1)

    def cos(start: float, stop: float, pct: float) -> float:
        return stop + (start - stop) / 2.0 * (math.cos(math.pi * pct) + 1)

    if step <= peak:
        return cos(initial, max_lr, step / peak if peak > 0 else 1.0)
    return cos(max_lr, final, (step - peak) / (end - peak) if end > peak else 1.0)


def resolve_device(name: str, log: Callable[[str], None] | None = None) -> torch.device:
    """``"cpu"``, ``"cuda[:N]"`` or ``"auto"`` -> a device; CUDA when unavailable falls back to the CPU with a
    warning line through ``log`` (default: stderr)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        (log or _stderr)(f"warning: {name} requested but CUDA is not available; fitting on the CPU")
        return torch.device("cpu")
    return device


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _optimizer(model: CarrierUNet, config: FitConfig) -> torch.optim.Optimizer:
    """Adam(W) over the network, and over the identity texture (if any) at ``texture_lr_scale`` x the lr.

    The parameters keep :meth:`model.parameters` order (checkpoints index optimizer state by it).
    """
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    texture = getattr(model, "texture", None)
    if texture is None:
        return cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    groups = [{"params": [p for p in model.parameters() if p is not texture], "lr_scale": 1.0},
              {"params": [texture], "lr_scale": config.texture_lr_scale, "weight_decay": 0.0}]
    return cls(groups, lr=config.lr, weight_decay=config.weight_decay)


def _describe_mismatch(saved: dict, wanted: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(saved) | set(wanted)):
        a, b = saved.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _describe_mismatch(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: checkpoint {a!r}, now {b!r}")
    return out


def fit_carrier(store_path: str | Path, proxy: str | Path | None = None, config: FitConfig | None = None,
                checkpoint_dir: str | Path | None = None, *, check=None, prior3d: str | Path | None = None,
                proxy_crops: str | Path | None = None, init: str | Path | None = None, restart: bool = False,
                log: Callable[[str], None] | None = None,
                on_epoch: Callable[[int, dict], None] | None = None) -> FitResult:
    """Fit the carrier of one video.

    Args:
        store_path: the video's store (``face.h5``).
        proxy: the proxy video; its crops are cached first (:func:`prepare_proxy_crops`, skipped when already
            cached for this proxy and store). ``None``: use the crops already cached.
        config: the settings; default :class:`FitConfig()`.
        checkpoint_dir: where ``carrier.safetensors`` and ``state.json`` go after every epoch, and where a
            fit resumes from; ``None``: no checkpoints.
        check: the :class:`~nice_core.proxy.check.ProxyCheck` of ``proxy`` (frame offset, rescale).
        proxy_crops: the proxy-crop cache file (default: ``proxy_crops.h5`` beside the store).
        prior3d: the video's ``prior3d.h5`` (:mod:`nice_core.prior3d.stage`), needed when a 3D loss is on
            (``config.loss.uses_prior3d``).
        init: a warm start: a fitted carrier (``carrier.safetensors``, e.g. of another method of the same
            target) whose weights the fit starts from instead of random ones; its network must be
            ``config.unet``. The optimizer and the schedule start afresh (over ``config``'s budget). Part of
            the checkpoint's identity: a resume with another ``init`` is refused.
        restart: discard a checkpoint that does not match instead of refusing it.
        log: receives one line per epoch and any warning; default: stderr.
        on_epoch: called after each epoch's checkpoint with the epoch number (1-based) and the state dict.

    Returns:
        A :class:`FitResult`: the fitted :class:`CarrierUNet` (on the CPU, in eval mode), its epochs, steps,
        seed, training time and device, and the checkpoint's weights file.

    Raises:
        CheckpointMismatchError: ``checkpoint_dir`` holds a checkpoint of another config, store or proxy
            (and ``restart`` is false).
        InputError: the store or proxy is unusable (see :func:`prepare_proxy_crops`), or ``init`` is not a
            carrier of ``config.unet``'s shape.
    """
    config = config or FitConfig()
    log = log or _stderr
    if config.loss.uses_prior3d and prior3d is None:
        raise InputError("a 3D loss is on (loss_albedo3d/shape3d/detail3d_weight > 0): the fit needs the 3D prior "
                         "(prior3d.h5 from `nice-core prior3d`, --prior3d)")
    if proxy is not None:
        prepare_proxy_crops(store_path, proxy, check, cache=proxy_crops, register=config.register_proxy)
    device = resolve_device(config.device, log)
    with deterministic_torch(config.threads, device.type), CarrierDataset(store_path, config.size, proxy_crops) as data:
        plan = plan_fit(len(data), config)
        identity = {"config": config.identity(), "frames": plan.frames, "proxy_sha256": data.proxy_sha256,
                    "size": data.size, "epochs": plan.epochs}
        prior = _prior3d_loss(prior3d, data, config) if config.loss.uses_prior3d else None
        if prior is not None:
            identity["prior3d_sha256"] = prior.frames.sha256
        torch.manual_seed(config.seed)
        model = CarrierUNet(config.unet)
        if init is not None:
            identity["init_sha256"] = _warm_start(model, init)
        optimizer = _optimizer(model, config)
        generator = torch.Generator().manual_seed(config.seed)
        state = {"format": FORMAT, "identity": identity, "config": config.to_dict(), "epoch": 0, "step": 0,
                 "total_steps": plan.total_steps, "history": [], "train_seconds": 0.0, "complete": False}
        monitor_tensors: dict[str, torch.Tensor] = {}
        if checkpoint_dir is not None:
            state, monitor_tensors = _resume(Path(checkpoint_dir), model, optimizer, generator, state, restart, log)
        if state["complete"]:
            return _result(model, state, config, checkpoint_dir)
        model.to(device)
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        for param_state in optimizer.state.values():
            for key, value in param_state.items():
                if isinstance(value, torch.Tensor) and key != "step":
                    param_state[key] = value.to(device)
        loss_fn = CarrierLoss(config.loss).to(device)
        run = _Run(model, optimizer, generator, data, loss_fn, config, plan, device, prior)
        note = plan.note()
        if note is not None:
            log(note)
        if config.stop == "plateau":
            run.monitor = _plateau_monitor(run)
            run.monitor.load(state.get("plateau"), monitor_tensors)
        model.train()
        good = run.snapshot()
        while state["epoch"] < plan.epochs and not state["complete"]:
            epoch = state["epoch"]
            record, step = run.epoch(state["step"], state.get("lr_scale", 1.0), log, epoch + 1)
            record["epoch"] = epoch + 1
            reason = _divergence(record, state["history"])
            if reason is not None:
                state = _roll_back(run, good, state, record, reason, log)
                continue
            state = {**state, "epoch": epoch + 1, "step": step, "history": [*state["history"], record],
                     "train_seconds": round(state["train_seconds"] + record["seconds"], 3),
                     "complete": epoch + 1 == plan.epochs or run.stopped(step), "device": str(device),
                     "threads": torch.get_num_threads()}
            if run.monitor is not None:
                state["plateau"] = run.monitor.state()
            log(_epoch_line(record, plan))
            good = run.snapshot()
            if checkpoint_dir is not None:
                rng = {"data": generator.get_state(), "torch": torch.get_rng_state()}
                state["rng"] = {name: encode_bytes(value) for name, value in rng.items()}
                write_checkpoint(checkpoint_dir, model, optimizer, rng, state,
                                 monitor=run.monitor.tensors() if run.monitor is not None else None)
            if on_epoch is not None:
                on_epoch(epoch + 1, state)
    if prior is not None:
        prior.frames.close()
    return _result(model, state, config, checkpoint_dir)


def _warm_start(model: CarrierUNet, init: str | Path) -> str:
    """Load the fitted carrier ``init`` into ``model``; the SHA-256 of its file (the checkpoint's identity)."""
    from nice_core.io.digest import file_sha256

    ckpt = read_checkpoint(init)
    if ckpt.unet != model.config:
        raise InputError(f"warm start {init}: its network {ckpt.unet} is not this fit's {model.config}")
    model.load_state_dict(ckpt.model)
    path = Path(init)
    return file_sha256(path / WEIGHTS_NAME if path.is_dir() else path)


def _plateau_monitor(run: _Run) -> PlateauMonitor:
    """The plateau stop rule of ``run``: its probe frames on the device, its checks after the learning rate's
    peak and the uncertainty warm-up, its tail a ``plateau_tail`` share of the budget."""
    config, plan, data = run.config, run.plan, run.data
    items = probe_items(len(data))
    xt, _, mask = data.batch(items)
    grid, covered = data.surface_batch(items) if run.model.uses_surface else (None, None)
    probe = tuple(None if t is None else t.to(run.device) for t in (xt, grid, covered, mask))
    peak = math.ceil(config.pct_start * plan.total_steps) if config.schedule == "onecycle" else 0
    return PlateauMonitor(probe, config.plateau_every, config.plateau_change, config.plateau_patience,
                          start=max(peak, run.warmup_steps), tail=round(config.plateau_tail * plan.total_steps),
                          total=plan.total_steps)


def _prior3d_loss(path: str | Path, data: CarrierDataset, config: FitConfig):
    """The 3D losses of this fit, reading the 3D prior."""
    from nice_core.prior3d.losses import Prior3DFrames, Prior3DLoss

    frames = Prior3DFrames(path, data.crop_size, config.loss.detail3d_source)
    loss = config.loss
    return Prior3DLoss(frames, loss.albedo3d_weight, loss.shape3d_weight, loss.detail3d_weight)


#: An epoch whose mean L1 is this many times the best earlier epoch's, or whose mean log-variance is above
#: :data:`DIVERGED_S`, has diverged: it is rolled back and redone at a lower learning rate.
DIVERGED_L1 = 1.5
DIVERGED_S = 8.0
#: The learning rate is multiplied by this at each rollback; after :data:`MAX_ROLLBACKS` the fit stops.
ROLLBACK_LR = 0.5
MAX_ROLLBACKS = 4
#: Within an epoch longer than this (seconds), a progress line every this often.
PROGRESS_SECONDS = 60.0


class _Run:
    """The moving parts of one fit: one epoch at a time, and snapshots to roll back to."""

    def __init__(self, model: CarrierUNet, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                 data: CarrierDataset, loss_fn: CarrierLoss, config: FitConfig, plan: FitPlan,
                 device: torch.device, prior=None) -> None:
        self.model, self.optimizer, self.generator, self.data = model, optimizer, generator, data
        self.loss_fn, self.config, self.plan, self.device = loss_fn, config, plan, device
        self.prior = prior  # the 3D losses (Prior3DLoss) or None
        self.warmup_steps = round(config.warmup * plan.total_steps) if config.loss.uncertainty else 0
        self.monitor: PlateauMonitor | None = None  # the plateau stop rule, when the config asks for it
        self.members = plan.partition(config.seed)

    def stopped(self, step: int) -> bool:
        """Whether the plateau rule ends the fit at ``step``."""
        stop_at = self.monitor.stop_at if self.monitor is not None else None
        return stop_at is not None and step >= stop_at

    def snapshot(self) -> dict:
        """Copies of the weights, optimizer and data-order states (CPU memory, a few MB)."""
        import copy

        monitor = None
        if self.monitor is not None:
            monitor = (copy.deepcopy(self.monitor.state()), {k: v.clone() for k, v in self.monitor.tensors().items()})
        return {"model": copy.deepcopy(self.model.state_dict()),
                "optimizer": copy.deepcopy(self.optimizer.state_dict()), "data": self.generator.get_state(),
                "monitor": monitor}

    def restore(self, snapshot: dict) -> None:
        self.model.load_state_dict(snapshot["model"])
        self.optimizer.load_state_dict(snapshot["optimizer"])
        self.generator.set_state(snapshot["data"])
        if self.monitor is not None and snapshot.get("monitor") is not None:
            self.monitor.load(*snapshot["monitor"])

    def _lr(self, step: int) -> float:
        c = self.config
        if c.schedule == "constant":
            return c.lr
        position = self.monitor.position(step) if self.monitor is not None else step
        return one_cycle_lr(position, self.plan.total_steps, c.lr, c.pct_start, c.div_factor, c.final_div_factor)

    def _batch(self, items: list[int]) -> tuple[tuple[torch.Tensor, ...], Window, torch.Tensor]:
        """One step's ``(xt, xref, mask, grid, covered)`` on the device (grid and covered ``None`` without
        a texture), cut to a random ``patch`` window when training on windows; the window, and the whole
        target crops on the CPU (the 3D shape loss moves them when it runs)."""
        config, data = self.config, self.data
        xt, xref, mask = data.batch(items)
        full = xt
        grid, covered = data.surface_batch(items) if self.model.uses_surface else (None, None)
        window = Window(0, 0, data.size, data.size)
        if config.patch is not None and config.patch < data.size:
            y, x = torch.randint(0, data.size - config.patch + 1, (2,), generator=self.generator).tolist()
            window = Window(x, y, config.patch, data.size)
            rows, cols = slice(y, y + config.patch), slice(x, x + config.patch)
            xt, xref, mask = (t[..., rows, cols] for t in (xt, xref, mask))
            if grid is not None:
                grid, covered = grid[:, rows, cols], covered[..., rows, cols]
        tensors = tuple(None if t is None else t.to(self.device) for t in (xt, xref, mask, grid, covered))
        if config.channels_last:
            tensors = (tensors[0].contiguous(memory_format=torch.channels_last), *tensors[1:])
        return tensors, window, full

    def forward(self, xt: torch.Tensor, grid: torch.Tensor | None, covered: torch.Tensor | None):
        """The network's ``(xo, s)`` in float32, under bfloat16 autocast when ``precision`` says so."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
            xo, s = self.model(xt, grid, covered)
        return xo.float(), s.float()

    def epoch(self, step: int, lr_scale: float, log: Callable[[str], None] | None = None,
              number: int = 0) -> tuple[dict, int]:
        """One pass over the frames from optimizer step ``step``; returns its record and the next step.

        A long epoch (a long clip) says how far it is every :data:`PROGRESS_SECONDS` through ``log``. With
        the plateau rule, the probe is checked every ``plateau_every`` steps and the epoch ends early at the
        rule's last step.
        """
        config, plan, model = self.config, self.plan, self.model
        first_step = step
        start = last_note = time.perf_counter()
        totals: dict[str, float] = {}
        peak_norm, lr = 0.0, self._lr(step)
        if plan.parts == 1:  # the plain pass's draw, unchanged for every clip that fits in the budget
            order = torch.randperm(plan.frames, generator=self.generator).tolist()
        else:
            members = self.members[max(number - 1, 0) % plan.parts]
            order = members[torch.randperm(len(members), generator=self.generator)].tolist()
        for first in range(0, len(order), config.batch_size):
            lr = self._lr(step) * lr_scale
            for group in self.optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            items = order[first:first + config.batch_size]
            (xt, xref, mask, grid, covered), window, full = self._batch(items)
            xo, s = self.forward(xt, grid, covered)
            loss, logs = self.loss_fn(xo, s, xref, mask,
                                      uncertainty=config.loss.uncertainty and step >= self.warmup_steps)
            if self.prior is not None:
                extra, extra_logs = self.prior(xo, [int(self.data.frames[k]) for k in items], window, full)
                loss = loss + extra
                logs.update(extra_logs)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf))
            step += 1
            logs["grad_norm"] = norm
            peak_norm = max(peak_norm, norm)
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value
            if log is not None and time.perf_counter() - last_note > PROGRESS_SECONDS:
                done = first // config.batch_size + 1
                log(f"carrier: epoch {number}/{plan.epochs}: step {done}/{math.ceil(len(order) / config.batch_size)}, "
                    f"L1 so far {totals.get('l1', 0.0) / done:.4f}")
                last_note = time.perf_counter()
            if not (math.isfinite(logs["loss"]) and math.isfinite(norm)):
                break  # do not step on it: the epoch is rolled back
            self.optimizer.step()
            if self.monitor is not None and self.monitor.due(step):
                line = self.monitor.check(model, step)
                if line is not None and log is not None:
                    log(line)
            if self.stopped(step):
                break
        seconds = time.perf_counter() - start
        steps_done = max(1, step - first_step)
        record = {key: round(value / steps_done, 6) for key, value in totals.items()}
        record.update(epoch=0, steps=steps_done, seconds=round(seconds, 3), lr=lr, grad_norm_max=round(peak_norm, 6))
        return record, step


def _divergence(record: dict, history: list[dict]) -> str | None:
    """Why an epoch's record says the fit diverged (see :data:`DIVERGED_L1`), or ``None``."""
    if not all(math.isfinite(record[k]) for k in ("loss", "grad_norm")):
        return "a non-finite loss or gradient"
    best = min((h["l1"] for h in history if "l1" in h), default=None)
    if best is not None and "l1" in record and record["l1"] > DIVERGED_L1 * best:
        return f"L1 {record['l1']:.4f} against the best epoch's {best:.4f}"
    if record.get("s", 0.0) > DIVERGED_S:
        return f"mean log-variance {record['s']:.1f} (the uncertainty term ran away)"
    return None


def _roll_back(run: _Run, good: dict, state: dict, record: dict, reason: str, log: Callable[[str], None]) -> dict:
    """Restore the last good epoch and lower the learning rate; the state to continue from."""
    rollbacks = state.get("rollbacks", 0) + 1
    if rollbacks > MAX_ROLLBACKS:
        raise FloatingPointError(f"carrier fit diverged {rollbacks} times (last: {reason}); "
                                 "try a lower lr (--lr) or a smaller grad_clip")
    run.restore(good)
    scale = state.get("lr_scale", 1.0) * ROLLBACK_LR
    log(f"carrier: warning: epoch {state['epoch'] + 1} diverged ({reason}); rolled back to epoch "
        f"{state['epoch']} and continuing at {scale:g} x the learning rate")
    return {**state, "lr_scale": scale, "rollbacks": rollbacks}


def _epoch_line(record: dict, plan: FitPlan) -> str:
    parts = ", ".join(f"{k} {record[k]:.4f}" for k in ("l1", "perceptual", "gradient", "s", "albedo3d", "shape3d",
                                                       "detail3d") if k in record)
    parts += f", |grad| {record['grad_norm']:.3g} (max {record['grad_norm_max']:.3g})"
    return (f"carrier: epoch {record['epoch']}/{plan.epochs}, loss {record['loss']:.4f} ({parts}), "
            f"{record['seconds']:.1f} s, {1000 * record['seconds'] / record['steps']:.0f} ms/step")


def _resume(directory: Path, model: CarrierUNet, optimizer: torch.optim.Optimizer, generator: torch.Generator,
            fresh: dict, restart: bool, log: Callable[[str], None]) -> tuple[dict, dict[str, torch.Tensor]]:
    """Load the checkpoint in ``directory`` into the objects; its state and plateau-rule tensors, or
    ``fresh`` and none."""
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        return fresh, {}
    ckpt = read_checkpoint(weights)
    saved = ckpt.state
    if saved.get("identity") != fresh["identity"]:
        diffs = _describe_mismatch(saved.get("identity", {}), fresh["identity"])
        if not restart:
            raise CheckpointMismatchError(
                f"{directory} holds a carrier checkpoint of another fit ({'; '.join(diffs[:4])}"
                f"{' ...' if len(diffs) > 4 else ''}); remove it or restart the fit (restart=True / --restart)")
        log(f"carrier: discarding the checkpoint in {directory} ({'; '.join(diffs[:2])})")
        for name in (WEIGHTS_NAME, STATE_NAME):
            (directory / name).unlink(missing_ok=True)
        return fresh, {}
    model.load_state_dict(ckpt.model)
    params = list(model.parameters())
    for index, tensors in ckpt.optim.items():
        optimizer.state[params[index]] = dict(tensors)
    if "data" in ckpt.rng:
        generator.set_state(ckpt.rng["data"])
    if "torch" in ckpt.rng:
        torch.set_rng_state(ckpt.rng["torch"])
    elif "rng" in saved:
        torch.set_rng_state(decode_bytes(saved["rng"]["torch"]))
    if not saved.get("complete"):
        log(f"carrier: resuming from epoch {saved['epoch']}/{fresh['identity']['epochs']} ({directory})")
    return saved, ckpt.monitor

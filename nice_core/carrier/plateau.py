"""The fit's plateau stop rule (``FitConfig.stop = "plateau"``): end the fit once its output stops changing.

Every ``plateau_every`` optimizer steps, once the learning rate has peaked and the uncertainty term is on,
the carrier is run on a fixed probe of :data:`PROBE_FRAMES` frames spread over the video (whole crops, no
gradient) and its output is compared with the previous check's: :func:`output_change` is the mean absolute
change inside the loss mask, in 8-bit levels, of the outputs average-pooled by :data:`POOL` (the plateau is
about the picture, not about pixel noise). The probe frames are training frames: the carrier must carry every
frame, so none can be held out; the probe only watches.

When the change stays below ``plateau_change`` for ``plateau_patience`` checks in a row, the fit has found
its plateau at step ``t``: the rest of the learning-rate schedule (OneCycle's decay from step ``t`` to its
end) is run in ``plateau_tail x budget`` steps (:func:`schedule_position`), so the fit still ends at the
schedule's final, small learning rate, and then stops. The step budget stays the cap: a fit that never
reaches its plateau runs its whole budget, exactly as with ``stop = "budget"``.

The rule's state (the previous check's output, the count of low checks, the trigger) is saved with every
checkpoint (:meth:`PlateauMonitor.tensors`, :meth:`PlateauMonitor.state`), so a resumed fit stops at the
same step with the same weights as one that was never interrupted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["POOL", "PROBE_FRAMES", "PlateauMonitor", "output_change", "probe_items", "schedule_position"]

#: Frames the carrier is run on at each check, and the pooling of their outputs before comparing.
PROBE_FRAMES = 4
POOL = 4


def probe_items(frames: int, count: int = PROBE_FRAMES) -> list[int]:
    """``count`` (or fewer, for short clips) dataset indices spread evenly over ``frames`` training frames."""
    if frames < 1:
        raise ValueError(f"need at least one frame, got {frames}")
    count = min(count, frames)
    return sorted({round((k + 0.5) * frames / count - 0.5) for k in range(count)})


def output_change(previous: Tensor, current: Tensor, weight: Tensor) -> float:
    """Mean absolute change between two outputs, weighted by ``weight``, in 8-bit levels.

    Args:
        previous, current: ``(K, C, H, W)`` outputs in ``[0, 1]``.
        weight: ``(K, 1, H, W)`` in ``[0, 1]`` (the pooled loss mask); all zero gives ``0``.

    Returns:
        ``255 * sum(weight * mean_c |current - previous|) / sum(weight)``.
    """
    mismatch = weight.shape[0] != current.shape[0] or weight.shape[-2:] != current.shape[-2:]
    if previous.shape != current.shape or mismatch:
        raise ValueError(f"shapes differ: previous {tuple(previous.shape)}, current {tuple(current.shape)}, "
                         f"weight {tuple(weight.shape)}")
    diff = (current - previous).abs().mean(1, keepdim=True)
    total = weight.sum()
    if float(total) <= 0:
        return 0.0
    return float(255.0 * (diff * weight).sum() / total)


def schedule_position(step: int, trigger: int | None, tail: int, total: int) -> float:
    """Where optimizer step ``step`` falls on the learning-rate schedule of ``total`` steps.

    Before the plateau (``trigger`` is ``None`` or ``step <= trigger``) that is ``step`` itself; after it, the
    schedule's remainder from ``trigger`` to ``total - 1`` is spread over ``tail`` steps, so step
    ``trigger + tail`` sits at the schedule's last position.
    """
    if trigger is None or step <= trigger:
        return float(step)
    return trigger + (step - trigger) * (total - 1 - trigger) / tail


class PlateauMonitor:
    """Watches the carrier's output on the probe frames and decides when the fit ends (module notes).

    Args:
        probe: the model's inputs for the probe frames, ``(xt, grid, covered)`` on the fit's device
            (``grid``/``covered`` ``None`` without a surface texture), and ``mask`` ``(K, 1, H, W)``.
        every, threshold, patience: ``plateau_every``, ``plateau_change``, ``plateau_patience``.
        start: the first step a check may happen (after the peak and the warm-up).
        tail: the steps the schedule's rest takes once the plateau is found.
        total: the budget (the schedule's length).
    """

    def __init__(self, probe: tuple[Tensor, Tensor | None, Tensor | None, Tensor], every: int, threshold: float,
                 patience: int, start: int, tail: int, total: int) -> None:
        self.xt, self.grid, self.covered, mask = probe
        self.weight = F.avg_pool2d(mask, POOL) if mask.shape[-1] >= POOL else mask
        self.every, self.threshold, self.patience = every, threshold, patience
        self.start, self.tail, self.total = start, max(1, tail), total
        self.previous: Tensor | None = None
        self.low = 0
        self.checks: list[list[float]] = []
        self.trigger: int | None = None

    @property
    def stop_at(self) -> int | None:
        """The step the fit ends at, once the plateau is found (never past the budget)."""
        return None if self.trigger is None else min(self.total, self.trigger + self.tail)

    def position(self, step: int) -> float:
        return schedule_position(step, self.trigger, self.tail, self.total)

    def due(self, step: int) -> bool:
        return self.trigger is None and step >= self.start and step % self.every == 0

    @torch.no_grad()
    def _probe(self, model: torch.nn.Module) -> Tensor:
        out, _ = model(self.xt, self.grid, self.covered)
        out = out.float()
        return F.avg_pool2d(out, POOL) if out.shape[-1] >= POOL else out

    def check(self, model: torch.nn.Module, step: int) -> str | None:
        """Run the probe after step ``step``; a log line when this check found the plateau, else ``None``."""
        current = self._probe(model)
        previous, self.previous = self.previous, current
        if previous is None:
            return None
        change = output_change(previous, current, self.weight)
        self.checks.append([step, round(change, 4)])
        self.low = self.low + 1 if change < self.threshold else 0
        if self.low < self.patience or step + self.tail >= self.total:
            return None
        self.trigger = step
        return (f"carrier: plateau at step {step} (output change {change:.3f} < {self.threshold:g} levels per "
                f"{self.every} steps, {self.patience} checks in a row): the schedule's rest in {self.tail} steps, "
                f"ending at step {self.stop_at} of {self.total}")

    def state(self) -> dict:
        """The JSON part of the monitor's state (checkpoints, rollback snapshots)."""
        return {"low": self.low, "checks": [list(c) for c in self.checks], "trigger": self.trigger}

    def tensors(self) -> dict[str, Tensor]:
        return {} if self.previous is None else {"previous": self.previous.detach().cpu()}

    def load(self, state: dict | None, tensors: dict[str, Tensor]) -> None:
        state = state or {}
        self.low = int(state.get("low", 0))
        self.checks = [list(c) for c in state.get("checks", [])]
        self.trigger = state.get("trigger")
        previous = tensors.get("previous")
        self.previous = None if previous is None else previous.to(self.xt.device)

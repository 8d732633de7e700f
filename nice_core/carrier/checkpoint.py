"""Carrier checkpoints: one safetensors file with the weights and the optimizer state, and ``state.json``.

``checkpoint_dir/carrier.safetensors`` holds tensors only (no pickle), under three prefixes:

* ``model.<name>``: the UNet's state dict (what :func:`load_carrier` reads);
* ``optim.<k>.<name>``: Adam/AdamW's per-parameter state for the ``k``-th parameter of
  ``model.parameters()`` (``step``, ``exp_avg``, ``exp_avg_sq``);
* ``rng.<name>``: random-generator states as ``uint8`` tensors (``data``: the data-order generator,
  ``torch``: the global CPU generator);
* ``monitor.<name>``: the plateau stop rule's tensors (:class:`~nice_core.carrier.plateau.PlateauMonitor`),
  when the fit uses it.

Its string metadata holds ``format`` (:data:`FORMAT`), ``unet`` (the :class:`UNetConfig` as JSON) and
``state`` (the full resume state as JSON, the same as ``state.json``). So the file is self-contained: a fit
killed between the two renames resumes from it. ``state.json`` is the readable copy, written after the
weights (both through a temporary file and a rename, so each is always complete).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from nice_core.carrier.config import UNetConfig
from nice_core.carrier.unet import CarrierUNet
from nice_core.errors import InputError
from nice_core.io.atomic import temporary_sibling

__all__ = [
    "FORMAT",
    "STATE_NAME",
    "WEIGHTS_NAME",
    "Checkpoint",
    "decode_bytes",
    "encode_bytes",
    "load_carrier",
    "read_checkpoint",
    "write_checkpoint",
]

FORMAT = "nice-core carrier 1"
WEIGHTS_NAME = "carrier.safetensors"
STATE_NAME = "state.json"


def encode_bytes(t: Tensor) -> str:
    """A ``uint8`` tensor (a generator state) as base64 text."""
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def decode_bytes(text: str) -> Tensor:
    """Inverse of :func:`encode_bytes`."""
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


@dataclass
class Checkpoint:
    """What a checkpoint holds, as loaded by :func:`read_checkpoint`."""

    unet: UNetConfig
    model: dict[str, Tensor]
    optim: dict[int, dict[str, Tensor]] = field(default_factory=dict)
    rng: dict[str, Tensor] = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    monitor: dict[str, Tensor] = field(default_factory=dict)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_checkpoint(checkpoint_dir: str | Path, model: CarrierUNet, optimizer: torch.optim.Optimizer | None,
                     rng: dict[str, Tensor], state: dict, monitor: dict[str, Tensor] | None = None) -> None:
    """Write ``carrier.safetensors`` then ``state.json``, each atomically (see the module notes)."""
    from safetensors.torch import save

    directory = Path(checkpoint_dir)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, Tensor] = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if optimizer is not None:
        for k, param in enumerate(model.parameters()):
            for name, value in optimizer.state.get(param, {}).items():
                if isinstance(value, Tensor):
                    tensors[f"optim.{k}.{name}"] = value.detach().cpu().contiguous()
    for name, value in rng.items():
        tensors[f"rng.{name}"] = value.cpu().contiguous()
    for name, value in (monitor or {}).items():
        tensors[f"monitor.{name}"] = value.detach().cpu().contiguous()
    metadata = {"format": FORMAT, "unet": json.dumps(model.config.to_dict()), "state": json.dumps(state)}
    _atomic_write_bytes(directory / WEIGHTS_NAME, save(tensors, metadata=metadata))
    _atomic_write_bytes(directory / STATE_NAME, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a ``carrier.safetensors`` file (or the one in a checkpoint folder).

    Raises:
        InputError: missing, unreadable, or not a carrier checkpoint.
    """
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not path.is_file():
        raise InputError(f"carrier checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise InputError(f"not a readable safetensors file: {path} ({err})") from None
    if metadata.get("format") != FORMAT:
        raise InputError(f"{path} is not a nice-core carrier checkpoint (format {metadata.get('format')!r})")
    unet = json.loads(metadata["unet"])
    unet.setdefault("texture_channels", 0)  # carriers written before the identity texture existed have none
    out = Checkpoint(UNetConfig(**unet), {}, state=json.loads(metadata.get("state", "{}")))
    for key, value in tensors.items():
        kind, _, rest = key.partition(".")
        if kind == "model":
            out.model[rest] = value
        elif kind == "optim":
            index, _, name = rest.partition(".")
            out.optim.setdefault(int(index), {})[name] = value
        elif kind == "rng":
            out.rng[rest] = value
        elif kind == "monitor":
            out.monitor[rest] = value
    return out


def load_carrier(path: str | Path | Checkpoint, device: str | torch.device = "cpu") -> CarrierUNet:
    """The fitted carrier from a checkpoint (file or folder, or one already read), in eval mode on ``device``."""
    ckpt = path if isinstance(path, Checkpoint) else read_checkpoint(path)
    model = CarrierUNet(ckpt.unet)
    model.load_state_dict(ckpt.model)
    return model.to(device).eval()

"""The study's video classifier: an I3D-style inflated 3D ResNet (Carreira & Zisserman 2017) in plain torch.

A 2D ResNet whose convolutions gain a temporal extent: the stem is ``stem_temporal_kernel x 7 x 7``, and
the first convolution of every residual block is ``temporal_kernel`` frames deep (the 1x1 of a bottleneck,
as SlowFast's I3D-R50 does, or the first 3x3 of a basic block). Time is never strided, so a 16-frame clip
keeps 16 feature frames until the global average pool; the head is one logit (fake).

``temporal_kernel = stem_temporal_kernel = 1`` makes the same network frame-wise (each frame scored on its
own, the features averaged over time): the control that shows the detector uses time.

Module names follow torchvision's 2D ResNet (``conv1``, ``bn1``, ``layer1.0.conv1``, ``downsample.0``, ...)
so that a user's 2D ResNet state dict inflates by name (:func:`inflate_2d_state_dict`). Sizes:
:meth:`I3DConfig.r50` is I3D-R50 (about 27 M parameters with a 1-logit head); :meth:`I3DConfig.small` is a
width-8 ResNet-10 for CPU runs and tests (about 0.1 M).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nice_core.errors import InputError

__all__ = ["I3DConfig", "I3DResNet", "inflate_2d_state_dict"]

#: ImageNet statistics: the inflated 2D weights expect inputs normalised by them.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class I3DConfig:
    """Shape of :class:`I3DResNet`.

    Args:
        width: channels after the stem; stage ``i`` has ``width * 2**i`` (times 4 at a bottleneck's output).
        blocks: residual blocks per stage (ResNet-50: ``(3, 4, 6, 3)``).
        bottleneck: bottleneck blocks (ResNet-50 and up) or basic blocks (ResNet-10/18).
        temporal_kernel: frames seen by the first convolution of each block; 1 makes the blocks frame-wise.
        stem_temporal_kernel: frames seen by the stem's convolution.
        dropout: before the head, in ``[0, 1)``.
    """

    width: int = 64
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    bottleneck: bool = True
    temporal_kernel: int = 3
    stem_temporal_kernel: int = 5
    dropout: float = 0.5
    in_channels: int = field(default=3, init=False)

    def __post_init__(self) -> None:
        if self.width < 1 or not self.blocks or min(self.blocks) < 1:
            raise ValueError(f"need width >= 1 and at least one block per stage, got {self.width}, {self.blocks}")
        for name in ("temporal_kernel", "stem_temporal_kernel"):
            value = getattr(self, name)
            if value < 1 or value % 2 == 0:
                raise ValueError(f"{name} must be odd and >= 1 (time is padded symmetrically), got {value}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def r50(cls, **changes: object) -> I3DConfig:
        """I3D-R50, the size of DeepfakeBench's I3D (for a GPU)."""
        return cls(**{"width": 64, "blocks": (3, 4, 6, 3), "bottleneck": True, **changes})

    @classmethod
    def small(cls, **changes: object) -> I3DConfig:
        """A width-8 ResNet-10 with basic blocks, for CPU runs and tests."""
        return cls(**{"width": 8, "blocks": (1, 1, 1, 1), "bottleneck": False, "temporal_kernel": 3,
                      "stem_temporal_kernel": 3, "dropout": 0.0, **changes})

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if k != "in_channels"}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> I3DConfig:
        data = dict(data)
        if "blocks" in data:
            data["blocks"] = tuple(data["blocks"])
        return cls(**data)


class _Conv(nn.Conv3d):
    """A ``kt x k x k`` convolution, zero-padded in space like the 2D ResNet, edge-padded in time: zeros
    before the first frame would look like a cut to a network that compares frames."""

    def forward(self, x: Tensor) -> Tensor:
        kt = self.kernel_size[0]
        if kt > 1:
            x = F.pad(x, (0, 0, 0, 0, kt // 2, kt // 2), mode="replicate")
        return super().forward(x)


def _conv(cin: int, cout: int, kt: int, k: int, stride: int = 1) -> nn.Conv3d:
    return _Conv(cin, cout, (kt, k, k), stride=(1, stride, stride), padding=(0, k // 2, k // 2), bias=False)


class _Basic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int, kt: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, width, kt, 3, stride), nn.BatchNorm3d(width)
        self.conv2, self.bn2 = _conv(width, width, 1, 3), nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, width, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, kt: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, width, kt, 1), nn.BatchNorm3d(width)
        self.conv2, self.bn2 = _conv(width, width, 1, 3, stride), nn.BatchNorm3d(width)
        self.conv3, self.bn3 = _conv(width, width * 4, 1, 1), nn.BatchNorm3d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, width * 4, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(_conv(cin, cout, 1, 1, stride), nn.BatchNorm3d(cout))


class I3DResNet(nn.Module):
    """Clips ``(B, 3, T, H, W)`` in ``[0, 1]`` (RGB) -> fake logits ``(B,)``; ``T`` and ``H, W`` are free
    (``H, W`` of at least ``2 ** (len(blocks) + 1)``)."""

    def __init__(self, config: I3DConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or I3DConfig()
        block = _Bottleneck if config.bottleneck else _Basic
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1, 1), persistent=False)
        self.conv1 = _conv(3, config.width, config.stem_temporal_kernel, 7, 2)
        self.bn1 = nn.BatchNorm3d(config.width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        cin = config.width
        for i, count in enumerate(config.blocks):
            width = config.width * 2**i
            layers = []
            for j in range(count):
                layers.append(block(cin, width, 2 if (i > 0 and j == 0) else 1, config.temporal_kernel))
                cin = width * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(cin, 1)

    def features(self, clips: Tensor) -> Tensor:
        """The pooled features ``(B, C)`` of clips ``(B, 3, T, H, W)`` in ``[0, 1]``."""
        if clips.ndim != 5 or clips.shape[1] != 3:
            raise ValueError(f"clips must be (B, 3, T, H, W), got {tuple(clips.shape)}")
        x = (clips - self.mean) / self.std
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(len(self.config.blocks)):
            x = getattr(self, f"layer{i + 1}")(x)
        return x.mean(dim=(2, 3, 4))

    def forward(self, clips: Tensor) -> Tensor:
        return self.fc(self.dropout(self.features(clips))).squeeze(1)


def inflate_2d_state_dict(model: I3DResNet, state_dict: Mapping[str, Tensor]) -> list[str]:
    """Load a 2D ResNet's weights (torchvision names) into ``model`` by inflation; returns the keys of
    ``model`` that were left as initialised (the head, and whatever the 2D dict lacks).

    A 2D kernel ``(O, I, k, k)`` becomes ``(O, I, kt, k, k)``: repeated ``kt`` times and divided by ``kt``,
    so a clip of identical frames gives the 2D network's activations. Batch-norm statistics are copied.

    Raises:
        InputError: a weight of the 2D dict has a shape that does not inflate to the model's (names the key).
    """
    own = model.state_dict()
    loaded: dict[str, Tensor] = {}
    for key, target in own.items():
        if key.startswith("fc.") or key not in state_dict:
            continue
        source = torch.as_tensor(state_dict[key])
        if target.ndim == 5 and source.ndim == 4:
            kt = target.shape[2]
            source = source.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
        if source.shape != target.shape:
            raise InputError(f"2D weights: {key} has shape {tuple(state_dict[key].shape)}, which does not inflate "
                             f"to the model's {tuple(target.shape)} (another ResNet depth or width?)")
        loaded[key] = source.to(target.dtype)
    if not loaded:
        raise InputError("2D weights: no key matches the model's (expected torchvision ResNet names such as "
                         "conv1.weight, layer1.0.conv1.weight)")
    model.load_state_dict(loaded, strict=False)
    return [key for key in own if key not in loaded]

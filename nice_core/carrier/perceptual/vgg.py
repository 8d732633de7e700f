"""VGG-19 perceptual features without torchvision, loading torchvision-format state dicts.

No weights are shipped or downloaded here: :func:`load_vgg19` reads a state dict the user supplies (for
instance one saved from ``torchvision.models.vgg19(weights=...).state_dict()`` elsewhere; mind the
license of whatever weights are used).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "VGG19_LAYERS", "VGG19Features", "load_vgg19"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's configuration "E" (vgg19): channel counts, "M" = 2x2 max pool.
_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                         512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]

#: Tap name -> index in ``features`` of the ReLU after that convolution (torchvision numbering).
VGG19_LAYERS: dict[str, int] = {"conv1_2": 3, "conv2_2": 8, "conv3_2": 13, "conv4_2": 22, "conv5_2": 31}


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_c = 3
    for v in _CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(v, int)
            layers += [nn.Conv2d(in_c, v, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_c = v
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """VGG-19's convolutional part with torchvision's ``features`` layout (37 modules, same indices).

    Args:
        layers: which ReLU outputs to return, in order; names from :data:`VGG19_LAYERS`.

    Its state dict has torchvision's keys (``features.0.weight`` ... ``features.34.bias``); the ImageNet
    mean/std are non-persistent buffers, so they are not part of it. Layers past the deepest tap are kept
    (so full torchvision state dicts load) but not run.
    """

    def __init__(self, layers: Sequence[str] = tuple(VGG19_LAYERS)) -> None:
        super().__init__()
        unknown = [n for n in layers if n not in VGG19_LAYERS]
        if unknown or not layers:
            raise ValueError(f"layers must be a non-empty subset of {list(VGG19_LAYERS)}, got {list(layers)}")
        self.layers = list(layers)
        self.features = _features()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self._taps = {VGG19_LAYERS[n]: n for n in self.layers}

    def forward(self, x: Tensor) -> list[Tensor]:
        """Compute the activations.

        Args:
            x: RGB images ``(B, 3, H, W)`` in ``[0, 1]``; they are normalised with the ImageNet mean and std
                inside.

        Returns:
            The ReLU outputs of the requested layers, in the order of ``layers``: ``conv1_2`` ``(B, 64, H, W)``,
            ``conv2_2`` ``(B, 128, H/2, W/2)``, ``conv3_2`` ``(B, 256, H/4, W/4)``, ``conv4_2``
            ``(B, 512, H/8, W/8)``, ``conv5_2`` ``(B, 512, H/16, W/16)`` (pooling floors odd sizes).

        Raises:
            ValueError: the input is not ``(B, 3, H, W)``.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) RGB images, got shape {tuple(x.shape)}")
        h = (x - self.mean) / self.std
        found: dict[str, Tensor] = {}
        last = max(self._taps)
        for i, module in enumerate(self.features):
            h = module(h)
            if i in self._taps:
                found[self._taps[i]] = h
            if i == last:
                break
        return [found[n] for n in self.layers]


def _normalise_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Map torchvision vgg19 keys (``features.N.x``, bare ``N.x``, ``module.`` prefixes) to ``features.N.x``."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        k = key.removeprefix("module.")
        if k.startswith("classifier."):
            continue
        if not k.startswith("features."):
            k = f"features.{k}"
        out[k] = value
    return out


def load_vgg19(path: str | Path, layers: Sequence[str] = tuple(VGG19_LAYERS)) -> VGG19Features:
    """Build :class:`VGG19Features` from a torchvision-format vgg19 state dict saved with ``torch.save``.

    Accepted: the whole model's state dict (``features.*`` and ``classifier.*``, the latter ignored), the
    ``features`` submodule's (keys ``0.weight`` ...), either under a ``state_dict`` key, with or without a
    DataParallel ``module.`` prefix. Loading uses ``weights_only=True`` (tensors only, no pickled code).

    Args:
        path: the ``.pth`` file.
        layers: the taps to return (see :class:`VGG19Features`).

    Returns:
        The module in eval mode with ``requires_grad=False`` on every parameter.

    Raises:
        ValueError: the file holds no mapping of tensors, a key is missing, unexpected or has the wrong shape
            (the message names the key and both shapes).
    """
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict (a mapping of names to tensors)")
    given = _normalise_keys(state)
    net = VGG19Features(layers)
    expected = net.state_dict()
    unexpected = sorted(set(given) - set(expected))
    if unexpected:
        raise ValueError(f"{path}: unexpected keys for vgg19 features: {unexpected[:5]}")
    missing = sorted(set(expected) - set(given))
    if missing:
        raise ValueError(f"{path}: missing vgg19 keys: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    for key, value in given.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(f"{path}: {key} has shape {tuple(value.shape)}, vgg19 needs {tuple(expected[key].shape)}")
    net.load_state_dict({k: v.float() for k, v in given.items()})
    net.eval()
    net.requires_grad_(False)
    return net

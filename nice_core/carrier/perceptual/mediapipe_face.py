"""Multi-layer perceptual features from mediapipe's face-mesh CNN, ported to PyTorch.

Provenance:
    * Weights: ``mediapipe/modules/face_landmark/face_landmark.tflite`` inside the ``mediapipe`` wheel
      (0.10.21 here; the file's description field reads ``facemesh-lite.tflite.no_meta``), 1,242,398 bytes,
      float16 constants (113 DEQUANTIZE'd tensors). It is read from the installed package at run time; nothing
      is downloaded and nothing is copied into this repository.
    * License: Apache License 2.0, the license of the ``mediapipe`` distribution that ships the file
      (``License: Apache 2.0`` and ``Classifier: License :: OSI Approved :: Apache Software License`` in its
      METADATA, full text in the dist-info's ``LICENSE``; the wheel carries no other license for its models).
      The model (MediaPipe Face Mesh, Google) is a lightweight residual CNN that regresses 468 3-D landmarks
      from a 192x192 face crop.
    * Parsing: the FlatBuffer is read with the ``tflite`` package's generated schema classes
      (:mod:`~nice_core.carrier.perceptual.tflite_reader`, no TensorFlow); the
      graph up to the requested tensors is rebuilt as torch modules
      (:mod:`~nice_core.carrier.perceptual.tflite_torch`), float16 weights widened to float32.

The network (192x192 input) is a stack of residual blocks ``PReLU(x + 1x1conv(depthwise3x3(x)))``; each
stride-2 block adds a 2x2 max-pooled, zero-channel-padded shortcut. The taps are the PReLU outputs right
before each of the first five downsamplings, the analogue of VGG's ``convK_2``:

======== ================ ========= ===============
stage    tensor           channels  stride (to input)
======== ================ ========= ===============
stage1   ``p_re_lu_3``     16        2
stage2   ``p_re_lu_6``     32        4
stage3   ``p_re_lu_9``     64        8
stage4   ``p_re_lu_12``   128       16
stage5   ``p_re_lu_15``   128       32
======== ================ ========= ===============
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from torch import Tensor, nn

from nice_core.carrier.perceptual.tflite_reader import TFLiteModel, read_tflite
from nice_core.carrier.perceptual.tflite_torch import TFLiteGraph

__all__ = [
    "FACE_LANDMARK_MODEL",
    "STAGES",
    "MediapipeFaceFeatures",
    "face_landmark_graph",
    "load_default_perceptual",
    "mediapipe_model_path",
]

#: The bundled model, relative to the installed ``mediapipe`` package.
FACE_LANDMARK_MODEL = "modules/face_landmark/face_landmark.tflite"

#: Stage name -> (TFLite tensor name, channels, stride).
STAGES: dict[str, tuple[str, int, int]] = {
    "stage1": ("p_re_lu_3", 16, 2),
    "stage2": ("p_re_lu_6", 32, 4),
    "stage3": ("p_re_lu_9", 64, 8),
    "stage4": ("p_re_lu_12", 128, 16),
    "stage5": ("p_re_lu_15", 128, 32),
}


def mediapipe_model_path(relative: str = FACE_LANDMARK_MODEL) -> Path:
    """Path of a model file bundled in the installed ``mediapipe`` package (found without importing it).

    Args:
        relative: the file's path inside the package.

    Returns:
        The absolute path.

    Raises:
        FileNotFoundError: mediapipe is not installed, or its wheel lacks the file.
    """
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the mediapipe package is not installed; it ships the face-mesh weights")
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path
    raise FileNotFoundError(f"mediapipe at {list(spec.submodule_search_locations)} has no {relative}")


@lru_cache(maxsize=4)
def _parsed(path: str) -> TFLiteModel:
    return read_tflite(path)


class MediapipeFaceFeatures(nn.Module):
    """Face-specific multi-layer features from the mediapipe face-mesh CNN (see the module docstring).

    Args:
        stages: which taps to return, in order, from ``stage1`` ... ``stage5`` (:data:`STAGES`).
        model_path: the ``.tflite`` file; default the one in the installed mediapipe.

    Example:
        >>> import torch
        >>> net = MediapipeFaceFeatures().eval()
        >>> feats = net(torch.rand(2, 3, 256, 256))
        >>> [tuple(f.shape) for f in feats]
        [(2, 16, 128, 128), (2, 32, 64, 64), (2, 64, 32, 32), (2, 128, 16, 16), (2, 128, 8, 8)]
    """

    def __init__(self, stages: Sequence[str] = tuple(STAGES), model_path: str | Path | None = None) -> None:
        super().__init__()
        unknown = [s for s in stages if s not in STAGES]
        if unknown or not stages:
            raise ValueError(f"stages must be a non-empty subset of {list(STAGES)}, got {list(stages)}")
        self.stages = list(stages)
        self.channels = [STAGES[s][1] for s in self.stages]
        self.strides = [STAGES[s][2] for s in self.stages]
        path = Path(model_path) if model_path is not None else mediapipe_model_path()
        self.graph = TFLiteGraph(_parsed(str(path)), [STAGES[s][0] for s in self.stages])

    @property
    def multiple(self) -> int:
        """The input height and width must be multiples of this (the deepest tap's stride)."""
        return max(self.strides)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Compute the feature maps.

        Args:
            x: RGB images ``(B, 3, H, W)`` in ``[0, 1]`` (the range the face mesh was trained on), ``H`` and
                ``W`` multiples of :attr:`multiple` (32 with all stages). The network was trained on 192x192
                face crops; other sizes (e.g. 256x256) work since every tap is fully convolutional.

        Returns:
            One tensor per stage, ``(B, C_k, H / s_k, W / s_k)`` with the channels ``C_k`` and strides ``s_k``
            of :data:`STAGES`: PReLU outputs (not normalised, can be negative).

        Raises:
            ValueError: the input is not ``(B, 3, H, W)`` or its size is not a multiple of :attr:`multiple`.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) RGB images, got shape {tuple(x.shape)}")
        m = self.multiple
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"height and width must be multiples of {m}, got {tuple(x.shape[-2:])}")
        return self.graph(x)


def face_landmark_graph(model_path: str | Path | None = None) -> TFLiteGraph:
    """The whole face-mesh network in torch, for checking the port against mediapipe.

    Args:
        model_path: the ``.tflite`` file; default the one in the installed mediapipe.

    Returns:
        A module mapping ``(B, 3, 192, 192)`` RGB in ``[0, 1]`` to ``[landmarks, face_flag]``:
        ``(B, 1404, 1, 1)`` (468 points of ``x, y, z`` in input pixels) and ``(B, 1, 1, 1)`` (a logit).
    """
    path = Path(model_path) if model_path is not None else mediapipe_model_path()
    return TFLiteGraph(_parsed(str(path)), ["conv2d_21", "conv2d_31"])


@lru_cache(maxsize=1)
def load_default_perceptual() -> MediapipeFaceFeatures:
    """The default perceptual feature extractor: :class:`MediapipeFaceFeatures` with all five stages.

    Built once per process and shared (cached): it is in eval mode with ``requires_grad=False`` on every
    parameter, so gradients flow to the input only. Moving it (``.to(device)``) moves the shared instance.

    Returns:
        The module; input ``(B, 3, H, W)`` RGB in ``[0, 1]`` with ``H, W`` multiples of 32, output a list of
        five feature maps (see :meth:`MediapipeFaceFeatures.forward`).
    """
    net = MediapipeFaceFeatures().eval()
    net.requires_grad_(False)
    return net

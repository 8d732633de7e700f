"""A read-only view of TensorFlow Lite model files (``.tflite``), for porting small float CNNs.

Only what the port needs is kept: the operator names, the first subgraph's tensors (shape, type, name,
constant data) and operators (inputs, outputs, the builtin options of the operators ported). The FlatBuffer
is read with the ``tflite`` package (the TFLite schema's generated classes, Apache-2.0), so field names and
enum values are the schema's own; no TensorFlow is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tflite

__all__ = ["TFLiteModel", "TFLiteOperator", "TFLiteTensor", "read_tflite"]


def _names(enum: type) -> dict[int, str]:
    """Value -> name of one of the schema's enums."""
    return {value: name for name, value in vars(enum).items() if not name.startswith("_")}


BUILTIN_OPERATORS = _names(tflite.BuiltinOperator)
PADDING = _names(tflite.Padding)
ACTIVATIONS = _names(tflite.ActivationFunctionType)

# TensorType -> numpy dtype (little-endian, as stored).
_TENSOR_TYPES: dict[int, np.dtype] = {
    tflite.TensorType.FLOAT32: np.dtype("<f4"), tflite.TensorType.FLOAT16: np.dtype("<f2"),
    tflite.TensorType.INT32: np.dtype("<i4"), tflite.TensorType.UINT8: np.dtype("u1"),
    tflite.TensorType.INT64: np.dtype("<i8"), tflite.TensorType.INT16: np.dtype("<i2"),
    tflite.TensorType.INT8: np.dtype("i1"),
}

_POOL = (tflite.Pool2DOptions, {"padding": "Padding", "stride_w": "StrideW", "stride_h": "StrideH",
                                "filter_w": "FilterWidth", "filter_h": "FilterHeight",
                                "fused_activation": "FusedActivationFunction"})
# The builtin options read, per operator: the options class and option name -> its accessor.
_OPTIONS: dict[str, tuple[type, dict[str, str]]] = {
    "CONV_2D": (tflite.Conv2DOptions, {"padding": "Padding", "stride_w": "StrideW", "stride_h": "StrideH",
                                       "fused_activation": "FusedActivationFunction",
                                       "dilation_w": "DilationWFactor", "dilation_h": "DilationHFactor"}),
    "DEPTHWISE_CONV_2D": (tflite.DepthwiseConv2DOptions, {
        "padding": "Padding", "stride_w": "StrideW", "stride_h": "StrideH", "depth_multiplier": "DepthMultiplier",
        "fused_activation": "FusedActivationFunction", "dilation_w": "DilationWFactor",
        "dilation_h": "DilationHFactor"}),
    "MAX_POOL_2D": _POOL,
    "AVERAGE_POOL_2D": _POOL,
    "ADD": (tflite.AddOptions, {"fused_activation": "FusedActivationFunction"}),
    "MUL": (tflite.MulOptions, {"fused_activation": "FusedActivationFunction"}),
    "SUB": (tflite.SubOptions, {"fused_activation": "FusedActivationFunction"}),
    "CONCATENATION": (tflite.ConcatenationOptions, {"axis": "Axis", "fused_activation": "FusedActivationFunction"}),
}


@dataclass
class TFLiteTensor:
    """One tensor of the graph: its shape, dtype, name and, for a constant, its data."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    data: np.ndarray | None = None


@dataclass
class TFLiteOperator:
    """One operator: its builtin name, input/output tensor indices (-1 = absent) and parsed options."""

    index: int
    op: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, int | str] = field(default_factory=dict)


@dataclass
class TFLiteModel:
    """The first subgraph of a ``.tflite`` file."""

    tensors: list[TFLiteTensor]
    operators: list[TFLiteOperator]
    inputs: list[int]
    outputs: list[int]
    description: str = ""

    def producer(self) -> dict[int, TFLiteOperator]:
        """Map each tensor index to the operator that writes it."""
        return {t: op for op in self.operators for t in op.outputs}

    def constant(self, index: int) -> np.ndarray:
        """The constant data of tensor ``index`` as float32 (DEQUANTIZE'd float16 constants are followed)."""
        tensor = self.tensors[index]
        if tensor.data is None:
            src = self.producer().get(index)
            if src is not None and src.op == "DEQUANTIZE":
                return self.constant(src.inputs[0])
            raise ValueError(f"tensor {index} ({tensor.name!r}) is not a constant")
        if tensor.dtype.kind == "f":
            return tensor.data.astype(np.float32)
        return tensor.data


def _ints(values: object) -> list[int]:
    """A generated ``...AsNumpy()`` vector as ints (the generated code returns 0 for an absent vector)."""
    return [int(v) for v in values] if isinstance(values, np.ndarray) else []


def _operator_name(code: tflite.OperatorCode) -> str:
    # Old files keep the code in the deprecated byte field, new ones in the int32 one: the larger is it.
    value = max(code.DeprecatedBuiltinCode(), code.BuiltinCode())
    name = BUILTIN_OPERATORS.get(value, f"BUILTIN_{value}")
    if name == "CUSTOM":
        name = f"CUSTOM:{(code.CustomCode() or b'').decode('utf-8', 'replace')}"
    return name


def _options(operator: tflite.Operator, name: str) -> dict[str, int | str]:
    spec = _OPTIONS.get(name)
    table = operator.BuiltinOptions()
    if spec is None or table is None:
        return {}
    cls, accessors = spec
    options_table = cls()
    options_table.Init(table.Bytes, table.Pos)
    options: dict[str, int | str] = {key: int(getattr(options_table, method)()) for key, method in accessors.items()}
    if "padding" in options:
        options["padding"] = PADDING[int(options["padding"])]
    if "fused_activation" in options:
        options["fused_activation"] = ACTIVATIONS.get(int(options["fused_activation"]), "?")
    return options


def _tensor(index: int, tensor: tflite.Tensor, buffers: list[np.ndarray]) -> TFLiteTensor:
    shape = tuple(_ints(tensor.ShapeAsNumpy()))
    dtype = _TENSOR_TYPES.get(tensor.Type(), np.dtype("u1"))
    raw = buffers[tensor.Buffer()] if tensor.Buffer() < len(buffers) else None
    data = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(shape) if raw is not None and raw.size else None
    return TFLiteTensor(index, (tensor.Name() or b"").decode("utf-8", "replace"), shape, dtype, data)


def read_tflite(path: str | Path) -> TFLiteModel:
    """Parse a ``.tflite`` file's first subgraph.

    Args:
        path: the model file.

    Returns:
        The tensors (constants carry their data, as stored: float16 stays float16) and operators.

    Raises:
        ValueError: the file is not a TFLite FlatBuffer (identifier ``TFL3``) or has no subgraph.
    """
    buf = bytearray(Path(path).read_bytes())
    if buf[4:8] != b"TFL3":
        raise ValueError(f"{path}: not a TFLite model (file identifier {bytes(buf[4:8])!r})")
    model = tflite.Model.GetRootAs(buf, 0)
    if model.SubgraphsLength() == 0:
        raise ValueError(f"{path}: no subgraph")
    names = [_operator_name(model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())]
    # Buffer offset/size fields are for models over 2 GB, not met here.
    buffers = [model.Buffers(i).DataAsNumpy() for i in range(model.BuffersLength())]
    buffers = [b if isinstance(b, np.ndarray) else np.zeros(0, np.uint8) for b in buffers]
    graph = model.Subgraphs(0)
    tensors = [_tensor(i, graph.Tensors(i), buffers) for i in range(graph.TensorsLength())]
    operators = []
    for i in range(graph.OperatorsLength()):
        operator = graph.Operators(i)
        name = names[operator.OpcodeIndex()]
        operators.append(TFLiteOperator(i, name, _ints(operator.InputsAsNumpy()), _ints(operator.OutputsAsNumpy()),
                                        _options(operator, name)))
    return TFLiteModel(tensors, operators, _ints(graph.InputsAsNumpy()), _ints(graph.OutputsAsNumpy()),
                       (model.Description() or b"").decode("utf-8", "replace"))

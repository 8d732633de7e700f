"""A minimal, read-only parser for TensorFlow Lite model files (``.tflite``).

Only what is needed to port small float CNNs is read: the operator codes, the first subgraph's tensors
(shape, type, name, constant data) and operators (inputs, outputs, builtin options). The file is a
FlatBuffer with the TFLite schema (``tensorflow/compiler/mlir/lite/schema/schema.fbs``); fields are read
by their slot numbers in that schema with the ``flatbuffers`` runtime, so no generated schema classes
(and no TensorFlow) are needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np
from flatbuffers import number_types as nt
from flatbuffers.table import Table

__all__ = ["BUILTIN_OPS", "TFLiteModel", "TFLiteOperator", "TFLiteTensor", "read_tflite"]

# BuiltinOperator enum values (schema.fbs) for the operators this package may meet.
BUILTIN_OPS: dict[int, str] = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
    6: "DEQUANTIZE", 9: "FULLY_CONNECTED", 14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU",
    21: "RELU6", 22: "RESHAPE", 23: "RESIZE_BILINEAR", 25: "SOFTMAX", 28: "TANH", 32: "CUSTOM", 34: "PAD",
    39: "TRANSPOSE", 40: "MEAN", 41: "SUB", 42: "DIV", 43: "SQUEEZE", 54: "PRELU", 117: "HARD_SWISH",
}

# TensorType enum -> numpy dtype (little-endian, as stored).
_TENSOR_TYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"), 1: np.dtype("<f2"), 2: np.dtype("<i4"), 3: np.dtype("u1"), 4: np.dtype("<i8"),
    7: np.dtype("<i2"), 9: np.dtype("i1"),
}

# BuiltinOptions union members used here: options table type -> ordered (name, flatbuffers type, default).
_OPTIONS: dict[str, list[tuple[str, type, int]]] = {
    "CONV_2D": [("padding", nt.Int8Flags, 0), ("stride_w", nt.Int32Flags, 0), ("stride_h", nt.Int32Flags, 0),
                ("fused_activation", nt.Int8Flags, 0), ("dilation_w", nt.Int32Flags, 1),
                ("dilation_h", nt.Int32Flags, 1)],
    "DEPTHWISE_CONV_2D": [("padding", nt.Int8Flags, 0), ("stride_w", nt.Int32Flags, 0),
                          ("stride_h", nt.Int32Flags, 0), ("depth_multiplier", nt.Int32Flags, 0),
                          ("fused_activation", nt.Int8Flags, 0), ("dilation_w", nt.Int32Flags, 1),
                          ("dilation_h", nt.Int32Flags, 1)],
    "MAX_POOL_2D": [("padding", nt.Int8Flags, 0), ("stride_w", nt.Int32Flags, 0), ("stride_h", nt.Int32Flags, 0),
                    ("filter_w", nt.Int32Flags, 0), ("filter_h", nt.Int32Flags, 0),
                    ("fused_activation", nt.Int8Flags, 0)],
    "ADD": [("fused_activation", nt.Int8Flags, 0)],
    "MUL": [("fused_activation", nt.Int8Flags, 0)],
    "SUB": [("fused_activation", nt.Int8Flags, 0)],
    "CONCATENATION": [("axis", nt.Int32Flags, 0), ("fused_activation", nt.Int8Flags, 0)],
}
_OPTIONS["AVERAGE_POOL_2D"] = _OPTIONS["MAX_POOL_2D"]

PADDING = {0: "SAME", 1: "VALID"}
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


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


def _field_table(t: Table, slot: int) -> Table | None:
    off = t.Offset(4 + 2 * slot)
    if not off:
        return None
    return Table(t.Bytes, t.Indirect(t.Pos + off))


def _field_scalar(t: Table, slot: int, flags: type, default: int) -> int:
    off = t.Offset(4 + 2 * slot)
    return t.Get(flags, t.Pos + off) if off else default


def _field_vector_tables(t: Table, slot: int) -> list[Table]:
    off = t.Offset(4 + 2 * slot)
    if not off:
        return []
    start, n = t.Vector(off), t.VectorLen(off)
    return [Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(n)]


def _field_vector_numpy(t: Table, slot: int, flags: type) -> np.ndarray:
    off = t.Offset(4 + 2 * slot)
    if not off:
        return np.zeros(0, dtype=np.int32)
    return t.GetVectorAsNumpy(flags, off)


def _field_string(t: Table, slot: int) -> str:
    off = t.Offset(4 + 2 * slot)
    return t.String(off + t.Pos).decode("utf-8", "replace") if off else ""


def read_tflite(path: str | Path) -> TFLiteModel:
    """Parse a ``.tflite`` file's first subgraph.

    Args:
        path: the model file.

    Returns:
        The tensors (constants carry their data, as stored: float16 stays float16) and operators.

    Raises:
        ValueError: the file is not a TFLite FlatBuffer (identifier ``TFL3``), or it uses an operator
            this reader does not know.
    """
    buf = bytearray(Path(path).read_bytes())
    if buf[4:8] != b"TFL3":
        raise ValueError(f"{path}: not a TFLite model (file identifier {bytes(buf[4:8])!r})")
    model = Table(buf, flatbuffers.encode.Get(nt.UOffsetTFlags.packer_type, buf, 0))
    # Model: version(0) operator_codes(1) subgraphs(2) description(3) buffers(4).
    codes = []
    for code in _field_vector_tables(model, 1):
        # OperatorCode: deprecated_builtin_code(0, byte) custom_code(1) version(2) builtin_code(3, int32).
        value = max(_field_scalar(code, 0, nt.Int8Flags, 0), _field_scalar(code, 3, nt.Int32Flags, 0))
        name = BUILTIN_OPS.get(value, f"BUILTIN_{value}")
        if name == "CUSTOM":
            name = f"CUSTOM:{_field_string(code, 1)}"
        codes.append(name)
    buffers = []
    for b in _field_vector_tables(model, 4):
        # Buffer: data(0, [ubyte]) offset(1) size(2); offset/size are for >2 GB models, not used here.
        buffers.append(_field_vector_numpy(b, 0, nt.Uint8Flags))
    subgraphs = _field_vector_tables(model, 2)
    if not subgraphs:
        raise ValueError(f"{path}: no subgraph")
    sub = subgraphs[0]
    tensors = []
    # SubGraph: tensors(0) inputs(1) outputs(2) operators(3) name(4).
    for i, t in enumerate(_field_vector_tables(sub, 0)):
        # Tensor: shape(0) type(1) buffer(2) name(3) quantization(4).
        shape = tuple(int(s) for s in _field_vector_numpy(t, 0, nt.Int32Flags))
        ttype = _field_scalar(t, 1, nt.Int8Flags, 0)
        dtype = _TENSOR_TYPES.get(ttype, np.dtype("u1"))
        bidx = _field_scalar(t, 2, nt.Uint32Flags, 0)
        data = None
        raw = buffers[bidx] if bidx < len(buffers) else None
        if raw is not None and raw.size:
            data = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(shape)
        tensors.append(TFLiteTensor(i, _field_string(t, 3), shape, dtype, data))
    operators = []
    for i, o in enumerate(_field_vector_tables(sub, 3)):
        # Operator: opcode_index(0) inputs(1) outputs(2) builtin_options_type(3) builtin_options(4).
        name = codes[_field_scalar(o, 0, nt.Uint32Flags, 0)]
        options: dict[str, int | str] = {}
        spec = _OPTIONS.get(name)
        opt = _field_table(o, 4)
        if spec is not None and opt is not None:
            for slot, (key, flags, default) in enumerate(spec):
                options[key] = _field_scalar(opt, slot, flags, default)
            if "padding" in options:
                options["padding"] = PADDING[int(options["padding"])]
            if "fused_activation" in options:
                options["fused_activation"] = ACTIVATIONS.get(int(options["fused_activation"]), "?")
        operators.append(TFLiteOperator(
            i, name,
            [int(v) for v in _field_vector_numpy(o, 1, nt.Int32Flags)],
            [int(v) for v in _field_vector_numpy(o, 2, nt.Int32Flags)],
            options,
        ))
    return TFLiteModel(
        tensors, operators,
        [int(v) for v in _field_vector_numpy(sub, 1, nt.Int32Flags)],
        [int(v) for v in _field_vector_numpy(sub, 2, nt.Int32Flags)],
        _field_string(model, 3),
    )

"""Run a parsed TFLite float graph as a PyTorch module (NCHW, differentiable).

Supported operators: CONV_2D, DEPTHWISE_CONV_2D, PRELU, RELU, RELU6, ADD, MAX_POOL_2D, AVERAGE_POOL_2D
(VALID only), PAD and DEQUANTIZE of constants (float16 weights are widened to float32). TFLite conventions
are translated here: activations are NHWC in the file and NCHW in torch; conv kernels are OHWI (-> OIHW),
depthwise kernels 1HWC (-> C1HW, ``groups=C``); ``SAME`` padding is TensorFlow's, which puts the odd
pixel of padding after (right/bottom), not before.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nice_core.carrier.perceptual.tflite_reader import TFLiteModel, TFLiteOperator

__all__ = ["TFLiteGraph", "same_padding"]

_SUPPORTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "RELU", "RELU6", "ADD", "MAX_POOL_2D",
              "AVERAGE_POOL_2D", "PAD"}


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow ``SAME`` padding along one axis.

    Args:
        size: input length.
        kernel: kernel length.
        stride: stride.
        dilation: dilation factor.

    Returns:
        ``(before, after)``; when the total is odd the extra pixel goes after, as in TensorFlow.
    """
    effective = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
              value: float = 0.0) -> Tensor:
    top, bottom = same_padding(x.shape[-2], kernel[0], stride[0], dilation[0])
    left, right = same_padding(x.shape[-1], kernel[1], stride[1], dilation[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _activation(x: Tensor, name: object) -> Tensor:
    if name in (None, "NONE"):
        return x
    if name == "RELU":
        return F.relu(x)
    if name == "RELU6":
        return F.relu6(x)
    if name == "RELU_N1_TO_1":
        return x.clamp(-1.0, 1.0)
    if name == "TANH":
        return torch.tanh(x)
    raise NotImplementedError(f"fused activation {name!r}")


def _nhwc_const_to_nchw(value: np.ndarray) -> Tensor:
    """A constant that broadcasts against an NHWC activation, made to broadcast against NCHW."""
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim > 4:
        raise ValueError(f"constant of rank {arr.ndim} cannot broadcast against a 4-D activation")
    arr = arr.reshape((1,) * (4 - arr.ndim) + arr.shape)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


def _key(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


class TFLiteGraph(nn.Module):
    """The part of a TFLite graph needed to compute some of its tensors, as torch modules.

    Args:
        model: the parsed model (:func:`~nice_core.carrier.perceptual.tflite_reader.read_tflite`).
        outputs: names of the tensors to compute; the operators none of them depends on are dropped.

    Raises:
        KeyError: an output name is not a tensor of the graph.
        NotImplementedError: a needed operator or option is not supported.
    """

    def __init__(self, model: TFLiteModel, outputs: Iterable[str]) -> None:
        super().__init__()
        by_name = {t.name: t.index for t in model.tensors}
        self.output_names = list(outputs)
        missing = [n for n in self.output_names if n not in by_name]
        if missing:
            raise KeyError(f"no tensor named {missing} in the graph")
        if len(model.inputs) != 1:
            raise NotImplementedError("only single-input graphs are supported")
        self.input_index = model.inputs[0]
        self.output_indices = [by_name[n] for n in self.output_names]
        producer = model.producer()

        def is_const(i: int) -> bool:
            return model.tensors[i].data is not None or (i in producer and producer[i].op == "DEQUANTIZE")

        # Operators needed for the outputs, found backwards, then run in file order (it is topological).
        needed: set[int] = set()
        stack = list(self.output_indices)
        while stack:
            t = stack.pop()
            op = producer.get(t)
            if op is None or op.index in needed or is_const(t):
                continue
            needed.add(op.index)
            stack.extend(i for i in op.inputs if i >= 0)
        self.plan: list[tuple[str, str, list[int], int]] = []  # (op, module key, activation inputs, output)
        self.ops = nn.ModuleDict()
        self._const: dict[str, Tensor] = {}
        self._opts: dict[str, dict[str, object]] = {}
        for op in model.operators:
            if op.index not in needed:
                continue
            if op.op not in _SUPPORTED:
                raise NotImplementedError(f"operator {op.op} (#{op.index}) is not supported")
            key = _key(model.tensors[op.outputs[0]].name) or f"op{op.index}"
            dynamic = [i for i in op.inputs if i >= 0 and not is_const(i)]
            self._build(model, op, key, is_const)
            self.plan.append((op.op, key, dynamic, op.outputs[0]))
        for name, value in self._const.items():
            self.register_buffer(name, value)

    def _build(self, model: TFLiteModel, op: TFLiteOperator, key: str, is_const: Callable[[int], bool]) -> None:
        opts: dict[str, object] = dict(op.options)
        if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = model.constant(op.inputs[1])
            b = model.constant(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
            if op.op == "CONV_2D":  # OHWI -> OIHW
                weight = w.transpose(0, 3, 1, 2)
                groups = 1
            else:  # 1HWC -> C1HW; input channels = C / depth_multiplier
                weight = w.transpose(3, 0, 1, 2)
                groups = w.shape[3] // int(opts.get("depth_multiplier", 1) or 1)
            out_c, in_c_per_group, kh, kw = weight.shape
            stride = (int(opts["stride_h"]), int(opts["stride_w"]))
            dilation = (int(opts["dilation_h"]), int(opts["dilation_w"]))
            padding = (0, 0)
            if opts["padding"] == "SAME" and stride == (1, 1) and (kh - 1) * dilation[0] % 2 == 0 \
                    and (kw - 1) * dilation[1] % 2 == 0:
                # At stride 1 TF's SAME padding does not depend on the input size: let the conv do it.
                padding = ((kh - 1) * dilation[0] // 2, (kw - 1) * dilation[1] // 2)
                opts["padding"] = "BUILT_IN"
            conv = nn.Conv2d(in_c_per_group * groups, out_c, (kh, kw), stride=stride, padding=padding,
                             dilation=dilation, groups=groups, bias=b is not None)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
                if b is not None:
                    conv.bias.copy_(torch.from_numpy(b.reshape(-1)))
            self.ops[key] = conv
        elif op.op == "PRELU":
            alpha = _nhwc_const_to_nchw(model.constant(op.inputs[1]))
            if alpha.shape[0] == alpha.shape[2] == alpha.shape[3] == 1:
                alpha = alpha.flatten()  # per channel (or one value): F.prelu's own layout
            self._const[f"{key}_alpha"] = alpha
        elif op.op == "ADD":
            consts = [i for i in op.inputs if is_const(i)]
            if consts:
                self._const[f"{key}_addend"] = _nhwc_const_to_nchw(model.constant(consts[0]))
        elif op.op == "PAD":
            pads = model.constant(op.inputs[1]).astype(int).reshape(4, 2)  # NHWC (before, after)
            # F.pad on NCHW takes the last axis first: W, H, C, N.
            opts["pads"] = [int(p) for p in (*pads[2], *pads[1], *pads[3], *pads[0])]
        elif op.op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            if op.op == "AVERAGE_POOL_2D" and opts["padding"] != "VALID":
                raise NotImplementedError("AVERAGE_POOL_2D with SAME padding (TF excludes the padding)")
        self._opts[key] = opts

    def forward(self, x: Tensor) -> list[Tensor]:
        """Run the graph.

        Args:
            x: the graph input, ``(B, C, H, W)`` (NCHW; the file's NHWC input transposed).

        Returns:
            The requested tensors, in the order of ``outputs``, each NCHW.
        """
        values: dict[int, Tensor] = {self.input_index: x}
        for op, key, inputs, out in self.plan:
            a = values[inputs[0]] if inputs else None
            opts = self._opts[key]
            if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                conv = self.ops[key]
                if opts["padding"] == "SAME":
                    a = _pad_same(a, conv.kernel_size, conv.stride, conv.dilation)
                y = _activation(conv(a), opts["fused_activation"])
            elif op == "PRELU":
                alpha = getattr(self, f"{key}_alpha")
                y = F.prelu(a, alpha) if alpha.ndim == 1 else torch.where(a >= 0, a, a * alpha)
            elif op == "RELU":
                y = F.relu(a)
            elif op == "RELU6":
                y = F.relu6(a)
            elif op == "ADD":
                other = values[inputs[1]] if len(inputs) > 1 else getattr(self, f"{key}_addend")
                y = _activation(a + other, opts.get("fused_activation"))
            elif op == "PAD":
                y = F.pad(a, opts["pads"])
            else:  # pooling
                k = (int(opts["filter_h"]), int(opts["filter_w"]))
                s = (int(opts["stride_h"]), int(opts["stride_w"]))
                if op == "MAX_POOL_2D":
                    if opts["padding"] == "SAME":
                        a = _pad_same(a, k, s, (1, 1), value=-math.inf)
                    y = F.max_pool2d(a, k, s)
                else:
                    y = F.avg_pool2d(a, k, s)
                y = _activation(y, opts.get("fused_activation"))
            values[out] = y
        return [values[i] for i in self.output_indices]

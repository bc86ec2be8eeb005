"""Run an ONNX graph node by node with PyTorch eager ops (the benchmark's PyTorch peer).

Covers the ops of the CPU benchmark models; weights are the ONNX initializers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(x: Any, w: Any, b: Any = None, **a: Any) -> Any:
    pads = a.get("pads", [0, 0, 0, 0])
    return F.conv2d(x, w, b, a.get("strides", 1), (pads[0], pads[1]), a.get("dilations", 1),
                    a.get("group", 1))  # fmt: skip


def _max_pool(x: Any, **a: Any) -> Any:
    pads = a.get("pads", [0, 0, 0, 0])
    return F.max_pool2d(x, a["kernel_shape"], a.get("strides"), (pads[0], pads[1]))


def _batch_norm(x: Any, g: Any, b: Any, m: Any, v: Any, **a: Any) -> Any:
    return F.batch_norm(x, m, v, g, b, False, 0.0, a.get("epsilon", 1e-5))


def _gemm(x: Any, w: Any, b: Any, **a: Any) -> Any:
    return F.linear(x, w, b) if a.get("transB") else x @ w + b


def _layer_norm(x: Any, g: Any, b: Any, **a: Any) -> Any:
    return F.layer_norm(x, x.shape[-1:], g, b, a.get("epsilon", 1e-5))


OPS: dict[str, Callable[..., Any]] = {
    "Conv": _conv,
    "BatchNormalization": _batch_norm,
    "Relu": lambda x: F.relu(x),
    "MaxPool": _max_pool,
    "Add": lambda a, b: a + b,
    "Mul": lambda a, b: a * b,
    "GlobalAveragePool": lambda x: x.mean(dim=(2, 3), keepdim=True),
    "Flatten": lambda x, axis=1: torch.flatten(x, axis),
    "Gemm": _gemm,
    "MatMul": lambda a, b: a @ b,
    "Softmax": lambda x, axis=-1: torch.softmax(x, axis),
    "Reshape": lambda x, s: x.reshape([int(d) for d in s]),
    "Transpose": lambda x, perm: x.permute(*perm),
    "LayerNormalization": _layer_norm,
    "Gelu": lambda x: F.gelu(x),
}


class TorchEager:
    """An ONNX model as a PyTorch eager function of NumPy inputs."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.graph = model.graph
        self.weights = {
            t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
            for t in self.graph.initializer
        }

    @torch.inference_mode()
    def __call__(self, **inputs: np.ndarray) -> list[np.ndarray]:
        values = dict(self.weights)
        values.update({k: torch.from_numpy(v) for k, v in inputs.items()})
        for node in self.graph.node:
            args = [values[i] for i in node.input]
            values[node.output[0]] = OPS[node.op_type](*args, **_attrs(node))
        return [values[o.name].numpy() for o in self.graph.output]

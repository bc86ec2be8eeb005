"""Small real ONNX models for the tests, built with onnx.helper."""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def mlp(
    batch: int | str = "N", d_in: int = 32, d_hidden: int = 64, d_out: int = 10, seed: int = 0
) -> onnx.ModelProto:
    """x -> MatMul -> Add -> Relu -> MatMul -> Add -> Softmax."""
    rng = np.random.default_rng(seed)
    weights = {
        "W1": (rng.standard_normal((d_in, d_hidden)) / np.sqrt(d_in)).astype(np.float32),
        "b1": rng.standard_normal(d_hidden).astype(np.float32) / 10,
        "W2": (rng.standard_normal((d_hidden, d_out)) / np.sqrt(d_hidden)).astype(np.float32),
        "b2": rng.standard_normal(d_out).astype(np.float32) / 10,
    }
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"], name="fc1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="fc1_bias"),
        helper.make_node("Relu", ["hb"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "W2"], ["o"], name="fc2"),
        helper.make_node("Add", ["o", "b2"], ["logits"], name="fc2_bias"),
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, d_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, d_out])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def custom_node_model(
    domain: str = "com.test", op_type: str = "Swish", attrs: dict | None = None
) -> onnx.ModelProto:
    """x[N, 16] -> Mul(2) -> domain::op_type(attrs) -> y."""
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    nodes = [
        helper.make_node("Mul", ["x", "two"], ["x2"], name="double"),
        helper.make_node(op_type, ["x2"], ["y"], name="custom", domain=domain, **(attrs or {})),
    ]
    graph = helper.make_graph(
        nodes,
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])],
        [two],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)]
    return helper.make_model(graph, opset_imports=opsets)


def save(model: onnx.ModelProto, folder: pathlib.Path, name: str) -> pathlib.Path:
    """Write ``model`` to ``folder/name`` and return the path."""
    path = folder / name
    onnx.save(model, path)
    return path

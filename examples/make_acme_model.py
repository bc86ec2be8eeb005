"""Write examples/models/acme_mlp.onnx: an MLP with the custom node com.acme::ShiftedSoftplus.

    x[N, 64] -> MatMul(W1) -> Add(b1) -> com.acme::ShiftedSoftplus -> MatMul(W2) -> Add(b2) -> y

The batch N is symbolic; compile with ``--input-shapes "x:[32,64]"`` or run with any N.
"""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PATH = pathlib.Path(__file__).parent / "models" / "acme_mlp.onnx"


def build() -> onnx.ModelProto:
    """The model, with seeded weights."""
    rng = np.random.default_rng(7)
    weights = {
        "W1": (rng.standard_normal((64, 128)) / 8).astype(np.float32),
        "b1": (rng.standard_normal(128) / 10).astype(np.float32),
        "W2": (rng.standard_normal((128, 10)) / 11).astype(np.float32),
        "b2": np.zeros(10, np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"], name="fc1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="fc1_bias"),
        helper.make_node(
            "ShiftedSoftplus", ["hb"], ["a"], name="act", domain="com.acme", shift=0.5
        ),
        helper.make_node("MatMul", ["a", "W2"], ["o"], name="fc2"),
        helper.make_node("Add", ["o", "b2"], ["y"], name="fc2_bias"),
    ]
    graph = helper.make_graph(
        nodes,
        "acme_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.acme", 1)]
    return helper.make_model(graph, opset_imports=opsets, producer_name="tvmext-example")


if __name__ == "__main__":
    PATH.parent.mkdir(exist_ok=True)
    onnx.save(build(), PATH)
    print(f"wrote {PATH}")

"""Real ONNX models of the three CPU workloads oneDNN targets: a ResNet-style CNN, an MLP
and a transformer encoder block, built with onnx.helper (fp32, fixed seeds)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Graph:
    """Collects nodes and initializers while a model is written."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}{self._count}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.weights.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def ints(self, stem: str, value: list[int]) -> str:
        name = self.name(stem)
        self.weights.append(numpy_helper.from_array(np.array(value, np.int64), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv_bn(self, x: str, c_in: int, c_out: int, k: int, stride: int = 1) -> str:
        """Conv (no bias, as in ResNet) followed by BatchNormalization."""
        w = self.rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / (c_in * k * k))
        y = self.node(
            "Conv", [x, self.const("w", w)], kernel_shape=[k, k], strides=[stride, stride],
            pads=[k // 2] * 4,
        )  # fmt: skip
        stats = [
            self.rng.uniform(0.5, 1.5, c_out),  # gamma
            self.rng.standard_normal(c_out) * 0.1,  # beta
            self.rng.standard_normal(c_out) * 0.1,  # mean
            self.rng.uniform(0.5, 1.5, c_out),  # var
        ]
        names = [self.const(s, v) for s, v in zip(("g", "b", "m", "v"), stats, strict=True)]
        return self.node("BatchNormalization", [y, *names], epsilon=1e-5)

    def dense(self, x: str, d_in: int, d_out: int) -> str:
        """MatMul with a [d_in, d_out] weight, then Add of a bias."""
        w = self.rng.standard_normal((d_in, d_out)) / np.sqrt(d_in)
        y = self.node("MatMul", [x, self.const("w", w)])
        return self.node("Add", [y, self.const("b", self.rng.standard_normal(d_out) * 0.1)])

    def model(
        self,
        name: str,
        inputs: list[onnx.ValueInfoProto],
        output: str,
        shape: list[int],
        opset: int,
    ) -> onnx.ModelProto:
        self.nodes[-1].output[0] = output
        graph = helper.make_graph(
            self.nodes,
            name,
            inputs,
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)],
            self.weights,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        onnx.checker.check_model(model)
        return model


def resnet_cnn(
    batch: int = 1, size: int = 32, width: int = 16, classes: int = 10, seed: int = 0
) -> onnx.ModelProto:
    """Stem conv-BN-ReLU and max pool, a basic residual block, a strided residual block
    with a 1x1 projection, global average pool, flatten and Gemm: input ``x``
    [batch, 3, size, size] -> ``y`` [batch, classes]."""
    g = _Graph(seed)
    x = g.node("Relu", [g.conv_bn("x", 3, width, 3)])
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    for c_in, c_out, stride in ((width, width, 1), (width, 2 * width, 2)):
        h = g.node("Relu", [g.conv_bn(x, c_in, c_out, 3, stride)])
        h = g.conv_bn(h, c_out, c_out, 3)
        skip = x if stride == 1 else g.conv_bn(x, c_in, c_out, 1, stride)
        x = g.node("Relu", [g.node("Add", [h, skip])])
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])], axis=1)
    w = g.rng.standard_normal((classes, 2 * width)) / np.sqrt(2 * width)
    g.node("Gemm", [x, g.const("fc_w", w), g.const("fc_b", np.zeros(classes))], transB=1)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, size, size])]
    return g.model("resnet_cnn", inputs, "y", [batch, classes], opset=17)


def mlp(
    batch: int = 32, d_in: int = 256, d_hidden: int = 512, d_out: int = 10, seed: int = 0
) -> onnx.ModelProto:
    """x [batch, d_in] -> (MatMul+Add+Relu) x 2 -> MatMul+Add -> Softmax."""
    g = _Graph(seed)
    x = g.node("Relu", [g.dense("x", d_in, d_hidden)])
    x = g.node("Relu", [g.dense(x, d_hidden, d_hidden)])
    g.node("Softmax", [g.dense(x, d_hidden, d_out)], axis=-1)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, d_in])]
    return g.model("mlp", inputs, "y", [batch, d_out], opset=17)


def transformer_encoder(
    batch: int = 2, seq: int = 32, d_model: int = 64, heads: int = 4, d_ff: int = 256, seed: int = 0
) -> onnx.ModelProto:
    """A post-LN (BERT-style) encoder block: multi-head self-attention with a residual
    and LayerNormalization, then a GELU feed-forward with a residual and
    LayerNormalization: ``x`` [batch, seq, d_model] -> ``y`` of the same shape."""
    g = _Graph(seed)
    d_head = d_model // heads

    def split_heads(t: str, perm: list[int]) -> str:
        shape = g.ints("shape", [batch, seq, heads, d_head])
        return g.node("Transpose", [g.node("Reshape", [t, shape])], perm=perm)

    def layer_norm(t: str) -> str:
        gamma = g.const("ln_g", g.rng.uniform(0.5, 1.5, d_model))
        beta = g.const("ln_b", g.rng.standard_normal(d_model) * 0.1)
        return g.node("LayerNormalization", [t, gamma, beta], axis=-1, epsilon=1e-5)

    q = split_heads(g.dense("x", d_model, d_model), [0, 2, 1, 3])
    k = split_heads(g.dense("x", d_model, d_model), [0, 2, 3, 1])
    v = split_heads(g.dense("x", d_model, d_model), [0, 2, 1, 3])
    scores = g.node("Mul", [g.node("MatMul", [q, k]), g.const("scale", np.array(d_head**-0.5))])
    ctx = g.node("MatMul", [g.node("Softmax", [scores], axis=-1), v])
    ctx = g.node("Transpose", [ctx], perm=[0, 2, 1, 3])
    ctx = g.node("Reshape", [ctx, g.ints("shape", [batch, seq, d_model])])
    x = layer_norm(g.node("Add", [g.dense(ctx, d_model, d_model), "x"]))
    h = g.node("Gelu", [g.dense(x, d_model, d_ff)])
    layer_norm(g.node("Add", [g.dense(h, d_ff, d_model), x]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, seq, d_model])]
    return g.model("transformer_encoder", inputs, "y", [batch, seq, d_model], opset=20)

"""Integer arithmetic for the convolutions and matrix products of QDQ models.

A QDQ model (``onnxruntime.quantization.quantize_static``, QDQ format) writes an int8
convolution as ``Conv(DequantizeLinear(x), DequantizeLinear(w), DequantizeLinear(b))``
in float. Computed that way, every output carries float rounding from the sum, and
the ``QuantizeLinear`` after it rounds some outputs to the neighbouring step; through
a deep network those steps add up. ONNX Runtime instead runs such nodes as integer
kernels (``QLinearConv``, ``QLinearMatMul``, ``QGemm``): exact int32 sums, one
rescale. This rewrite does the same with standard ONNX ops, before import:

    Conv(DQ(x), DQ(w), DQ(b))  ->  DQ(ConvInteger(x, w, zx, zw) + b, sx * sw)
    MatMul(DQ(a), DQ(b))        ->  DQ(MatMulInteger(a, b, za, zb), sa * sb)
    Gemm(DQ(a), DQ(B), DQ(c))  ->  DQ(MatMulInteger(a, B or B^T, za, zb) + c, sa * sb)

which is the float computation's exact value (the int32 sum times the scales), so it
changes nothing but the rounding. A node is rewritten only where that identity holds:
per-tensor scales and zero points on the activations, per-tensor or per-output-channel
ones on constant weights, an int32 bias quantized with scale ``sx * sw`` and zero
point 0, and (Gemm) ``alpha = beta = 1`` without ``transA``; other nodes stay as
they are.

The compiler skips the rewrite where an external target's int8 kernels would not be
exact (oneDNN on a CPU without VNNI): there the float products, the model's own
definition, run on the target's float kernels instead of TVM's int32 loops.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

_INT8_TYPES = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
_PREFIX = "tvmext_qdq_integer"


class _Graph:
    """The producer of each value and the value of each initializer, of one graph."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.producer = {out: node for node in graph.node for out in node.output}
        self.initializers = {init.name: init for init in graph.initializer}

    def constant(self, name: str) -> np.ndarray | None:
        init = self.initializers.get(name)
        return None if init is None else numpy_helper.to_array(init)

    def dequantized(self, name: str) -> onnx.NodeProto | None:
        """The DequantizeLinear (int8/uint8, constant parameters) producing ``name``."""
        node = self.producer.get(name)
        if node is None or node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
            return None
        if len(node.input) < 2 or any(a.name == "block_size" and a.i for a in node.attribute):
            return None
        params = [self.constant(i) for i in node.input[1:] if i]
        if any(p is None for p in params):
            return None
        return node


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _params(g: _Graph, dq: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray | None, int]:
    scale = g.constant(dq.input[1])
    assert scale is not None
    zero = g.constant(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
    return scale, zero, int(_attr(dq, "axis", 1))  # type: ignore[call-overload]


def _quantized_input(g: _Graph, dq: onnx.NodeProto, types: dict[str, int]) -> bool:
    return types.get(dq.input[0]) in _INT8_TYPES


def _activation(g: _Graph, dq: onnx.NodeProto | None, types: dict[str, int]) -> bool:
    """A per-tensor int8/uint8 dequantization."""
    if dq is None or not _quantized_input(g, dq, types):
        return False
    scale, zero, _ = _params(g, dq)
    return scale.size == 1 and (zero is None or zero.size == 1)


def _weight_channels(
    g: _Graph, dq: onnx.NodeProto | None, types: dict[str, int], channel_axis: int
) -> np.ndarray | None:
    """The scale of a constant int8/uint8 weight, per tensor (size 1) or per channel
    along ``channel_axis``; None if it is neither."""
    if dq is None or dq.input[0] not in g.initializers or not _quantized_input(g, dq, types):
        return None
    weight = g.constant(dq.input[0])
    assert weight is not None
    scale, zero, axis = _params(g, dq)
    if scale.size == 1 and (zero is None or zero.size == 1):
        return scale.reshape(1)
    axis = axis % weight.ndim
    per_channel = scale.ndim == 1 and axis == channel_axis and scale.size == weight.shape[axis]
    if not per_channel or (zero is not None and zero.shape != scale.shape):
        return None
    return scale


def _bias(g: _Graph, name: str, scale: np.ndarray, channels: int) -> np.ndarray | None:
    """The int32 values of a bias quantized with exactly ``scale`` and zero point 0."""
    dq = g.dequantized(name)
    if dq is None or dq.input[0] not in g.initializers:
        return None
    values = g.constant(dq.input[0])
    b_scale, b_zero, _ = _params(g, dq)
    assert values is not None
    if values.dtype != np.int32 or values.shape != (channels,):
        return None
    if b_zero is not None and np.any(b_zero != 0):
        return None
    if not np.array_equal(np.broadcast_to(b_scale, scale.shape), scale):
        return None
    return values


class _Rewriter:
    def __init__(self, graph: onnx.GraphProto, types: dict[str, int]) -> None:
        self.g = _Graph(graph)
        self.types = types
        self.new_initializers: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, what: str) -> str:
        self.count += 1
        return f"{_PREFIX}_{self.count}_{what}"

    def _initializer(self, value: np.ndarray, what: str) -> str:
        name = self._name(what)
        self.new_initializers.append(numpy_helper.from_array(value, name))
        return name

    def _zero_points(self, dq: onnx.NodeProto) -> str:
        return dq.input[2] if len(dq.input) > 2 else ""

    def _finish(
        self, node: onnx.NodeProto, product: list[onnx.NodeProto], acc: str,
        bias: np.ndarray | None, bias_shape: list[int], scale: np.ndarray, axis: int,
    ) -> list[onnx.NodeProto]:  # fmt: skip
        nodes = list(product)
        if bias is not None:
            summed = self._name("biased")
            bias_name = self._initializer(bias.reshape(bias_shape), "bias")
            nodes.append(helper.make_node("Add", [acc, bias_name], [summed]))
            acc = summed
        scale_name = self._initializer(scale.astype(np.float32), "scale")
        dequantize = helper.make_node(
            "DequantizeLinear", [acc, scale_name], [node.output[0]], name=node.name
        )
        if scale.size > 1:
            dequantize.attribute.append(helper.make_attribute("axis", axis))
        nodes.append(dequantize)
        return nodes

    def conv(self, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
        x_dq, w_dq = (self.g.dequantized(i) for i in node.input[:2])
        if not _activation(self.g, x_dq, self.types):
            return None
        w_scale = _weight_channels(self.g, w_dq, self.types, channel_axis=0)
        if w_scale is None or x_dq is None or w_dq is None:
            return None
        weight = self.g.constant(w_dq.input[0])
        assert weight is not None
        if weight.ndim != 4 or _attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            return None
        x_scale = _params(self.g, x_dq)[0].reshape(1)
        scale = np.broadcast_to(x_scale.astype(np.float32) * w_scale, (weight.shape[0],))
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = _bias(self.g, node.input[2], scale, weight.shape[0])
            if bias is None:
                return None
        acc = self._name("acc")
        w_zero = self._zero_points(w_dq)
        inputs = [x_dq.input[0], w_dq.input[0], self._zero_points(x_dq), w_zero]
        conv_attrs = {
            a.name: helper.get_attribute_value(a)
            for a in node.attribute
            if a.name in ("dilations", "group", "pads", "strides", "kernel_shape")
        }
        conv = helper.make_node("ConvInteger", inputs, [acc], **conv_attrs)
        return self._finish(node, [conv], acc, bias, [1, -1, 1, 1], np.ascontiguousarray(scale), 1)

    def matmul(self, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
        a_dq, b_dq = (self.g.dequantized(i) for i in node.input[:2])
        if not _activation(self.g, a_dq, self.types) or a_dq is None or b_dq is None:
            return None
        a_scale = _params(self.g, a_dq)[0].reshape(1).astype(np.float32)
        b_scale: np.ndarray | None
        if _activation(self.g, b_dq, self.types):
            b_scale = _params(self.g, b_dq)[0].reshape(1)
        else:
            weight = self.g.constant(b_dq.input[0])
            if weight is None or weight.ndim != 2:
                return None
            b_scale = _weight_channels(self.g, b_dq, self.types, channel_axis=1)
            if b_scale is None:
                return None
        acc = self._name("acc")
        inputs = [a_dq.input[0], b_dq.input[0], self._zero_points(a_dq), self._zero_points(b_dq)]
        product = helper.make_node("MatMulInteger", inputs, [acc])
        scale = a_scale * b_scale
        return self._finish(node, [product], acc, None, [], scale, -1)

    def gemm(self, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
        if _attr(node, "alpha", 1.0) != 1.0 or _attr(node, "beta", 1.0) != 1.0:
            return None
        if _attr(node, "transA", 0):
            return None
        a_dq, b_dq = (self.g.dequantized(i) for i in node.input[:2])
        if not _activation(self.g, a_dq, self.types) or a_dq is None or b_dq is None:
            return None
        trans_b = bool(_attr(node, "transB", 0))
        b_scale = _weight_channels(self.g, b_dq, self.types, channel_axis=0 if trans_b else 1)
        weight = self.g.constant(b_dq.input[0])
        if b_scale is None or weight is None or weight.ndim != 2:
            return None
        b_name, b_zero = b_dq.input[0], self._zero_points(b_dq)
        if trans_b:
            b_name = self._initializer(np.ascontiguousarray(weight.T), "weight")
        columns = weight.shape[0] if trans_b else weight.shape[1]
        scale = np.broadcast_to(_params(self.g, a_dq)[0].reshape(1).astype(np.float32) * b_scale,
                                (columns,))  # fmt: skip
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = _bias(self.g, node.input[2], scale, columns)
            if bias is None:
                return None
        acc = self._name("acc")
        inputs = [a_dq.input[0], b_name, self._zero_points(a_dq), b_zero]
        product = helper.make_node("MatMulInteger", inputs, [acc])
        return self._finish(node, [product], acc, bias, [-1], np.ascontiguousarray(scale), -1)


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in graph.input}
    types.update({i.name: i.data_type for i in graph.initializer})
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) > 2 and node.input[2]:
            zero = next((i for i in graph.initializer if i.name == node.input[2]), None)
            if zero is not None:
                types[node.output[0]] = zero.data_type
        elif node.op_type == "QuantizeLinear" and not _attr(node, "output_dtype", 0):
            types[node.output[0]] = onnx.TensorProto.UINT8  # the spec's default
    return types


def integer_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its quantized Conv, MatMul and Gemm nodes in integer arithmetic
    (the model itself when it has none)."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 10 or not any(n.op_type == "DequantizeLinear" for n in model.graph.node):
        return model
    rewriter = _Rewriter(model.graph, _elem_types(model))
    rules = {"Conv": rewriter.conv, "MatMul": rewriter.matmul, "Gemm": rewriter.gemm}
    nodes: list[onnx.NodeProto] = []
    changed = False
    for node in model.graph.node:
        rule = rules.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        replacement = rule(node) if rule else None
        if replacement is None:
            nodes.append(node)
        else:
            nodes.extend(replacement)
            changed = True
    if not changed:
        return model
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    del rewritten.graph.node[:]
    rewritten.graph.node.extend(nodes)
    rewritten.graph.initializer.extend(rewriter.new_initializers)
    return rewritten

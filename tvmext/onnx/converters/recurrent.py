"""ONNX recurrent-state sequence ops of opset 27 that TVM's importer does not convert:
``CausalConvWithState`` (the stateful causal depthwise Conv1d of Mamba / Gated
DeltaNet)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tvm import relax

from tvmext.errors import ModelError
from tvmext.onnx.converters.helpers import const, static_shape
from tvmext.onnx.registry import register_converter


@register_converter("", "CausalConvWithState", 27)
def causal_conv_with_state(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Depthwise Conv1d over ``concat(past_state or zeros, input)`` with no padding,
    optionally SiLU; ``present_state`` is the last ``k - 1`` positions of that concat."""
    op = relax.op
    x, weight = inputs[:2]
    bias, past = [*inputs[2:4], None, None][:2]
    activation = attrs.get("activation", "none")
    if activation not in ("none", "silu", "swish"):
        raise ModelError(
            f"CausalConvWithState: activation {activation!r} given, expected 'none', "
            "'silu' or 'swish'"
        )
    shape, w_shape = static_shape(x), static_shape(weight)
    if shape is None or w_shape is None or len(shape) != 3 or len(w_shape) != 3:
        raise ModelError(
            f"CausalConvWithState: input and weight need static rank-3 shapes, got "
            f"{x.ty} and {weight.ty}"
        )
    batch, channels, length = shape
    k = w_shape[2]
    if w_shape[:2] != [channels, 1]:
        raise ModelError(
            f"CausalConvWithState: weight shape {w_shape} given, expected ({channels}, 1, k)"
        )
    dtype = str(x.ty.dtype)
    if past is None:
        past = const(np.zeros((batch, channels, k - 1), dtype=dtype))
    padded = bb.emit(op.concat([past, x], axis=2)) if k > 1 else x
    # Accumulate in float32 (at least), as the reference's NumPy conv does for halves.
    acc = "float64" if dtype == "float64" else "float32"
    conv = op.nn.conv1d(op.astype(padded, acc), op.astype(weight, acc), groups=channels)
    if bias is not None:
        conv = op.add(conv, op.reshape(op.astype(bias, acc), (1, channels, 1)))
    out = bb.emit(op.astype(conv, dtype))
    if activation != "none":
        # The reference rounds the conv to the input dtype, then applies SiLU in float32.
        wide = op.astype(out, acc)
        out = bb.emit(op.astype(op.multiply(wide, op.sigmoid(wide)), dtype))
    if k > 1:
        present = bb.emit(op.strided_slice(padded, axes=[2], begin=[length], end=[length + k - 1]))
    else:  # An empty state: a constant, as TVM cannot schedule a kernel of no elements.
        present = const(np.zeros((batch, channels, 0), dtype=dtype))
    results = [out, present][: attrs["_num_outputs"]]
    return relax.Tuple(results) if len(results) > 1 else results[0]

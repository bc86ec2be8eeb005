"""Fold inference BatchNorm into the convolution before it (for the dnnl target).

``batch_norm(conv2d(x, W) [+ b], gamma, beta, mean, var)[0]`` with constant
statistics equals ``conv2d(x, W * s) + (b - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)`` scaling each output channel. The convolution then
carries a bias that oneDNN fuses, instead of four element-wise ops. A dense layer
followed by BatchNorm over its output features (LeViT's linear + BatchNorm1d, through
the reshape that flattens its tokens) folds the same way into the weights' columns.

Precondition: runs in the ``prepare`` phase, before ``simplify_for_inference``
decomposes ``batch_norm`` into element-wise ops; the convolution's weights, bias
and the BatchNorm parameters must be constants, and BatchNorm's axis the conv's
output channel axis (otherwise the expression is left as it is).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, is_const, is_op, is_tuple_get_item, wildcard

from tvmext.pass_registry import function_pass, register_pass


def _patterns() -> tuple[dict[str, DFPattern], DFPattern]:
    convolutions = [is_op(f"relax.nn.conv{n}d")(wildcard(), is_const()) for n in (1, 2, 3)]
    parts = {"conv": convolutions[0] | convolutions[1] | convolutions[2]}
    parts["bias"] = is_const()
    biased = is_op("relax.add")(parts["conv"], parts["bias"])
    stats = [is_const() for _ in range(4)]
    parts["gamma"], parts["beta"], parts["mean"], parts["var"] = stats
    parts["bn"] = is_op("relax.nn.batch_norm")(parts["conv"] | biased, *stats)
    return parts, is_tuple_get_item(parts["bn"], 0)


def _array(const: relax.Expr) -> np.ndarray:
    return np.asarray(const.value.numpy())


def _fold(expr: relax.Expr, matches: dict[DFPattern, relax.Expr], parts: dict[str, Any]) -> Any:
    conv, bn = matches[parts["conv"]], matches[parts["bn"]]
    out_layout = str(conv.attrs.out_layout)
    rank = len(out_layout)
    if int(bn.attrs.axis) % rank != out_layout.index("C"):
        return expr
    scale, shift = _scale_and_shift(bn, matches, parts)
    bias = _array(matches[parts["bias"]]).reshape(-1) if parts["bias"] in matches else 0.0
    weight = _array(conv.args[1])
    axis = str(conv.attrs.kernel_layout).index("O")
    shape = [1] * weight.ndim
    shape[axis] = -1
    new_weight = (weight * scale.reshape(shape)).astype(weight.dtype)
    new_bias = (bias * scale + shift).astype(weight.dtype)
    bias_shape = [1] * rank
    bias_shape[out_layout.index("C")] = -1
    folded = relax.Call(conv.op, [conv.args[0], relax.const(new_weight)], conv.attrs)
    return relax.op.add(folded, relax.const(new_bias.reshape(bias_shape)))


def _dense_patterns() -> tuple[dict[str, DFPattern], DFPattern]:
    parts = {"dense": is_op("relax.matmul")(wildcard(), is_const())}
    parts["bias"] = is_const()
    biased = is_op("relax.add")(parts["dense"], parts["bias"]) | parts["dense"]
    parts["reshape"] = is_op("relax.reshape")(biased, wildcard())
    stats = [is_const() for _ in range(4)]
    parts["gamma"], parts["beta"], parts["mean"], parts["var"] = stats
    parts["bn"] = is_op("relax.nn.batch_norm")(parts["reshape"] | biased, *stats)
    return parts, is_tuple_get_item(parts["bn"], 0)


def _scale_and_shift(
    bn: relax.Call, matches: dict[DFPattern, relax.Expr], parts: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm as ``x * scale + shift`` per channel."""
    value = {k: _array(matches[parts[k]]) for k in ("gamma", "beta", "mean", "var")}
    gamma = value["gamma"] if bool(bn.attrs.scale) else np.ones_like(value["gamma"])
    beta = value["beta"] if bool(bn.attrs.center) else np.zeros_like(value["beta"])
    scale = gamma / np.sqrt(value["var"] + float(bn.attrs.epsilon))
    return scale, beta - value["mean"] * scale


def _fold_dense(
    expr: relax.Expr, matches: dict[DFPattern, relax.Expr], parts: dict[str, Any]
) -> Any:
    dense, bn = matches[parts["dense"]], matches[parts["bn"]]
    weight = _array(dense.args[1])
    shape = bn.args[0].ty.shape
    rank = len(shape) if shape is not None else 0
    channels = weight.shape[-1]
    if weight.ndim != 2 or rank < 2 or int(bn.attrs.axis) % rank != rank - 1:
        return expr  # BatchNorm over another axis than the dense layer's features
    scale, shift = _scale_and_shift(bn, matches, parts)
    if scale.shape != (channels,):
        return expr
    bias = _array(matches[parts["bias"]]) if parts["bias"] in matches else np.zeros(channels)
    if bias.size != channels:
        return expr
    new_weight = (weight * scale).astype(weight.dtype)
    new_bias = (bias.reshape(-1) * scale + shift).astype(weight.dtype)
    folded = relax.op.add(relax.op.matmul(dense.args[0], relax.const(new_weight)),
                          relax.const(new_bias))  # fmt: skip
    reshape = matches.get(parts["reshape"])
    return folded if reshape is None else relax.op.reshape(folded, reshape.args[1])


@register_pass("tvmext.fold_batch_norm", targets=("dnnl",), inference_only=True)
def fold_batch_norm() -> tvm.transform.Pass:
    """Rewrite a convolution (1-D, 2-D or 3-D) or a dense layer (+bias) followed by
    BatchNorm with constant parameters into the convolution or dense layer + bias."""
    parts, pattern = _patterns()
    dense_parts, dense_pattern = _dense_patterns()

    def rewrite(func: relax.Function) -> relax.Function:
        func = relax.dpl.rewrite_call(pattern, lambda e, m: _fold(e, m, parts), func)
        return relax.dpl.rewrite_call(
            dense_pattern, lambda e, m: _fold_dense(e, m, dense_parts), func
        )

    return function_pass("tvmext.FoldBatchNorm", rewrite)

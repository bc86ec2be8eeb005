"""ONNX normalizations whose extra outputs TVM 0.27 does not compute."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from onnx.helper import tensor_dtype_to_np_dtype
from tvm import relax

from tvmext.dims import static_shape
from tvmext.errors import ModelError, ShapeError
from tvmext.onnx.converters.helpers import const
from tvmext.onnx.registry import register_converter


@register_converter("", "LayerNormalization", 17)
def layer_normalization(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """LayerNormalization with its ``Mean`` and ``InvStdDev`` outputs (TVM returns
    scalar placeholders for them); a single-output node goes to TVM's fused op."""
    if attrs["_num_outputs"] == 1:
        return fallback()
    op = relax.op
    data, scale = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    shape = static_shape(data)
    if shape is None:
        raise ModelError(
            "input 0 (X) has an unknown shape; outputs Mean and InvStdDev need a static one"
        )
    rank, dtype = len(shape), str(data.ty.dtype)
    axis = attrs.get("axis", -1) % rank
    axes = list(range(axis, rank))
    stash = tensor_dtype_to_np_dtype(attrs.get("stash_type", 1)).name
    x = bb.emit(op.astype(data, stash))
    mean = bb.emit(op.mean(x, axes, keepdims=True))
    deviation = bb.emit(op.subtract(x, mean))
    variance = op.mean(op.multiply(deviation, deviation), axes, keepdims=True)
    epsilon = const(np.array(attrs.get("epsilon", 1e-5), dtype=stash))
    inv_std = bb.emit(op.rsqrt(op.add(variance, epsilon)))
    y = op.multiply(op.astype(op.multiply(deviation, inv_std), dtype), scale)
    if bias is not None:
        y = op.add(y, bias)
    results = [bb.emit(y), mean, inv_std][: attrs["_num_outputs"]]
    return relax.Tuple(results)


@register_converter("", "LpNormalization", 1)
def lp_normalization(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``x / norm_p(x)`` along ``axis``, p 1 or 2, and 0 where the norm is 0 (TVM 0.27
    has no converter)."""
    op, x = relax.op, inputs[0]
    axis, p = attrs.get("axis", -1), attrs.get("p", 2)
    if p == 1:
        norm = op.sum(op.abs(x), axis, keepdims=True)
    elif p == 2:
        norm = op.sqrt(op.sum(op.multiply(x, x), axis, keepdims=True))
    else:
        raise ModelError(f"attribute p is {p}; expected 1 or 2")
    zero = const(np.array(0, dtype=str(x.ty.dtype)))
    one = const(np.array(1, dtype=str(x.ty.dtype)))
    return op.divide(x, op.where(op.equal(norm, zero), one, norm))  # 0 / 0 is 0


@register_converter("", "RMSNormalization", 23)
def rms_normalization(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``X / sqrt(mean(X**2 over axis..) + epsilon) * scale`` (TVM 0.27's converter
    fails to build for ``axis`` 0 or ``-rank``)."""
    op, x, scale = relax.op, inputs[0], inputs[1]
    shape = static_shape(x)
    if shape is None:
        return fallback()
    rank = len(shape)
    axes = list(range(attrs.get("axis", -1) % rank, rank))
    epsilon = const(np.array(attrs.get("epsilon", 1e-5), dtype=str(x.ty.dtype)))
    mean_square = op.mean(op.multiply(x, x), axes, keepdims=True)
    return op.multiply(op.divide(x, op.sqrt(op.add(mean_square, epsilon))), scale)


@register_converter("", "BatchNormalization", 14)
def batch_normalization(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``training_mode=1``: normalization by the batch's own mean and (biased) variance
    over every axis but 1, with the running statistics ``mean * momentum + batch *
    (1 - momentum)`` as the optional outputs (TVM 0.27 normalizes by the given ones).
    Inference mode goes to TVM's converter."""
    if not attrs.get("training_mode", 0):
        return fallback()
    op = relax.op
    x, scale, bias, mean, var = inputs[:5]
    if not isinstance(x.ty, relax.TensorType) or x.ty.ndim < 2:
        raise ShapeError("input 0 (X) needs a known rank of at least 2 (N, C, ...)")
    rank, dtype, stats_dtype = x.ty.ndim, str(x.ty.dtype), str(mean.ty.dtype)
    wide = "float64" if "float64" in (dtype, stats_dtype) else "float32"
    axes = [0, *range(2, rank)]
    channels = [1, -1] + [1] * (rank - 2)
    xw = bb.emit(op.astype(x, wide))
    batch_mean = bb.emit(op.mean(xw, axes))
    centered = bb.emit(op.subtract(xw, op.reshape(batch_mean, channels)))
    batch_var = bb.emit(op.mean(op.multiply(centered, centered), axes))
    epsilon = const(np.array(attrs.get("epsilon", 1e-5), dtype=wide))
    inv_std = op.rsqrt(op.add(batch_var, epsilon))
    factor = bb.emit(op.multiply(op.astype(scale, wide), inv_std))
    shift = bb.emit(op.astype(bias, wide))
    y = op.add(op.multiply(centered, op.reshape(factor, channels)), op.reshape(shift, channels))
    results = [bb.emit(op.astype(y, dtype))]
    momentum = attrs.get("momentum", 0.9)
    keep, take = const(np.array(momentum, wide)), const(np.array(1 - momentum, wide))
    for running, batch in ((mean, batch_mean), (var, batch_var)):
        update = op.add(op.multiply(op.astype(running, wide), keep), op.multiply(batch, take))
        results.append(bb.emit(op.astype(update, stats_dtype)))
    return relax.Tuple(results[: attrs["_num_outputs"]])


@register_converter("", "InstanceNormalization", 6)
def instance_normalization(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """InstanceNormalization as a layer norm over the flattened spatial axes, then the
    per-channel scale and bias. PyTorch exports every GroupNorm this way; TVM's
    converter spells it as mean, variance, sqrt and divide, which no normalization
    kernel (oneDNN's layer normalization, TVM's fused one) recognizes."""
    op = relax.op
    data, scale, bias = inputs[0], inputs[1], inputs[2]
    shape = static_shape(data)
    if shape is None or len(shape) < 3:
        return fallback()
    dtype = str(data.ty.dtype)
    spatial = int(np.prod(shape[2:]))
    rows = bb.emit(op.reshape(data, [shape[0], shape[1], spatial]))
    normalized = bb.emit(
        op.nn.layer_norm(
            rows,
            const(np.ones(spatial, dtype)),
            const(np.zeros(spatial, dtype)),
            axes=[-1],
            epsilon=float(attrs.get("epsilon", 1e-5)),
        )
    )
    per_channel = [shape[1]] + [1] * (len(shape) - 2)
    y = op.multiply(op.reshape(normalized, shape), op.reshape(scale, per_channel))
    return op.add(y, op.reshape(bias, per_channel))

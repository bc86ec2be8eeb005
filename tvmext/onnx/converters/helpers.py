"""Converters that fill gaps in TVM 0.27's ONNX importer, registered for ``ai.onnx``.

Each is an ordinary tvmext converter (:func:`tvmext.onnx.registry.register_converter`),
so the same mechanism serves vendors; nothing in TVM is patched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tvm import relax, tirx

from tvmext.onnx.registry import register_converter


def const(value: Any) -> relax.Expr:
    """A constant with exactly ``value``'s NumPy dtype (``relax.const`` alone turns
    int64 into int32 and float64 into float32)."""
    array = np.asarray(value)
    return relax.const(array, str(array.dtype))


def static_shape(expr: relax.Expr) -> list[int] | None:
    ty = expr.ty
    if not isinstance(ty, relax.TensorType) or not isinstance(ty.shape, relax.ShapeExpr):
        return None
    dims = list(ty.shape.values)
    if not all(isinstance(d, tirx.IntImm) for d in dims):
        return None
    return [int(d) for d in dims]


def runtime_shape(bb: relax.BlockBuilder, dims: relax.Expr, rank: int, prefix: str) -> relax.Expr:
    """An int64 tensor ``dims`` of static length ``rank`` as a shape of fresh symbolic
    dimensions, for ops whose output shape is data."""
    dims = bb.match_cast(bb.normalize(dims), relax.TensorType([rank], "int64"))
    shape = bb.emit(relax.op.tensor_to_shape(dims))
    values = [tirx.Var(f"{prefix}{i}", "int64") for i in range(rank)]
    bb.match_cast(shape, relax.ShapeType(values))
    return relax.ShapeExpr(values)


# Consumers that use a ShapeExpr as a shape, where TVM's own path works best.
_SHAPE_USERS = {"Reshape", "Expand", "ConstantOfShape", "Resize", "Slice", "Gather"}


def _needs_tensor_shape(node: Any, consumers: list[str]) -> bool:
    """Whether this Shape node should be a tensor: some consumer computes with it as
    data (arithmetic, comparisons, Concat with tensors, casts) rather than as a shape.
    Chosen by the conformance runner: it passes the most node cases."""
    return any(op not in _SHAPE_USERS for op in consumers)


@register_converter("", "Shape", 1, applies=_needs_tensor_shape)
def shape(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """A static shape becomes an int64 constant that every consumer accepts (TVM makes
    a ShapeExpr, which most ops reject: "cannot handle ShapeExpr inputs")."""
    dims = static_shape(inputs[0])
    if dims is None:
        return fallback()
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return const(np.array(dims[slice(start, end)], dtype=np.int64))


@register_converter("", "Size", 1)
def size(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """The size of a static shape is an int64 constant, so that shape arithmetic after it
    (Range, Sub, ConstantOfShape in expanded function bodies) folds at import."""
    dims = static_shape(inputs[0])
    if dims is None:
        return fallback()
    return const(np.int64(np.prod(dims, dtype=np.int64)))


@register_converter("", "Trilu", 14)
def trilu(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Trilu of a tensor with no elements is that tensor (TVM's runtime-``k`` path
    fails to build a mask of zero rows)."""
    dims = static_shape(inputs[0])
    return inputs[0] if dims is not None and 0 in dims else fallback()


_CONSTANT_KINDS = {
    "value_float": np.float32,
    "value_floats": np.float32,
    "value_int": np.int64,
    "value_ints": np.int64,
}


@register_converter("", "Constant", 1)
def constant(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``Constant`` with ``value_float(s)``/``value_int(s)`` (TVM handles only ``value``)."""
    for key, dtype in _CONSTANT_KINDS.items():
        if key in attrs:
            return const(np.array(attrs[key], dtype=dtype))
    return fallback()


def _nll(
    bb: relax.BlockBuilder,
    log_prob: relax.Expr,
    target: relax.Expr,
    weight: relax.Expr | None,
    reduction: str,
    ignore_index: int | None,
) -> relax.Expr:
    """NegativeLogLikelihoodLoss of ``log_prob`` [N, C, d...] at ``target`` [N, d...]."""
    op = relax.op
    dtype = str(log_prob.ty.dtype)
    if ignore_index is None:
        safe, mask = target, None
    else:
        ignored = bb.emit(op.equal(target, relax.const(ignore_index, target.ty.dtype)))
        safe = bb.emit(op.where(ignored, op.zeros_like(target), target))
        mask = bb.emit(op.astype(op.logical_not(ignored), dtype))
    picked = op.squeeze(op.gather_elements(log_prob, op.expand_dims(safe, 1), axis=1), [1])
    scale = op.take(weight, safe, axis=0) if weight is not None else None
    if mask is not None:
        scale = op.multiply(scale, mask) if scale is not None else mask
    loss = op.negative(picked)
    if scale is not None:
        loss = op.multiply(loss, scale)
    loss = bb.emit(loss)
    if reduction == "none":
        return loss
    total = op.sum(loss)
    if reduction == "sum":
        return total
    if reduction != "mean":
        raise ValueError(f"reduction must be none, sum or mean, got {reduction!r}")
    count = op.sum(scale) if scale is not None else None
    if count is None:
        n = 1
        for d in target.ty.shape.values:
            n *= int(d)
        return op.divide(total, relax.const(float(n), dtype))
    return op.divide(total, count)


@register_converter("", "NegativeLogLikelihoodLoss", 12)
def negative_log_likelihood_loss(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX NegativeLogLikelihoodLoss (TVM 0.27 has no converter; needed for training)."""
    weight = inputs[2] if len(inputs) > 2 else None
    return _nll(
        bb, inputs[0], inputs[1], weight, attrs.get("reduction", "mean"), attrs.get("ignore_index")
    )


@register_converter("", "SoftmaxCrossEntropyLoss", 12)
def softmax_cross_entropy_loss(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX SoftmaxCrossEntropyLoss: log_softmax over axis 1, then NLL; optional
    second output ``log_prob``."""
    log_prob = bb.emit(relax.op.nn.log_softmax(inputs[0], axis=1))
    weight = inputs[2] if len(inputs) > 2 else None
    loss = _nll(
        bb, log_prob, inputs[1], weight, attrs.get("reduction", "mean"), attrs.get("ignore_index")
    )
    if attrs["_num_outputs"] > 1:
        return relax.Tuple([bb.emit(loss), log_prob])
    return loss


def _neg_inf(dtype: str) -> relax.Expr:
    return const(np.array(-np.inf, dtype=dtype))


def _to_heads(x: relax.Expr, heads: int) -> relax.Expr:
    """[B, S, H*D] -> [B, H, S, D]."""
    b, s, hidden = static_shape(x) or (0, 0, 0)
    return relax.op.permute_dims(relax.op.reshape(x, (b, s, heads, hidden // heads)), [0, 2, 1, 3])


def _attention_bias(
    bb: relax.BlockBuilder,
    mask: relax.Expr | None,
    is_causal: bool,
    q_len: int,
    kv_len: int,
    past: int,
    dtype: str,
    nonpad: relax.Expr | None = None,
    window: tuple[int, int] = (-1, -1),
) -> relax.Expr | None:
    """The additive bias (0 or -inf, or the float mask) of ONNX Attention: the mask,
    then causal and sliding-window masks aligned at ``offset`` (the past length, or
    per batch ``nonpad_kv_seqlen - q_len``), then the padding past ``nonpad_kv_seqlen``."""
    op = relax.op
    if mask is not None:
        mask_shape = static_shape(mask)
        if mask_shape is None:
            raise ValueError("Attention: attn_mask needs a static shape")
        pad = kv_len - mask_shape[-1]
        is_bool = str(mask.ty.dtype) == "bool"
        if pad > 0:
            fill = np.full([*mask_shape[:-1], pad], False if is_bool else -np.inf)
            mask = op.concat([mask, const(fill.astype(str(mask.ty.dtype)))], axis=-1)
        if is_bool:
            mask = op.where(mask, const(np.array(0, dtype=dtype)), _neg_inf(dtype))
    i = const(np.arange(q_len, dtype=np.int64).reshape(q_len, 1))
    j = const(np.arange(kv_len, dtype=np.int64).reshape(1, kv_len))
    zero, neg_inf = const(np.array(0, dtype=dtype)), _neg_inf(dtype)
    if nonpad is None:
        position: relax.Expr = op.add(i, const(np.int64(past)))  # (q, 1)
    else:  # (batch, 1, q, 1)
        nonpad = bb.emit(op.astype(nonpad, "int64"))
        offset = bb.emit(op.subtract(nonpad, const(np.int64(q_len))))
        position = bb.emit(op.add(op.reshape(offset, (-1, 1, 1, 1)), i))
    bias = mask
    allowed: list[relax.Expr] = []
    if is_causal:
        allowed.append(op.less_equal(j, position))
    left, right = window
    if left >= 0:
        allowed.append(op.less_equal(op.subtract(position, j), const(np.int64(left))))
    if right >= 0:
        allowed.append(op.less_equal(op.subtract(j, position), const(np.int64(right))))
    for condition in allowed:
        term = bb.emit(op.where(condition, zero, neg_inf))
        bias = term if bias is None else bb.emit(op.add(bias, term))
    if nonpad is not None:
        valid = bb.emit(op.less(j, op.reshape(nonpad, (-1, 1))))  # (batch, kv)
        padding = op.reshape(bb.emit(op.where(valid, zero, neg_inf)), (-1, 1, 1, kv_len))
        bias = padding if bias is None else bb.emit(op.add(bias, padding))
    return bias


@register_converter("", "Attention", 23)
def attention(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX Attention (opset 23+). TVM's importer maps it to Microsoft's contrib
    Attention, whatever the domain; this follows the ONNX reference: 3D or 4D inputs,
    grouped KV heads, past key/value, boolean or float masks, causal masking, sliding
    windows, ``nonpad_kv_seqlen`` (external cache), scale, softcap, softmax precision
    and the qk_matmul_output modes."""
    op = relax.op
    q, k, v = inputs[:3]
    mask, past_key, past_value = [*inputs[3:6], None, None, None][:3]
    nonpad = inputs[6] if len(inputs) > 6 else None
    dtype = str(q.ty.dtype)
    rank3 = len(static_shape(q) or ()) == 3
    if rank3:
        q = _to_heads(q, attrs["q_num_heads"])
        k = _to_heads(k, attrs["kv_num_heads"])
        v = _to_heads(v, attrs["kv_num_heads"])
    q_shape = static_shape(bb.normalize(q))
    if q_shape is None:
        raise ValueError("Attention: inputs need static shapes")
    present_key = op.concat([past_key, k], axis=2) if past_key is not None else k
    present_value = op.concat([past_value, v], axis=2) if past_value is not None else v
    present_key, present_value = bb.emit(present_key), bb.emit(present_value)
    kv_shape = static_shape(present_key) or q_shape
    past = (static_shape(past_key) or [0, 0, 0])[2] if past_key is not None else 0
    window = (attrs.get("left_window_size", -1), attrs.get("right_window_size", -1))
    bias = _attention_bias(
        bb,
        mask,
        bool(attrs.get("is_causal", 0)),
        q_shape[2],
        kv_shape[2],
        past,
        dtype,
        nonpad,
        window,
    )
    heads, kv_heads = q_shape[1], kv_shape[1]
    keys, values = present_key, present_value
    if heads != kv_heads and heads % kv_heads == 0:
        keys = op.repeat(keys, heads // kv_heads, axis=1)
        values = op.repeat(values, heads // kv_heads, axis=1)
    scale = attrs.get("scale", 1 / np.sqrt(q_shape[3]))
    root = const(np.array(np.sqrt(scale), dtype=dtype))
    scores = bb.emit(
        op.matmul(op.multiply(q, root), op.permute_dims(op.multiply(keys, root), [0, 1, 3, 2]))
    )
    softcap = attrs.get("softcap")
    if softcap is not None and softcap > 0:
        cap = const(np.array(softcap, dtype=dtype))
        scores = bb.emit(op.multiply(op.tanh(op.divide(scores, cap)), cap))
    with_bias = bb.emit(op.add(scores, bias)) if bias is not None else scores
    mode = attrs.get("qk_matmul_output_mode", 0)
    qk_out = with_bias if mode == 2 else scores
    logits = with_bias
    precision = attrs.get("softmax_precision")
    if precision is not None:
        from onnx.helper import tensor_dtype_to_np_dtype

        logits = op.astype(logits, tensor_dtype_to_np_dtype(precision).name)
    probs = bb.emit(op.astype(op.nn.softmax(logits, axis=-1), dtype))
    if bias is not None:
        # A row with no attendable key (TVM's max starts at the lowest finite value,
        # so max(bias) == -inf cannot tell).
        allowed = op.astype(op.greater(bias, _neg_inf(dtype)), "int32")
        masked = op.equal(op.max(allowed, axis=-1, keepdims=True), const(np.int32(0)))
        probs = bb.emit(op.where(masked, const(np.array(0, dtype=dtype)), probs))
    if mode == 3:
        qk_out = probs
    out = bb.emit(op.matmul(probs, values))
    if rank3:
        b, h, s, d = static_shape(out) or (0, 0, 0, 0)
        out = bb.emit(op.reshape(op.permute_dims(out, [0, 2, 1, 3]), (b, s, h * d)))
    results = [out, present_key, present_value, qk_out][: attrs["_num_outputs"]]
    return relax.Tuple(results) if len(results) > 1 else results[0]

"""ONNX ``Attention`` (opset 23): masks, causal and sliding windows, ``nonpad_kv_seqlen``,
GQA, the optional outputs; registered for ``ai.onnx``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tvm import relax

from tvmext.dims import static_shape
from tvmext.errors import ModelError
from tvmext.onnx.converters.helpers import const, matmul_float32_accumulated
from tvmext.onnx.registry import register_converter


def _neg_inf(dtype: str) -> relax.Expr:
    return const(np.array(-np.inf, dtype=dtype))


def _softmax(bb: relax.BlockBuilder, x: relax.Expr) -> relax.Expr:
    """Softmax over the last axis with the reference's rounding steps: ``exp(x - max)``
    in ``x``'s dtype, summed (float16 in float32, as NumPy accumulates it; other dtypes
    in their own), then divided in ``x``'s dtype. A row that is all ``-inf`` gives 0."""
    op = relax.op
    x = bb.emit(x)
    dtype = str(x.ty.dtype)
    x_max = bb.emit(op.max(x, axis=-1, keepdims=True))
    zero = const(np.array(0, dtype=dtype))
    safe_max = op.where(op.equal(x_max, _neg_inf(dtype)), zero, x_max)
    exps = bb.emit(op.exp(op.subtract(x, safe_max)))
    if dtype == "float16":
        total = op.astype(op.sum(op.astype(exps, "float32"), axis=-1, keepdims=True), dtype)
    else:
        total = op.sum(exps, axis=-1, keepdims=True)
    total = bb.emit(total)
    total = op.where(op.equal(total, zero), const(np.array(1, dtype=dtype)), total)
    return op.divide(exps, total)


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
            raise ModelError("input 3 (attn_mask) has an unknown shape; expected a static one")
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
        raise ModelError("input 0 (Q) has an unknown shape; expected a static one")
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
    scaled_keys = op.permute_dims(op.multiply(keys, root), [0, 1, 3, 2])
    scores = bb.emit(matmul_float32_accumulated(bb, op.multiply(q, root), scaled_keys, dtype))
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
    probs = bb.emit(op.astype(_softmax(bb, logits), dtype))
    if bias is not None:
        # A row with no attendable key (TVM's max starts at the lowest finite value,
        # so max(bias) == -inf cannot tell).
        allowed = op.astype(op.greater(bias, _neg_inf(dtype)), "int32")
        masked = op.equal(op.max(allowed, axis=-1, keepdims=True), const(np.int32(0)))
        probs = bb.emit(op.where(masked, const(np.array(0, dtype=dtype)), probs))
    if mode == 3:
        qk_out = probs
    out = bb.emit(matmul_float32_accumulated(bb, probs, values, dtype))
    if rank3:
        b, h, s, d = static_shape(out) or (0, 0, 0, 0)
        out = bb.emit(op.reshape(op.permute_dims(out, [0, 2, 1, 3]), (b, s, h * d)))
    results = [out, present_key, present_value, qk_out][: attrs["_num_outputs"]]
    return relax.Tuple(results) if len(results) > 1 else results[0]

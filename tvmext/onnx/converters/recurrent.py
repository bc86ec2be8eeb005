"""ONNX recurrent-state sequence ops of opset 27 that TVM's importer does not convert:
``CausalConvWithState`` (the stateful causal depthwise Conv1d of Mamba / Gated
DeltaNet) and ``LinearAttention`` (linear, gated, delta and gated-delta recurrences)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tvm import relax

from tvmext.dims import static_shape
from tvmext.errors import ModelError
from tvmext.onnx.converters.helpers import const
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


def _heads(x: relax.Expr, heads: int) -> relax.Expr:
    """[B, T, H*D] -> float32 [B, H, T, D]."""
    b, t, hidden = static_shape(x) or (0, 0, 0)
    x = relax.op.reshape(relax.op.astype(x, "float32"), (b, t, heads, hidden // heads))
    return relax.op.permute_dims(x, [0, 2, 1, 3])


def _step(x: relax.Expr, t: int) -> relax.Expr:
    """Position ``t`` of a [B, H, T, D] tensor, as [B, H, 1, D]."""
    return relax.op.strided_slice(x, axes=[2], begin=[t], end=[t + 1])


@register_converter("", "LinearAttention", 27)
def linear_attention(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """The recurrence of the ONNX reference, one token at a time in float32 (the state
    update is sequential; ``chunk_size`` is only a tuning hint): optional decay
    ``S *= exp(g_t)``, optional delta correction ``v_t = beta_t (v_t - S^T k_t)``, then
    ``S += k_t v_t^T`` and ``o_t = scale q_t^T S``, each KV head's state read by a
    contiguous group of query heads."""
    op = relax.op
    query, key, value = inputs[:3]
    past, decay, beta = [*inputs[3:6], None, None, None][:3]
    rule = attrs.get("update_rule", "gated_delta")
    if rule not in ("linear", "gated", "delta", "gated_delta"):
        raise ModelError(
            f"LinearAttention: update_rule {rule!r} given, expected 'linear', 'gated', "
            "'delta' or 'gated_delta'"
        )
    gating, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if gating != (decay is not None) or delta != (beta is not None):
        raise ModelError(
            f"LinearAttention: update_rule {rule!r} needs "
            f"{'a' if gating else 'no'} decay and {'a' if delta else 'no'} beta input"
        )
    heads, kv_heads = attrs.get("q_num_heads", 0), attrs.get("kv_num_heads", 0)
    if kv_heads <= 0 or heads <= 0 or heads % kv_heads:
        raise ModelError(
            f"LinearAttention: q_num_heads {heads} must be a positive multiple of "
            f"kv_num_heads {kv_heads}"
        )
    shapes = [s for x in (query, key, value) if (s := static_shape(x)) and len(s) == 3]
    if len(shapes) != 3:
        raise ModelError("LinearAttention: query, key and value need static rank-3 shapes")
    (b, steps, q_hidden), (_, _, k_hidden), (_, _, v_hidden) = shapes
    d_k, d_v, group = q_hidden // heads, v_hidden // kv_heads, heads // kv_heads
    if q_hidden % heads or k_hidden != kv_heads * d_k or v_hidden % kv_heads:
        raise ModelError(
            f"LinearAttention: hidden sizes {q_hidden}, {k_hidden}, {v_hidden} do not "
            f"split into {heads} query and {kv_heads} KV heads of one key size"
        )
    # Query heads grouped by their KV head: [B, H_kv, T, G, d_k].
    q = bb.emit(op.reshape(_heads(query, heads), (b, kv_heads, group, steps, d_k)))
    q = bb.emit(op.permute_dims(q, [0, 1, 3, 2, 4]))
    k, v = bb.emit(_heads(key, kv_heads)), bb.emit(_heads(value, kv_heads))
    if gating:
        width = (static_shape(decay) or [0])[-1]
        if width not in (kv_heads, kv_heads * d_k):
            raise ModelError(
                f"LinearAttention: decay's last dimension is {width}, expected "
                f"kv_num_heads ({kv_heads}) or kv_num_heads*d_k ({kv_heads * d_k})"
            )
        # exp(g) as [B, H_kv, T, d_k or 1], to scale the state's rows.
        gate = bb.emit(op.exp(_heads(decay, kv_heads)))
    if delta:
        width = (static_shape(beta) or [0])[-1]
        if width not in (kv_heads, 1):
            raise ModelError(
                f"LinearAttention: beta's last dimension is {width}, expected "
                f"kv_num_heads ({kv_heads}) or 1"
            )
        rate = bb.emit(_heads(beta, width))  # [B, H_kv or 1, T, 1]
    state_shape = (b, kv_heads, d_k, d_v)
    if past is None:
        state_dtype = str(query.ty.dtype)
        state: relax.Expr = const(np.zeros(state_shape, dtype="float32"))
    else:
        if static_shape(past) != list(state_shape):
            raise ModelError(
                f"LinearAttention: past_state is {past.ty}, expected shape {state_shape}"
            )
        state_dtype = str(past.ty.dtype)
        state = op.astype(past, "float32")
    scale = attrs.get("scale", 0.0) or 1 / np.sqrt(d_k)
    outputs = []
    for t in range(steps):
        k_t, v_t = _step(k, t), _step(v, t)  # [B, H_kv, 1, d]
        if gating:
            state = op.multiply(state, op.permute_dims(_step(gate, t), [0, 1, 3, 2]))
        if delta:
            v_t = op.multiply(_step(rate, t), op.subtract(v_t, op.matmul(k_t, state)))
        state = bb.emit(op.add(state, op.multiply(op.permute_dims(k_t, [0, 1, 3, 2]), v_t)))
        q_t = op.reshape(_step(q, t), (b, kv_heads, group, d_k))
        outputs.append(op.reshape(op.matmul(q_t, state), (b, kv_heads, 1, group, d_v)))
    out = op.concat(outputs, axis=2) if steps > 1 else outputs[0]  # [B, H_kv, T, G, d_v]
    out = op.multiply(out, const(np.float32(scale)))
    out = op.reshape(op.permute_dims(out, [0, 2, 1, 3, 4]), (b, steps, heads * d_v))
    out = bb.emit(op.astype(out, str(query.ty.dtype)))
    results = [out, bb.emit(op.astype(state, state_dtype))][: attrs["_num_outputs"]]
    return relax.Tuple(results) if len(results) > 1 else results[0]

"""ONNX ``RotaryEmbedding`` (opset 23): rotary positional embeddings, which TVM's
importer does not convert. 3D ``[B, S, H*D]`` or 4D ``[B, H, S, D]`` input, caches
indexed by ``position_ids`` or given per token, half-split or interleaved rotation of
the first ``rotary_embedding_dim`` channels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tvm import relax

from tvmext.dims import static_shape
from tvmext.errors import ModelError
from tvmext.onnx.registry import register_converter


@register_converter("", "RotaryEmbedding", 23)
def rotary_embedding(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Rotate pairs ``(x1, x2)`` of each head by the cached angle of its token:
    ``(cos*x1 - sin*x2, sin*x1 + cos*x2)``; the channels past the rotary dim pass."""
    op = relax.op
    x, cos, sin = inputs[:3]
    position_ids = inputs[3] if len(inputs) > 3 else None
    shape = static_shape(x)
    if shape is None or len(shape) not in (3, 4):
        raise ModelError(
            f"RotaryEmbedding: input needs a static rank-3 or rank-4 shape, got {x.ty}"
        )
    if len(shape) == 3:
        heads = attrs.get("num_heads", 0)
        if heads <= 0 or shape[2] % heads:
            raise ModelError(
                f"RotaryEmbedding: a 3D input needs num_heads dividing its hidden size "
                f"{shape[2]}, got num_heads={heads}"
            )
        b, s, hidden = shape
        head_size = hidden // heads
        x = op.reshape(x, (b, s, heads, head_size))  # [B, S, H, D]
        head_axis = 2
    else:
        head_size = shape[3]
        head_axis = 1  # [B, H, S, D]: keep the layout, put the caches' heads at axis 1
    dim = attrs.get("rotary_embedding_dim", 0) or head_size
    if dim % 2 or dim > head_size:
        raise ModelError(
            f"RotaryEmbedding: rotary_embedding_dim {dim} must be even and at most the "
            f"head size {head_size}"
        )
    if position_ids is not None:
        cos = op.take(cos, position_ids, axis=0)
        sin = op.take(sin, position_ids, axis=0)
    cos_shape = static_shape(bb.normalize(cos))
    if cos_shape is not None and cos_shape[-1] != dim // 2:
        raise ModelError(
            f"RotaryEmbedding: the caches' last dimension is {cos_shape[-1]}, expected "
            f"rotary_embedding_dim/2 = {dim // 2}"
        )
    # [B, S, dim/2] -> broadcast over the heads.
    cos = bb.emit(op.expand_dims(cos, head_axis))
    sin = bb.emit(op.expand_dims(sin, head_axis))
    rotate = op.strided_slice(x, axes=[3], begin=[0], end=[dim]) if dim < head_size else x
    interleaved = bool(attrs.get("interleaved", 0))
    if interleaved:
        x1 = op.strided_slice(rotate, axes=[3], begin=[0], end=[dim], strides=[2])
        x2 = op.strided_slice(rotate, axes=[3], begin=[1], end=[dim], strides=[2])
    else:
        x1 = op.strided_slice(rotate, axes=[3], begin=[0], end=[dim // 2])
        x2 = op.strided_slice(rotate, axes=[3], begin=[dim // 2], end=[dim])
    x1, x2 = bb.emit(x1), bb.emit(x2)
    real = op.subtract(op.multiply(cos, x1), op.multiply(sin, x2))
    imag = op.add(op.multiply(sin, x1), op.multiply(cos, x2))
    if interleaved:
        pairs = op.concat([op.expand_dims(real, 4), op.expand_dims(imag, 4)], axis=4)
        half_shape = static_shape(bb.normalize(x1))
        if half_shape is None:
            raise ModelError("input 0 (X) needs a static shape for interleaved rotation")
        rotated = op.reshape(pairs, (*half_shape[:3], dim))
    else:
        rotated = op.concat([real, imag], axis=3)
    if dim < head_size:
        rest = op.strided_slice(x, axes=[3], begin=[dim], end=[head_size])
        rotated = op.concat([rotated, rest], axis=3)
    out = bb.emit(rotated)
    return op.reshape(out, shape) if len(shape) == 3 else out

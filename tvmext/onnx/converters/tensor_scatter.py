"""ONNX ``TensorScatter`` (opset 24; TVM 0.27's importer has no converter): a KV-cache
update writing ``update`` into ``past_cache`` along ``axis`` from each batch entry's
write index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tvm import relax, te, tirx

from tvmext.dims import static_shape
from tvmext.errors import ModelError
from tvmext.onnx.registry import register_converter

_MODES = ("linear", "circular")


@register_converter("", "TensorScatter", 24)
def tensor_scatter(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Each cache position along ``axis`` reads the update at its offset from the batch
    entry's write index (modulo the cache length in circular mode) where that offset is
    within the update, and the past cache elsewhere; linear writes past the end of the
    cache are dropped."""
    cache, update = inputs[0], inputs[1]
    indices = inputs[2] if len(inputs) > 2 else None
    mode = attrs.get("mode", "linear")
    if mode not in _MODES:
        raise ModelError(f"mode {mode!r}: expected one of {_MODES}")
    cache_shape, update_shape = static_shape(cache), static_shape(update)
    if cache_shape is None or update_shape is None:
        raise ModelError("inputs 0 (past_cache) and 1 (update) need static shapes")
    rank = len(cache_shape)
    axis = attrs.get("axis", -2)
    if not -rank < axis < rank or axis % rank == 0:
        raise ModelError(f"axis {axis}: expected a non-batch axis of the rank-{rank} cache")
    axis %= rank
    if len(update_shape) != rank or any(
        u != c if i != axis else u > c
        for i, (u, c) in enumerate(zip(update_shape, cache_shape, strict=True))
    ):
        raise ModelError(
            f"input 1 (update) has shape {update_shape}; expected the past_cache shape "
            f"{cache_shape} with at most {cache_shape[axis]} along axis {axis}"
        )
    if indices is not None and static_shape(indices) not in (None, [cache_shape[0]]):
        raise ModelError(
            f"input 2 (write_indices) has shape {static_shape(indices)}; expected "
            f"[{cache_shape[0]}] (the batch size)"
        )
    length, steps = cache_shape[axis], update_shape[axis]

    def compute(past: te.Tensor, new: te.Tensor, *write: te.Tensor) -> te.Tensor:
        def element(*idx: tirx.Var) -> tirx.PrimExpr:
            start = tirx.Cast("int64", write[0][idx[0]]) if write else tirx.const(0, "int64")
            offset = tirx.Cast("int64", idx[axis]) - start
            if mode == "circular":
                offset = tirx.floormod(offset, length)
            source = list(idx)
            source[axis] = tirx.max(tirx.min(offset, steps - 1), 0)
            inside = tirx.all(offset >= 0, offset < steps)
            return tirx.Select(inside, new(*source), past(*idx))

        return te.compute(past.shape, element, name="tensor_scatter")

    if indices is None:
        return bb.emit_te(compute, cache, update)
    return bb.emit_te(compute, cache, update, indices)

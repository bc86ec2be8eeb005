"""ONNX ``SpaceToDepth`` in ``CRD`` mode (opset 28), which TVM 0.27's converter ignores
(it always computes the default ``DCR`` order)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tvm import relax, tirx

from tvmext.errors import ModelError, ShapeError
from tvmext.onnx.registry import register_converter

_MODES = ("DCR", "CRD")


@register_converter("", "SpaceToDepth", 1)
def space_to_depth(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``CRD``: each output channel ``c * b * b + i * b + j`` holds offset ``(i, j)`` of
    the ``b x b`` blocks of input channel ``c``; ``DCR`` goes to TVM's converter."""
    mode = attrs.get("mode", "DCR")
    if mode not in _MODES:
        raise ModelError(f"mode {mode!r}: expected one of {_MODES}")
    if mode == "DCR":
        return fallback()
    data, block = inputs[0], int(attrs["blocksize"])
    if not isinstance(data.ty, relax.TensorType) or data.ty.ndim != 4:
        raise ShapeError("input 0 (input) needs rank 4 (N, C, H, W)")
    n, c, h, w = data.ty.shape.values
    for name, dim in (("H", h), ("W", w)):
        if isinstance(dim, tirx.IntImm) and int(dim) % block:
            raise ShapeError(
                f"input 0 (input) has {name} = {int(dim)}; expected a multiple of blocksize {block}"
            )
    op = relax.op
    x = op.reshape(data, (n, c, h // block, block, w // block, block))
    x = op.permute_dims(x, [0, 1, 3, 5, 2, 4])
    return op.reshape(x, (n, c * block * block, h // block, w // block))

"""ONNX ``Tile`` by repeats that are functions of the input dimensions (DETR's object
queries repeated over the batch, DeBERTa's position bias over batch × heads).

TVM 0.27's converter reads non-constant repeats at run time into fresh dimensions, so
every shape after the Tile is unknown and nothing downstream can be planned. Here the
output dimensions are the products ``dim * repeat`` themselves. Constant repeats go to
TVM's converter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tvm import relax, te, tirx

from tvmext.dims import simplify_dim
from tvmext.errors import ShapeError
from tvmext.onnx.registry import register_converter


@register_converter("", "Tile", 6)
def tile(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Tile by a ``ShapeExpr`` of repeats: output dimension k is ``dims[k] * repeats[k]``,
    element ``i`` reads the input at ``i mod dims``."""
    data, repeats = inputs[0], inputs[1]
    ty = data.ty
    if not isinstance(repeats, relax.ShapeExpr) or not isinstance(ty.shape, relax.ShapeExpr):
        return fallback()
    dims, reps = list(ty.shape.values), list(repeats.values)
    if len(reps) != len(dims):
        raise ShapeError(
            f"input 1 (repeats) has {len(reps)} values; expected one per dimension of input 0 "
            f"({len(dims)})"
        )

    def compute(x: te.Tensor) -> te.Tensor:
        shape = [simplify_dim(d * r) for d, r in zip(dims, reps, strict=True)]
        return te.compute(
            shape,
            lambda *i: x(*[tirx.floormod(k, d) for k, d in zip(i, dims, strict=True)]),
            name="tile",
        )

    return bb.emit_te(compute, data, primfunc_name_hint="tile")

"""ONNX ``AffineGrid`` (opset 20) with ``size`` given at run time (TVM 0.27's converter
needs a constant).

As the reference (``onnx/reference/ops/op_affine_grid.py``): the grid of normalized
coordinates in [-1, 1] (pixel centres, or with ``align_corners`` the corner pixels
at -1 and 1; an axis of length 1 sits at 0, or at -1 with ``align_corners``), in
homogeneous form ``(x, y[, z], 1)`` with ``x`` along the last axis, multiplied by each
batch's ``theta``. Computed in float64, then cast to ``theta``'s type. A ``size``
given at run time gives symbolic dimensions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tvm
from tvm import relax, te, tirx

from tvmext.dims import static_shape
from tvmext.errors import ModelError, ShapeError
from tvmext.onnx.converters.helpers import runtime_shape
from tvmext.onnx.registry import register_converter


def _f64(value: Any) -> tirx.PrimExpr:
    if isinstance(value, int | float):
        return tirx.const(float(value), "float64")
    return tirx.Cast("float64", value)


def _coordinate(i: tirx.PrimExpr, n: tirx.PrimExpr, align_corners: bool) -> tirx.PrimExpr:
    """Normalized coordinate of position ``i`` along an axis of ``n``."""
    i, n = _f64(i), _f64(n)
    if align_corners:
        return tirx.Select(n > _f64(1), _f64(-1) + _f64(2) * i / (n - _f64(1)), _f64(-1))
    return _f64(-1) + (_f64(2) * i + _f64(1)) / n


def _affine_grid_te(theta: te.Tensor, sizes: list[Any], align_corners: bool) -> te.Tensor:
    rank = len(sizes)
    dtype = str(theta.dtype)

    def point(b: tirx.PrimExpr, *index: tirx.PrimExpr) -> tirx.PrimExpr:
        *position, j = index
        # Homogeneous coordinates: x (last axis) first, the translation last.
        homogeneous = [
            _coordinate(position[a], sizes[a], align_corners) for a in reversed(range(rank))
        ]
        total = _f64(theta[b, j, rank])
        for k, c in enumerate(homogeneous):
            total = total + _f64(theta[b, j, k]) * c
        return tirx.Cast(dtype, total)

    return te.compute([theta.shape[0], *sizes, rank], point, name="affine_grid")


@register_converter("", "AffineGrid", 20)
def affine_grid(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX AffineGrid: each output point is ``theta`` times its homogeneous coordinate."""
    theta, size = inputs[0], inputs[1]
    theta_shape, size_shape = static_shape(theta), static_shape(size)
    if theta_shape is None or len(theta_shape) != 3 or theta_shape[1:] not in ([2, 3], [3, 4]):
        raise ShapeError(
            f"input 0 (theta) has type {theta.ty}; expected [N, 2, 3] (2-D) or [N, 3, 4] (3-D)"
        )
    rank = theta_shape[1]
    if size_shape is not None and size_shape != [rank + 2]:
        raise ShapeError(
            f"input 1 (size) has shape {size_shape}; expected [{rank + 2}] for theta "
            f"{theta_shape} (N, C and {rank} spatial lengths)"
        )
    align_corners = bool(attrs.get("align_corners", 0))
    if isinstance(size, tvm.ir.GenericConst):
        values = [int(v) for v in size.value.numpy().reshape(-1)]
        if values[0] != theta_shape[0] or any(v < 0 for v in values):
            raise ModelError(
                f"input 1 (size) is {values}; expected N = {theta_shape[0]} (from theta) "
                "and non-negative lengths"
            )
        sizes: list[Any] = values[2:]
    else:
        dims = bb.normalize(relax.op.astype(size, "int64"))
        sizes = list(runtime_shape(bb, dims, rank + 2, "affine_grid_dim").values)[2:]
    return bb.emit_te(
        _affine_grid_te, theta, sizes, align_corners, primfunc_name_hint="affine_grid"
    )

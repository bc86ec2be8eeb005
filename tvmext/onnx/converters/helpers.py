"""Helpers the ONNX converters share: constants of an exact dtype, static shapes, and
shapes read at run time."""

from __future__ import annotations

from typing import Any

import numpy as np
from tvm import relax, tirx


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

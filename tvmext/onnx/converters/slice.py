"""ONNX ``Slice`` whose starts or ends are functions of the input dimensions (a causal
mask cut to the sequence, ``x[:, -seq:]``).

TVM 0.27's converter then assumes every bound lies inside its axis, so an end of
``INT64_MAX`` ("to the end") beside a symbolic start gives a huge output shape, and a
start of ``seq - 3`` is wrong for a sequence shorter than 3. Here each bound that may
fall outside its axis is wrapped and clamped as the spec says, symbolically. Constant
bounds go to TVM's converter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tvm
from tvm import relax, tirx

from tvmext.dims import dim_analyzer, simplify_dim
from tvmext.errors import ShapeError
from tvmext.onnx.registry import register_converter


def _values(expr: relax.Expr | None) -> list[tirx.PrimExpr] | None:
    """A slice parameter as expressions: a ShapeExpr's values, a scalar PrimExpr, a
    constant's values; None when absent."""
    if expr is None:
        return None
    if isinstance(expr, relax.ShapeExpr):
        return list(expr.values)
    if tvm.ir.is_prim_expr(expr):
        return [expr if str(expr.ty) == "int64" else tirx.Cast("int64", expr)]
    if isinstance(expr, tvm.ir.GenericConst):
        return [tirx.IntImm("int64", int(v)) for v in expr.value.numpy().reshape(-1)]
    return []  # a tensor read at run time: TVM's converter


def _clamped(bound: tirx.PrimExpr, dim: tirx.PrimExpr) -> tirx.PrimExpr:
    """A start or end for a positive step, as the spec reads it: negative counts from
    the end, and the result is clamped to ``[0, dim]``. A symbolic bound that cannot be
    negative (``seq`` of ``position_ids[:, :seq]``) is taken as it is, inside the axis,
    as TVM's importer takes every bound: the model holds only for such inputs, and its
    shapes stay ``seq`` rather than ``min(seq, 512)``."""
    static_dim = isinstance(dim, tirx.IntImm)
    if isinstance(bound, tirx.IntImm):
        value = int(bound.value)
        if value >= (1 << 62):
            return dim  # "to the end"
        if value >= 0:
            return tirx.IntImm("int64", min(value, int(dim.value))) if static_dim else bound
        return simplify_dim(tirx.max(dim + value, tirx.IntImm("int64", 0)))
    if dim_analyzer(bound).can_prove(bound >= 0):
        return bound
    wrapped = tirx.Select(bound < 0, bound + dim, bound)
    return simplify_dim(tirx.min(tirx.max(wrapped, tirx.IntImm("int64", 0)), dim))


@register_converter("", "Slice", 10)
def slice_(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Slice with positive constant steps and bounds that are constants or functions of
    the input dims, each bound clamped to its axis; anything else goes to TVM."""
    data = inputs[0]
    params = [_values(inputs[i] if len(inputs) > i else None) for i in range(1, 5)]
    starts, ends, axes, steps = params
    symbolic = any(not isinstance(v, tirx.IntImm) for p in (starts, ends) if p for v in p)
    dims = list(data.ty.shape.values) if isinstance(data.ty.shape, relax.ShapeExpr) else None
    if not symbolic or dims is None or [] in params or starts is None or ends is None:
        return fallback()
    if not all(isinstance(v, tirx.IntImm) for p in (axes, steps) if p for v in p):
        return fallback()
    if len(starts) != len(ends):
        raise ShapeError(
            f"input 1 (starts) has {len(starts)} values and input 2 (ends) {len(ends)}; "
            f"expected as many"
        )
    rank = len(dims)
    chosen = [int(a) % rank for a in axes] if axes else list(range(len(starts)))
    strides = [int(s) for s in steps] if steps else [1] * len(starts)
    if len(chosen) != len(starts) or len(strides) != len(starts) or min(strides) <= 0:
        return fallback()
    begin = [_clamped(s, dims[a]) for s, a in zip(starts, chosen, strict=True)]
    end = [_clamped(e, dims[a]) for e, a in zip(ends, chosen, strict=True)]
    end = [simplify_dim(tirx.max(e, b)) for e, b in zip(end, begin, strict=True)]
    return relax.op.strided_slice(data, chosen, begin, end, strides, assume_inbound=True)

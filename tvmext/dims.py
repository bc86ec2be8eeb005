"""Shape dimensions as users read them (ints where known, names where symbolic), static
shapes, and symbolic dims as TVM's analyzer reasons about them (never negative)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tvm import relax, tirx
from tvm.sym.analyzer import Analyzer, ConstIntBound


def dim(d: Any) -> int | str:
    """``d`` as an int if it is a constant, else its symbolic name (``"n"``)."""
    return int(d) if isinstance(d, tirx.IntImm) else str(d)


def dims(shape: Iterable[Any]) -> list[int | str]:
    """Every dimension of ``shape`` through :func:`dim`."""
    return [dim(d) for d in shape]


def static_shape(expr: relax.Expr) -> list[int] | None:
    """The shape of a tensor expression as ints, or None when it is symbolic, unknown or
    not a tensor."""
    ty = expr.ty
    if not isinstance(ty, relax.TensorType) or not isinstance(ty.shape, relax.ShapeExpr):
        return None
    values = list(ty.shape.values)
    if not all(isinstance(d, tirx.IntImm) for d in values):
        return None
    return [int(d) for d in values]


def dim_analyzer(
    *exprs: tirx.PrimExpr, bounds: Mapping[str, tuple[int, int | None]] | None = None
) -> Analyzer:
    """An analyzer that knows every variable of ``exprs`` is a dimension (at least 0),
    within ``bounds`` (``{"seq": (2, 64)}``, None: no maximum) for those it names."""
    analyzer = Analyzer()
    for expr in exprs:
        for var in tirx.analysis.undefined_vars(expr):
            low, high = (bounds or {}).get(var.name, (0, None))
            top = ConstIntBound.POS_INF if high is None else high
            analyzer.update(var, ConstIntBound(max(low, 0), top), override=True)
    return analyzer


def simplify_dim(expr: tirx.PrimExpr) -> tirx.PrimExpr:
    """``expr`` simplified knowing that the dimensions it reads are not negative (so
    that ``max(seq - 0, 0)`` is ``seq``)."""
    return dim_analyzer(expr).simplify(expr)

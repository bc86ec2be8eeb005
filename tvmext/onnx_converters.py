"""Converters that fill gaps in TVM 0.27's ONNX importer, registered for ``ai.onnx``.

Each is an ordinary tvmext converter (:func:`tvmext.onnx_registry.register_converter`),
so the same mechanism serves vendors; nothing in TVM is patched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tvm import relax, tirx

from .onnx_registry import register_converter


def _static_shape(expr: relax.Expr) -> list[int] | None:
    ty = expr.ty
    if not isinstance(ty, relax.TensorType) or not isinstance(ty.shape, relax.ShapeExpr):
        return None
    dims = list(ty.shape.values)
    if not all(isinstance(d, tirx.IntImm) for d in dims):
        return None
    return [int(d) for d in dims]


# Ops TVM's importer lets take a ShapeExpr input (onnx_frontend._construct_nodes).
SHAPE_COMPATIBLE = {
    "Reshape", "Resize", "ConstantOfShape", "Gather", "Slice", "Shape", "Expand", "Concat",
    "Equal", "Where", "Cast", "CastLike", "Squeeze",
}  # fmt: skip


def _feeds_shape_incompatible_op(node: Any, consumers: list[str]) -> bool:
    return any(op not in SHAPE_COMPATIBLE for op in consumers)


@register_converter("", "Shape", 1, applies=_feeds_shape_incompatible_op)
def shape(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """A static shape becomes an int64 constant that every consumer accepts (TVM makes
    a ShapeExpr, which most ops reject: "cannot handle ShapeExpr inputs")."""
    dims = _static_shape(inputs[0])
    if dims is None:
        return fallback()
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return relax.const(np.array(dims[slice(start, end)], dtype=np.int64))


_CONSTANT_KINDS = {
    "value_float": np.float32,
    "value_floats": np.float32,
    "value_int": np.int64,
    "value_ints": np.int64,
}


@register_converter("", "Constant", 1)
def constant(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``Constant`` with ``value_float(s)``/``value_int(s)`` (TVM handles only ``value``)."""
    for key, dtype in _CONSTANT_KINDS.items():
        if key in attrs:
            return relax.const(np.array(attrs[key], dtype=dtype))
    return fallback()

"""ONNX Reshape to a shape that is a runtime tensor (TVM 0.27 needs a constant)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tvm
from tvm import relax

from tvmext.onnx.converters.helpers import const, runtime_shape, static_shape
from tvmext.onnx.registry import register_converter


@register_converter("", "Reshape", 5)
def reshape(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Reshape to a runtime shape tensor of static length: its 0 (copy the input's
    dimension, unless ``allowzero``) and -1 (infer) are resolved in Relax, then the
    tensor becomes a shape of symbolic dimensions."""
    data, target = inputs[0], inputs[1]
    if isinstance(target, tvm.ir.GenericConst | relax.ShapeExpr) or isinstance(
        data, relax.ShapeExpr
    ):
        return fallback()
    in_shape, target_shape = static_shape(data), static_shape(target)
    if in_shape is None or target_shape is None:
        return fallback()
    op = relax.op
    n = target_shape[0]
    dims = bb.emit(op.astype(target, "int64"))
    if not attrs.get("allowzero", 0):
        copied = np.array([*in_shape[:n], *[0] * max(n - len(in_shape), 0)], dtype=np.int64)
        dims = bb.emit(op.where(op.equal(dims, const(np.int64(0))), const(copied), dims))
    inferred = op.equal(dims, const(np.int64(-1)))
    known = op.prod(op.where(inferred, const(np.int64(1)), dims))
    total = const(np.int64(np.prod(in_shape, dtype=np.int64)))
    dims = op.where(inferred, op.floor_divide(total, known), dims)
    return op.reshape(data, runtime_shape(bb, dims, n, "reshape_dim"))

"""ONNX ``Expand`` to a shape computed at run time.

TVM 0.27's converter takes a runtime shape tensor's values as the output dimensions,
so a target dimension of 1 against a larger input dimension gives 1 instead of the
input's size (ONNX broadcasts both ways, like ``np.broadcast_to(x, shape) * ones``).
Constant shapes and shapes given as ``ShapeExpr`` go to TVM's converter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tvm
from tvm import relax

from tvmext.dims import static_shape
from tvmext.errors import ModelError
from tvmext.onnx.converters.helpers import const, runtime_shape
from tvmext.onnx.registry import register_converter


@register_converter("", "Expand", 8)
def expand(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Broadcast of the input and a runtime shape, right-aligned: each output dimension
    is the target's, or the input's where the target's is 1. An input dimension that is
    neither 1 nor the output's fails at run time."""
    data, target = inputs[0], inputs[1]
    if isinstance(target, relax.ShapeExpr | tvm.ir.GenericConst):
        return fallback()
    if not isinstance(data.ty, relax.TensorType) or data.ty.ndim < 0:
        raise ModelError("input 0 (input) has an unknown rank; expected a tensor of known rank")
    length = static_shape(target)
    if length is None or len(length) != 1:
        raise ModelError(
            f"input 1 (shape) has shape {length}; expected a 1-D int64 tensor of static length"
        )
    op = relax.op
    rank = max(length[0], data.ty.ndim)
    dims = [tvm.tirx.IntImm("int64", 1)] * (rank - data.ty.ndim) + list(data.ty.shape.values)
    target = op.astype(target, "int64")
    if rank > length[0]:
        target = op.concat([const(np.ones(rank - length[0], np.int64)), target], axis=0)
    target = bb.emit(target)
    one = const(np.int64(1))
    given = op.shape_to_tensor(op.shape_of(data))
    if rank > data.ty.ndim:
        given = op.concat([const(np.ones(rank - data.ty.ndim, np.int64)), given], axis=0)
    given = bb.emit(given)
    out = bb.emit(op.where(op.equal(target, one), given, target))
    # The input's dimensions as the output implies them: equal to the input's own unless
    # an input dimension other than 1 differs from the output's, which match_cast refuses.
    implied = bb.emit(op.where(op.equal(given, one), given, out))
    bb.match_cast(bb.emit(op.tensor_to_shape(implied)), relax.ShapeType(dims))
    return op.broadcast_to(data, runtime_shape(bb, out, rank, "expand_dim"))

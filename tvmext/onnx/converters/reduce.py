"""ONNX reductions whose ``axes`` is a runtime input (TVM 0.27 asserts constant axes),
and ReduceMax/ReduceMin over infinities (TVM's start at the largest finite values).

The rank of the input and the number of axes are static, so the output rank is
static; which axes are reduced, and hence the output shape, is data: every axis is
reduced conditionally (``where(axis is listed, reduced, x)``), and the result is sliced
(and, without ``keepdims``, reshaped) to a shape computed at run time. Constant axes
go to TVM's converter, except for ReduceMax/ReduceMin.
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

_Op = Callable[..., relax.Expr]


def _mean(x: relax.Expr, axis: Any, keepdims: bool) -> relax.Expr:
    return relax.op.mean(x, axis, keepdims)


def _extreme(reduce: _Op, infinity: float) -> _Op:
    """``reduce`` (max or min), but infinite where every element is ``infinity`` (TVM's
    max starts at the lowest finite value, so a row of -inf gives -3.4e38)."""

    def run(x: relax.Expr, axis: Any, keepdims: bool) -> relax.Expr:
        result = reduce(x, axis, keepdims)
        ty = getattr(x, "ty", None)
        if not isinstance(ty, relax.TensorType) or "float" not in str(ty.dtype):
            return result
        bound = const(np.array(infinity, dtype=str(ty.dtype)))
        inside = relax.op.not_equal(x, bound)
        has_other = relax.op.max(relax.op.astype(inside, "int32"), axis, keepdims)
        return relax.op.where(relax.op.greater(has_other, const(np.int32(0))), result, bound)

    return run


# op_type -> (prepare the data, reduce one axis, finish, value of an empty reduction)
_REDUCTIONS: dict[str, tuple[_Op | None, _Op, _Op | None, float]] = {
    "ReduceSum": (None, relax.op.sum, None, 0.0),
    "ReduceMean": (None, _mean, None, np.nan),
    "ReduceProd": (None, relax.op.prod, None, 1.0),
    "ReduceMax": (None, _extreme(relax.op.max, -np.inf), None, -np.inf),
    "ReduceMin": (None, _extreme(relax.op.min, np.inf), None, np.inf),
    "ReduceL1": (relax.op.abs, relax.op.sum, None, 0.0),
    "ReduceL2": (relax.op.square, relax.op.sum, relax.op.sqrt, 0.0),
    "ReduceSumSquare": (relax.op.square, relax.op.sum, None, 0.0),
    "ReduceLogSum": (None, relax.op.sum, relax.op.log, -np.inf),
    "ReduceLogSumExp": (relax.op.exp, relax.op.sum, relax.op.log, -np.inf),
}


def _empty_value(op_type: str, dtype: str) -> np.ndarray:
    """The value of a reduction over no elements, in ``dtype``."""
    value = _REDUCTIONS[op_type][3]
    if dtype == "bool":
        return np.array(value > 0)  # max: False, min: True
    if np.issubdtype(np.dtype(dtype), np.integer) and not np.isfinite(value):
        info = np.iinfo(np.dtype(dtype))
        value = info.min if value < 0 else info.max
    return np.array(value, dtype=dtype)


def _reduced_flags(bb: relax.BlockBuilder, axes: relax.Expr, rank: int) -> relax.Expr:
    """Bool [rank]: whether each axis is listed in the runtime ``axes``."""
    op = relax.op
    axes = op.astype(axes, "int64")
    axes = op.where(op.less(axes, const(np.int64(0))), op.add(axes, const(np.int64(rank))), axes)
    listed = op.equal(op.expand_dims(axes, 1), const(np.arange(rank, dtype=np.int64)))
    return bb.emit(op.greater(op.max(op.astype(listed, "int32"), axis=0), const(np.int32(0))))


def _reduce(
    bb: relax.BlockBuilder,
    op_type: str,
    data: relax.Expr,
    axes: relax.Expr,
    keepdims: bool,
    count: int,
) -> relax.Expr:
    op = relax.op
    shape = static_shape(data)
    if shape is None:
        raise ModelError("input 0 (data) has an unknown shape; runtime axes need a static one")
    rank, dtype = len(shape), str(data.ty.dtype)
    prepare, reduce_axis, finish, _ = _REDUCTIONS[op_type]
    flags = _reduced_flags(bb, axes, rank)
    out_dims = bb.emit(op.where(flags, const(np.ones(rank, np.int64)), const(np.array(shape))))
    if 0 in shape:
        value = const(_empty_value(op_type, dtype))
        # broadcast_to, not full: TVM's full cannot legalize an infinite fill value.
        sliced = bb.emit(op.broadcast_to(value, runtime_shape(bb, out_dims, rank, "reduced_dim")))
    else:
        work = op.astype(data, "uint8") if dtype == "bool" else data
        x = bb.emit(prepare(work) if prepare is not None else work)
        for axis in range(rank):
            reduced = op.broadcast_to(reduce_axis(x, axis, True), shape)
            chosen = op.take(flags, const(np.int64(axis)), axis=0)
            x = bb.emit(op.where(chosen, reduced, x))
        full = finish(x) if finish is not None else x
        if dtype == "bool":
            full = op.astype(full, "bool")
        zeros, ones = const(np.zeros(rank, np.int64)), const(np.ones(rank, np.int64))
        sliced = bb.emit(op.dynamic_strided_slice(bb.emit(full), zeros, out_dims, ones))
    if keepdims:
        return sliced
    # Without keepdims: the dimensions of the axes not reduced, in order.
    key = op.multiply(op.astype(flags, "int64"), const(np.int64(rank)))
    order = op.argsort(op.add(key, const(np.arange(rank, dtype=np.int64))), axis=0)
    kept = op.take(out_dims, op.strided_slice(order, [0], [0], [rank - count]), axis=0)
    return op.reshape(sliced, runtime_shape(bb, kept, rank - count, "reduced_dim"))


def _reduce_all(
    bb: relax.BlockBuilder, op_type: str, data: relax.Expr, keepdims: bool
) -> relax.Expr:
    """An empty runtime ``axes`` (its length is static) without noop: every axis."""
    shape = static_shape(data)
    if shape is None:
        raise ModelError("input 0 (data) has an unknown shape; runtime axes need a static one")
    dtype = str(data.ty.dtype)
    out_shape = [1] * len(shape) if keepdims else []
    if 0 in shape:
        return relax.op.broadcast_to(const(_empty_value(op_type, dtype)), out_shape)
    prepare, reduce_axis, finish, _ = _REDUCTIONS[op_type]
    work = relax.op.astype(data, "uint8") if dtype == "bool" else data
    x = reduce_axis(prepare(work) if prepare is not None else work, None, keepdims)
    x = finish(x) if finish is not None else x
    return relax.op.astype(x, "bool") if dtype == "bool" else x


def _convert(op_type: str) -> Callable[..., relax.Expr]:
    def convert(
        bb: relax.BlockBuilder,
        inputs: list[relax.Expr],
        attrs: dict[str, Any],
        fallback: Callable[[], relax.Expr],
    ) -> relax.Expr:
        axes = inputs[1] if len(inputs) > 1 else None
        if axes is None or isinstance(axes, tvm.ir.GenericConst):
            if op_type not in ("ReduceMax", "ReduceMin"):
                return fallback()
            listed = [] if axes is None else [int(a) for a in axes.value.numpy().reshape(-1)]
            if not listed and attrs.get("noop_with_empty_axes", 0):
                return inputs[0]
            reduce_axes = listed or None
            return _REDUCTIONS[op_type][1](inputs[0], reduce_axes, bool(attrs.get("keepdims", 1)))
        axes_shape = static_shape(axes)
        if axes_shape is None:
            raise ModelError("input 1 (axes) has an unknown length; expected a static one")
        data = inputs[0]
        keepdims = bool(attrs.get("keepdims", 1))
        if axes_shape[0] == 0:
            if attrs.get("noop_with_empty_axes", 0):
                return data
            return _reduce_all(bb, op_type, data, keepdims)
        return _reduce(bb, op_type, data, axes, keepdims, axes_shape[0])

    convert.__name__ = convert.__qualname__ = op_type.lower()
    convert.__doc__ = f"ONNX {op_type} with runtime axes (and infinities for max/min)."
    return convert


for _op_type in _REDUCTIONS:
    register_converter("", _op_type, 13 if _op_type == "ReduceSum" else 18)(_convert(_op_type))

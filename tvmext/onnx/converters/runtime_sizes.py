"""ONNX ops whose output shape is an input's value: ``Split`` with a runtime ``split``,
``TopK`` with a runtime ``K``, ``OneHot`` with a runtime ``depth``, ``Range`` of runtime
bounds, ``ConstantOfShape`` of a runtime shape, and ``EyeLike`` of any output dtype.

TVM 0.27's importer needs those values as constants (or, for ``Range`` and
``ConstantOfShape``, builds a module that does not compile). Here each such value is
read at run time into fresh symbolic dimensions (:func:`helpers.runtime_shape`), and the
outputs are TE computes over them. Where the spec makes a value an error (split sizes
that do not add up to the axis, ``K`` larger than the axis), the output's shape is
matched against the input's at run time, so that a wrong value fails instead of reading
out of bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tvm
from onnx import numpy_helper
from tvm import relax, te, tirx
from tvm.relax.frontend.onnx.onnx_frontend import get_type

from tvmext.dims import dims, simplify_dim
from tvmext.errors import ModelError, ShapeError
from tvmext.onnx.converters.helpers import const, runtime_shape
from tvmext.onnx.registry import register_converter

Fallback = Callable[[], relax.Expr]


def _constant(expr: relax.Expr | None) -> np.ndarray | None:
    if isinstance(expr, tvm.ir.GenericConst):
        return expr.value.numpy()
    return None


def _tensor_type(expr: relax.Expr, what: str) -> relax.TensorType:
    ty = expr.ty
    if not isinstance(ty, relax.TensorType) or ty.ndim < 0:
        raise ShapeError(f"{what} has an unknown rank; expected a tensor of known rank")
    return ty


def _shape_text(ty: relax.TensorType) -> str:
    if not isinstance(ty.shape, relax.ShapeExpr):
        return f"rank {ty.ndim}"
    return str(dims(ty.shape.values))


def _dims(bb: relax.BlockBuilder, expr: relax.Expr, what: str, prefix: str) -> list[tirx.Expr]:
    """``expr``'s dimensions, fresh symbolic ones where its shape is not known."""
    ty = _tensor_type(expr, what)
    if isinstance(ty.shape, relax.ShapeExpr):
        return list(ty.shape.values)
    dims = [tirx.Var(f"{prefix}{i}", "int64") for i in range(ty.ndim)]
    bb.match_cast(expr, relax.TensorType(dims, ty.dtype))
    return list(dims)


def _axis(axis: int, rank: int, what: str) -> int:
    if not -rank <= axis < rank:
        raise ModelError(f"axis {axis} is out of range for {what} of rank {rank}")
    return axis % rank


def _scalar(bb: relax.BlockBuilder, value: relax.Expr, what: str, prefix: str) -> tirx.Expr:
    """A scalar or one-element tensor as an int64 dimension: its constant value, or a
    symbolic one read at run time (non-integer values are cast to int64)."""
    ty = _tensor_type(value, what)
    known = _constant(value)
    if known is not None:
        if known.size != 1:
            raise ShapeError(f"{what} holds {known.size} values; expected exactly one")
        return tirx.IntImm("int64", int(known.reshape(-1)[0]))
    if ty.ndim > 1 or (isinstance(ty.shape, relax.ShapeExpr) and _numel(ty.shape) not in (1, None)):
        raise ShapeError(f"{what} has shape {_shape_text(ty)}; expected a scalar or one element")
    flat = relax.op.reshape(relax.op.astype(value, "int64"), [1])
    (dim,) = runtime_shape(bb, flat, 1, prefix).values
    return dim


def _numel(shape: relax.ShapeExpr) -> int | None:
    dims = list(shape.values)
    if not all(isinstance(d, tirx.IntImm) for d in dims):
        return None
    return int(np.prod([int(d) for d in dims], dtype=np.int64))


@register_converter("", "Split", 13)
def split(
    bb: relax.BlockBuilder, inputs: list[relax.Expr], attrs: dict[str, Any], fallback: Fallback
) -> relax.Expr:
    """Split into parts whose sizes are a runtime tensor (constant or absent sizes go to
    TVM's converter)."""
    sizes = inputs[1] if len(inputs) > 1 else None
    if sizes is None or _constant(sizes) is not None:
        return fallback()
    data = inputs[0]
    dims = _dims(bb, data, "input 0 (input)", "split_in")
    axis = _axis(int(attrs.get("axis", 0)), len(dims), "input 0 (input)")
    count = attrs["_num_outputs"]
    sizes_ty = _tensor_type(sizes, "input 1 (split)")
    length = sizes_ty.shape.values[0] if isinstance(sizes_ty.shape, relax.ShapeExpr) else None
    if sizes_ty.ndim != 1 or not isinstance(length, tirx.IntImm) or int(length) != count:
        raise ShapeError(
            f"input 1 (split) has shape {_shape_text(sizes_ty)}; expected one size per output "
            f"({count})"
        )
    if "num_outputs" in attrs:
        raise ModelError("both input 1 (split) and attribute num_outputs are given; expected one")
    parts = list(runtime_shape(bb, relax.op.astype(sizes, "int64"), count, "split_size").values)
    # The sizes must add up to the axis: matched at run time.
    whole = [*dims[:axis], sum(parts, tirx.IntImm("int64", 0)), *dims[axis + 1 :]]
    data = bb.match_cast(data, relax.TensorType(whole, _tensor_type(data, "input 0").dtype))

    def part(x: te.Tensor, offset: tirx.Expr, size: tirx.Expr) -> te.Tensor:
        shape = [*x.shape[:axis], size, *x.shape[axis + 1 :]]
        return te.compute(
            shape,
            lambda *i: x[(*i[:axis], i[axis] + offset, *i[axis + 1 :])],
            name="split_part",
        )

    outputs, offset = [], tirx.IntImm("int64", 0)
    for size in parts:
        outputs.append(bb.emit_te(part, data, offset, size, primfunc_name_hint="split_part"))
        offset = offset + size
    return relax.Tuple(outputs) if len(outputs) > 1 else outputs[0]


def _sort_key(data: relax.Expr) -> relax.Expr:
    """``data`` in a dtype TVM's CPU sort takes (int32, int64, float16/32/64), in the
    same order: narrow integers widened, uint64 with its top bit flipped as int64,
    bfloat16 as float32."""
    op = relax.op
    dtype = str(data.ty.dtype)
    if dtype in ("int32", "int64", "float16", "float32", "float64"):
        return data
    if dtype == "bfloat16":
        return op.astype(data, "float32")
    if dtype == "uint64":
        return op.astype(op.bitwise_xor(data, const(np.uint64(1 << 63))), "int64")
    return op.astype(data, "int64")


def _stable_argsort(data: relax.Expr, axis: int, descending: bool) -> relax.Expr:
    """Indices that sort ``data`` along ``axis``, equal values in index order (TVM's CPU
    sort is a stable sort), NaN as the largest value, as the reference's ``lexsort``."""
    op = relax.op
    key = _sort_key(data)
    dtype = str(key.ty.dtype) if isinstance(key.ty, relax.TensorType) else ""
    if not dtype.startswith("float"):
        return op.argsort(key, axis, descending, "int64")
    # Sorted by NaN-ness first, then (stably) by value with NaN as +inf: a NaN then ranks
    # above an +inf, and equal values keep their index order.
    nan = op.isnan(key)
    by_nan = op.argsort(op.astype(nan, "int32"), axis, descending, "int64")
    key = op.where(nan, const(np.array(np.inf, dtype=dtype)), key)
    key = op.gather_elements(key, by_nan, axis)
    order = op.argsort(key, axis, descending, "int64")
    return op.gather_elements(by_nan, order, axis)


def _topk(bb: relax.BlockBuilder, inputs: list[relax.Expr], attrs: dict[str, Any]) -> relax.Expr:
    data = inputs[0]
    dims = _dims(bb, data, "input 0 (X)", "topk_in")
    axis = _axis(int(attrs.get("axis", -1)), len(dims), "input 0 (X)")
    largest = bool(attrs.get("largest", 1))
    k = _scalar(bb, inputs[1], "input 1 (K)", "topk_k")
    order = bb.emit(_stable_argsort(data, axis, largest))
    # strided_slice clamps its end to the axis, so a K above the axis makes a shorter
    # result, and the match to K fails at run time rather than reading past the end.
    first = bb.emit(relax.op.strided_slice(order, [axis], [0], [k]))
    out_shape = [*dims[:axis], k, *dims[axis + 1 :]]
    indices = bb.match_cast(first, relax.TensorType(out_shape, "int64"))
    values = bb.emit(relax.op.gather_elements(data, indices, axis))
    return relax.Tuple([values, indices])


@register_converter("", "TopK", 10)
def topk(
    bb: relax.BlockBuilder, inputs: list[relax.Expr], attrs: dict[str, Any], fallback: Fallback
) -> relax.Expr:
    """TopK of a runtime ``K`` (a constant one goes to TVM's converter): a stable sort
    of the axis, so that equal values come in index order, and its first K entries."""
    if _constant(inputs[1]) is not None:
        return fallback()
    return _topk(bb, inputs, attrs)


def _one_hot(
    bb: relax.BlockBuilder, inputs: list[relax.Expr], attrs: dict[str, Any], wrap_negative: bool
) -> relax.Expr:
    indices, depth_in, values = inputs[0], inputs[1], inputs[2]
    dims = _dims(bb, indices, "input 0 (indices)", "onehot_in")
    rank = len(dims) + 1
    axis = _axis(int(attrs.get("axis", -1)), rank, "the output")
    depth = _scalar(bb, depth_in, "input 1 (depth)", "onehot_depth")
    values_ty = _tensor_type(values, "input 2 (values)")
    if values_ty.ndim != 1 or (
        isinstance(values_ty.shape, relax.ShapeExpr) and _numel(values_ty.shape) not in (2, None)
    ):
        raise ShapeError(
            f"input 2 (values) has shape {_shape_text(values_ty)}; expected two values [off, on]"
        )
    index_dtype = str(_tensor_type(indices, "input 0").dtype)

    def compute(idx: te.Tensor, vals: te.Tensor) -> te.Tensor:
        def at(*i: tirx.Expr) -> tirx.Expr:
            # Non-integer indices are cast to int64, as the spec says.
            index = idx[(*i[:axis], *i[axis + 1 :])]
            if index_dtype != "int64":
                index = tirx.Cast("int64", index)
            if wrap_negative:
                index = tirx.Select(index < 0, index + depth, index)
            return tirx.Select(index == i[axis], vals[1], vals[0])

        shape = [*dims[:axis], depth, *dims[axis:]]
        return te.compute(shape, at, name="one_hot")

    return bb.emit_te(compute, indices, values, primfunc_name_hint="one_hot")


@register_converter("", "OneHot", 9)
def one_hot_9(
    bb: relax.BlockBuilder, inputs: list[relax.Expr], attrs: dict[str, Any], fallback: Fallback
) -> relax.Expr:
    """OneHot (opset 9): indices outside ``[0, depth)`` give all ``off`` values."""
    return _one_hot(bb, inputs, attrs, wrap_negative=False)


@register_converter("", "OneHot", 11)
def one_hot(
    bb: relax.BlockBuilder, inputs: list[relax.Expr], attrs: dict[str, Any], fallback: Fallback
) -> relax.Expr:
    """OneHot of a runtime or constant ``depth``: indices in ``[-depth, 0)`` count from
    the end, those outside ``[-depth, depth)`` give all ``off`` values."""
    return _one_hot(bb, inputs, attrs, wrap_negative=True)


_STASH_TYPES = {1: "float32", 11: "float64"}


@register_converter("", "Range", 11)
def range_(
    bb: relax.BlockBuilder, inputs: list[relax.Expr], attrs: dict[str, Any], fallback: Fallback
) -> relax.Expr:
    """Range of runtime bounds: ``max(ceil((limit - start) / delta), 0)`` values
    ``start + i * delta``. Integers are computed exactly; floats in float64 (or in
    ``stash_type`` for float16 and bfloat16), as NumPy's ``arange`` in the reference."""
    if all(_constant(x) is not None for x in inputs):
        return fallback()
    symbolic = _symbolic_range(bb, inputs)
    if symbolic is not None:
        return symbolic
    names = ("input 0 (start)", "input 1 (limit)", "input 2 (delta)")
    dtype = str(_tensor_type(inputs[0], names[0]).dtype)
    for x, name in zip(inputs, names, strict=True):
        ty = _tensor_type(x, name)
        if ty.ndim != 0:
            raise ShapeError(f"{name} has rank {ty.ndim}; expected a scalar")
        if str(ty.dtype) != dtype:
            raise ShapeError(f"{name} is {ty.dtype}; expected {dtype}, as input 0 (start)")
    op = relax.op
    is_float = dtype.startswith(("float", "bfloat"))
    if is_float:
        compute_dtype = "float64"
        if "stash_type" in attrs and dtype in ("float16", "bfloat16"):
            stash = int(attrs["stash_type"])
            if stash not in _STASH_TYPES:
                raise ModelError(f"stash_type {stash} is not FLOAT (1) or DOUBLE (11)")
            compute_dtype = _STASH_TYPES[stash]
        start, limit, delta = (op.astype(x, "float64") for x in inputs)
        count = op.ceil(op.divide(op.subtract(limit, start), delta))
        count = op.astype(op.maximum(count, const(np.float64(0))), "int64")
    else:
        compute_dtype = "int64"
        start, limit, delta = (op.astype(x, "int64") for x in inputs)
        # ceil(a / b) as -floor(-a / b), exact for integers.
        count = op.negative(op.floor_divide(op.negative(op.subtract(limit, start)), delta))
        count = op.maximum(count, const(np.int64(0)))
    (length,) = runtime_shape(bb, op.reshape(count, [1]), 1, "range_len").values
    start = bb.emit(op.astype(inputs[0], compute_dtype))
    delta = bb.emit(op.astype(inputs[2], compute_dtype))

    def compute(first: te.Tensor, step: te.Tensor) -> te.Tensor:
        return te.compute(
            (length,),
            lambda i: tirx.Cast(dtype, first[()] + tirx.Cast(compute_dtype, i) * step[()]),
            name="range",
        )

    return bb.emit_te(compute, start, delta, primfunc_name_hint="range")


def _prim_scalar(x: relax.Expr) -> tirx.PrimExpr | None:
    """An integer scalar known at import, as a PrimExpr: a constant or a symbolic value
    the importer derived from input dimensions; None for anything else."""
    if tvm.ir.is_prim_expr(x):
        return x if str(x.ty).startswith("int") else None
    known = _constant(x)
    if known is not None and known.size == 1 and known.dtype.kind in "iu":
        return tirx.IntImm("int64", int(known.reshape(-1)[0]))
    return None


def _symbolic_range(bb: relax.BlockBuilder, inputs: list[relax.Expr]) -> relax.Expr | None:
    """Range of integer bounds that are functions of input dimensions, with a constant
    positive step (``Range(0, seq, 1)`` of position ids): its length is a symbolic
    dimension, so the rest of the graph keeps symbolic shapes."""
    start, limit, delta = (_prim_scalar(x) for x in inputs)
    if start is None or limit is None or not isinstance(delta, tirx.IntImm) or delta.value <= 0:
        return None
    if not any(tvm.ir.is_prim_expr(x) for x in inputs):
        return None
    dtype = str(inputs[0].ty) if tvm.ir.is_prim_expr(inputs[0]) else str(inputs[0].ty.dtype)
    start, limit = (tirx.Cast("int64", v) if str(v.ty) != "int64" else v for v in (start, limit))
    length = simplify_dim(tirx.max(tirx.floordiv(limit - start + delta - 1, delta), 0))

    def compute() -> te.Tensor:
        return te.compute((length,), lambda i: tirx.Cast(dtype, start + i * delta), name="range")

    return bb.emit_te(compute, primfunc_name_hint="range")


def _fill_value(attrs: dict[str, Any]) -> np.ndarray:
    tensor = attrs.get("value")
    if tensor is None:
        return np.zeros((), dtype=np.float32)
    value = numpy_helper.to_array(tensor)
    if value.size != 1:
        raise ModelError(f"attribute value holds {value.size} values; expected exactly one")
    return value.reshape(())


@register_converter("", "ConstantOfShape", 9)
def constant_of_shape(
    bb: relax.BlockBuilder, inputs: list[relax.Expr], attrs: dict[str, Any], fallback: Fallback
) -> relax.Expr:
    """ConstantOfShape of a runtime shape tensor (a constant one goes to TVM)."""
    shape = inputs[0]
    if _constant(shape) is not None or isinstance(shape, relax.ShapeExpr):
        return fallback()
    ty = _tensor_type(shape, "input 0 (input)")
    length = ty.shape.values[0] if isinstance(ty.shape, relax.ShapeExpr) and ty.ndim == 1 else None
    if not isinstance(length, tirx.IntImm):
        raise ShapeError(
            f"input 0 (input) has shape {_shape_text(ty)}; expected a 1-D tensor of static length"
        )
    value = _fill_value(attrs)
    dims = runtime_shape(bb, relax.op.astype(shape, "int64"), int(length), "constant_dim")
    return relax.op.full(dims, const(value), str(value.dtype))


@register_converter("", "EyeLike", 9)
def eye_like(
    bb: relax.BlockBuilder, inputs: list[relax.Expr], attrs: dict[str, Any], fallback: Fallback
) -> relax.Expr:
    """EyeLike: ones on diagonal ``k`` of a matrix shaped as the input, in the ``dtype``
    attribute's type (TVM refuses one that differs from the input's)."""
    data = inputs[0]
    dims = _dims(bb, data, "input 0 (input)", "eye_in")
    if len(dims) != 2:
        raise ShapeError(f"input 0 (input) has rank {len(dims)}; expected a 2-D tensor")
    dtype = get_type(attrs["dtype"]) if "dtype" in attrs else str(data.ty.dtype)
    k = int(attrs.get("k", 0))

    def compute() -> te.Tensor:
        one, zero = tirx.const(1, dtype), tirx.const(0, dtype)
        return te.compute(dims, lambda i, j: tirx.Select(j - i == k, one, zero), name="eye_like")

    return bb.emit_te(compute, primfunc_name_hint="eye_like")

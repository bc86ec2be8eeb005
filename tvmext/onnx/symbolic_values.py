"""Shape computations of an ONNX graph kept as functions of the input dimensions.

Exports with dynamic axes compute shapes at run time: ``Shape -> Gather -> Unsqueeze
-> Concat -> Reshape``, position ids as ``Range(0, Gather(Shape(x), 1), 1)``, masks
through ``Equal``/``Where`` on shape values. If those values became tensors read at run
time, every shape after them would be a fresh unknown and nothing downstream could be
planned, fused or handed to oneDNN. Here a default-domain node whose inputs are all
known at import (constants, shapes of tensors whose dimensions are symbolic, and
values derived from them) is evaluated at import on arrays of ``tirx`` expressions
over the input dimensions (``batch``, ``seq``), so that a reshape to
``[batch, seq, 12, 64]`` stays exactly that.

A known value reaches the converters as TVM's importer expects a shape value: a 1-D
int64 one as a ``relax.ShapeExpr``, an integer scalar as a ``PrimExpr``. A consumer that
takes it as data instead (an ``Add`` with a tensor, a ``Cast`` to float) gets it as a
tensor (:func:`as_tensor`), computed from the dimensions at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import tvm
from tvm import relax, tirx

from tvmext.dims import simplify_dim

# Values larger than this stay computations (they are not shapes).
MAX_ELEMENTS = 64

_INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


@dataclass(frozen=True)
class SymbolicValue:
    """A small integer or boolean tensor known at import: ``values`` holds one
    ``tirx`` expression per element (int64 for integers, bool for booleans), ``dtype``
    the ONNX element type."""

    values: np.ndarray  # dtype=object
    dtype: str

    @property
    def is_constant(self) -> bool:
        return all(isinstance(v, tirx.IntImm) for v in self.values.flat)


def _int(value: int) -> tirx.PrimExpr:
    return tirx.IntImm("int64", int(value))


def _from_constant(array: np.ndarray) -> SymbolicValue | None:
    dtype = str(array.dtype)
    if array.size > MAX_ELEMENTS or (dtype not in _INT_TYPES and dtype != "bool"):
        return None
    if dtype == "uint64" and array.size and int(array.max()) > np.iinfo(np.int64).max:
        return None  # values are held as int64
    if dtype == "bool":
        flat = [tirx.IntImm("bool", int(v)) for v in array.flat]
    else:
        flat = [_int(v) for v in array.flat]
    return SymbolicValue(np.array(flat, dtype=object).reshape(array.shape), dtype)


def known_value(expr: Any) -> SymbolicValue | None:
    """What the importer knows of ``expr`` at import: a small integer constant, a shape
    expression or an integer scalar expression; None for a tensor computed at run time."""
    if isinstance(expr, tvm.ir.GenericConst):
        if int(np.prod(expr.value.shape)) > MAX_ELEMENTS:
            return None  # a weight: not copied out to be looked at
        return _from_constant(expr.value.numpy())
    if isinstance(expr, relax.ShapeExpr):
        return SymbolicValue(np.array(list(expr.values), dtype=object), "int64")
    if tvm.ir.is_prim_expr(expr) and str(expr.ty) in (*_INT_TYPES, "bool"):
        dtype = str(expr.ty)
        value = expr if dtype in ("int64", "bool") else tirx.Cast("int64", expr)
        return SymbolicValue(np.array(value, dtype=object), dtype)
    return None


def tensor_dims(expr: Any) -> list[tirx.PrimExpr] | None:
    """The dimensions of a tensor of known rank and shape (static or symbolic)."""
    ty = getattr(expr, "ty", None)
    if not isinstance(ty, relax.TensorType) or not isinstance(ty.shape, relax.ShapeExpr):
        return None
    return list(ty.shape.values)


def _simplified(values: np.ndarray) -> np.ndarray:
    out = np.empty(values.shape, dtype=object)
    for index, value in np.ndenumerate(values):
        if isinstance(value, bool | np.bool_):
            value = tirx.IntImm("bool", int(value))
        elif isinstance(value, int | np.integer):
            value = _int(int(value))
        out[index] = simplify_dim(value)
    return out


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _ints(value: SymbolicValue | None) -> list[int] | None:
    if value is None or not value.is_constant:
        return None
    return [int(v) for v in value.values.flat]


def _axes(node: onnx.NodeProto, inputs: Sequence[SymbolicValue | None], rank: int) -> list[int]:
    axes = _attr(node, "axes")
    if axes is None:
        axes = _ints(inputs[1]) if len(inputs) > 1 else None
    if axes is None:
        raise _NotKnown
    return sorted(a % rank for a in axes)


class _NotKnown(Exception):
    """The node's output is not known at import (a runtime index, a float result)."""


def _binary(fn: Callable[[Any, Any], Any], dtype: str | None = None) -> Callable[..., Any]:
    def evaluate(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
        if x[0].dtype == "bool" and dtype is None:
            raise _NotKnown
        result = np.frompyfunc(fn, 2, 1)(x[0].values, x[1].values)
        return SymbolicValue(np.asarray(result, dtype=object), dtype or x[0].dtype)

    return evaluate


def _logical(fn: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def evaluate(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
        result = np.frompyfunc(fn, 2, 1)(x[0].values, x[1].values)
        return SymbolicValue(np.asarray(result, dtype=object), "bool")

    return evaluate


def _div(a: Any, b: Any) -> Any:
    return tirx.truncdiv(a, b)  # ONNX's integer Div truncates toward zero


def _shape(node: onnx.NodeProto, dims: list[tirx.PrimExpr]) -> SymbolicValue:
    start, end = _attr(node, "start", 0), _attr(node, "end", len(dims))
    return SymbolicValue(np.array(dims[slice(start, end)], dtype=object), "int64")


def _gather(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
    indices = _ints(x[1])
    if indices is None:
        raise _NotKnown
    axis = _attr(node, "axis", 0) % x[0].values.ndim
    extent = x[0].values.shape[axis]
    index = np.array(indices, dtype=np.int64).reshape(x[1].values.shape)
    if np.any((index < -extent) | (index >= extent)):
        raise _NotKnown  # the converter reports the out-of-range index
    return SymbolicValue(np.take(x[0].values, index % extent, axis=axis), x[0].dtype)


def _unsqueeze(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
    values = x[0].values
    count = len(_attr(node, "axes") or _ints(x[1]) or [])
    axes = _axes(node, x, values.ndim + count)
    for axis in axes:
        values = np.expand_dims(values, axis)
    return SymbolicValue(values, x[0].dtype)


def _squeeze(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
    values = x[0].values
    if _attr(node, "axes") is None and len(x) < 2:
        return SymbolicValue(np.squeeze(values), x[0].dtype)
    return SymbolicValue(np.squeeze(values, tuple(_axes(node, x, values.ndim))), x[0].dtype)


def _concat(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
    axis = _attr(node, "axis", 0)
    return SymbolicValue(np.concatenate([v.values for v in x], axis=axis), x[0].dtype)


def _slice(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
    values = x[0].values
    if _attr(node, "starts") is not None:  # opset < 10
        starts, ends, axes, steps = (
            _attr(node, "starts"),
            _attr(node, "ends"),
            _attr(node, "axes"),
            None,
        )
    else:
        starts, ends = _ints(x[1]), _ints(x[2])
        axes = _ints(x[3]) if len(x) > 3 and x[3] is not None else None
        steps = _ints(x[4]) if len(x) > 4 and x[4] is not None else None
        if starts is None or ends is None:
            raise _NotKnown
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps or [1] * len(starts)
    index: list[slice] = [slice(None)] * values.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        if step == 0:
            raise _NotKnown
        index[axis % values.ndim] = slice(start, end, step)
    return SymbolicValue(values[tuple(index)], x[0].dtype)


def _cast(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
    dtype = onnx.helper.tensor_dtype_to_np_dtype(_attr(node, "to")).name
    if dtype == "bool":
        values = np.frompyfunc(lambda v: v if str(v.ty) == "bool" else v != 0, 1, 1)(x[0].values)
    elif dtype in _INT_TYPES:
        values = np.frompyfunc(lambda v: tirx.Cast("int64", v) if str(v.ty) == "bool" else v, 1, 1)(
            x[0].values
        )
    else:
        raise _NotKnown  # float values stay tensors
    return SymbolicValue(np.asarray(values, dtype=object), dtype)


def _reshape(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
    target = _ints(x[1])
    if target is None:
        raise _NotKnown
    values = x[0].values
    if not _attr(node, "allowzero", 0):
        target = [values.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return SymbolicValue(values.reshape(target), x[0].dtype)


def _where(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
    select = np.frompyfunc(tirx.Select, 3, 1)
    values = select(x[0].values, x[1].values, x[2].values)
    return SymbolicValue(np.asarray(values, dtype=object), x[1].dtype)


def _variadic(fn: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def evaluate(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
        values = x[0].values
        for other in x[1:]:
            values = np.frompyfunc(fn, 2, 1)(values, other.values)
        return SymbolicValue(np.asarray(values, dtype=object), x[0].dtype)

    return evaluate


def _not(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
    values = np.frompyfunc(tirx.Not, 1, 1)(x[0].values)
    return SymbolicValue(np.asarray(values, dtype=object), "bool")


def _neg(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
    values = np.frompyfunc(lambda v: -v, 1, 1)(x[0].values)
    return SymbolicValue(np.asarray(values, dtype=object), x[0].dtype)


def _identity(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
    return x[0]


def _expand(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
    shape = _ints(x[1])
    if shape is None:
        raise _NotKnown
    values = x[0].values
    rank = max(values.ndim, len(shape))
    current = [1] * (rank - values.ndim) + list(values.shape)
    shape = [1] * (rank - len(shape)) + shape
    out = [c if s == 1 else s for c, s in zip(current, shape, strict=True)]
    return SymbolicValue(np.broadcast_to(values.reshape(current), out), x[0].dtype)


def _reduce(fn: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def evaluate(node: onnx.NodeProto, x: list[SymbolicValue]) -> SymbolicValue:
        values = x[0].values
        given = _attr(node, "axes") if _attr(node, "axes") is not None else None
        if given is None and len(x) > 1 and x[1] is not None:
            given = _ints(x[1])
            if given is None:
                raise _NotKnown
        axes = tuple(a % values.ndim for a in given) if given else tuple(range(values.ndim))
        keepdims = bool(_attr(node, "keepdims", 1))
        ufunc = np.frompyfunc(fn, 2, 1)
        for axis in sorted(axes, reverse=True):  # one axis at a time: no identity needed
            values = ufunc.reduce(values, axis=axis, keepdims=keepdims)
        return SymbolicValue(np.asarray(values, dtype=object), x[0].dtype)

    return evaluate


# Evaluators by op type: each takes the node and its inputs' known values (None for an
# absent optional input) and returns the output's value or raises _NotKnown.
_EVALUATORS: dict[str, Callable[[onnx.NodeProto, list[Any]], SymbolicValue]] = {
    "Add": _binary(lambda a, b: a + b),
    "Sub": _binary(lambda a, b: a - b),
    "Mul": _binary(lambda a, b: a * b),
    "Div": _binary(_div),
    "Mod": _binary(tirx.floormod),  # fmod=0: the sign of the divisor (checked below)
    "Max": _variadic(tirx.max),
    "Min": _variadic(tirx.min),
    "Neg": _neg,
    "Equal": _logical(lambda a, b: a == b),
    "Less": _logical(lambda a, b: a < b),
    "LessOrEqual": _logical(lambda a, b: a <= b),
    "Greater": _logical(lambda a, b: a > b),
    "GreaterOrEqual": _logical(lambda a, b: a >= b),
    "And": _logical(tirx.And),
    "Or": _logical(tirx.Or),
    "Not": _not,
    "Where": _where,
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": _concat,
    "Slice": _slice,
    "Cast": _cast,
    "Reshape": _reshape,
    "Identity": _identity,
    "Expand": _expand,
    "ReduceProd": _reduce(lambda a, b: a * b),
    "ReduceSum": _reduce(lambda a, b: a + b),
    "ReduceMax": _reduce(tirx.max),
    "ReduceMin": _reduce(tirx.min),
}


def evaluate(
    node: onnx.NodeProto, inputs: Sequence[Any], known: Sequence[SymbolicValue | None]
) -> SymbolicValue | None:
    """The value of a one-output default-domain ``node`` at import, when it is a function
    of input dimensions (at least one input is not a constant); None otherwise.
    ``inputs`` are the Relax inputs, ``known`` what :func:`known_value` (or an earlier
    evaluation) says of each."""
    if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
        return None
    if node.op_type in ("Shape", "Size"):
        dims = tensor_dims(inputs[0]) if inputs else None
        if dims is None or all(isinstance(d, tirx.IntImm) for d in dims):
            return None  # unknown (the converter reads it at run time) or constant
        if node.op_type == "Size":
            size = simplify_dim(np.prod(np.array(dims, dtype=object)) if dims else _int(1))
            return SymbolicValue(np.array(size, dtype=object), "int64")
        return _shape(node, dims)
    evaluator = _EVALUATORS.get(node.op_type)
    present = [v for name, v in zip(node.input, known, strict=False) if name]
    if evaluator is None or not present or any(v is None for v in present):
        return None
    if all(v is not None and v.is_constant for v in present):
        return None  # constant folding's case
    if node.op_type == "Mod" and _attr(node, "fmod", 0):
        return None
    given = [v if name else None for name, v in zip(node.input, known, strict=False)]
    try:
        result = evaluator(node, given)
    except (_NotKnown, ValueError, IndexError):
        return None
    values = np.asarray(result.values, dtype=object)  # np.take of a scalar index: an element
    if values.size > MAX_ELEMENTS:
        return None
    return SymbolicValue(_simplified(values), result.dtype)


# Inputs whose converters take a shape value (a ShapeExpr or PrimExpr) as a shape; any
# other input gets a known value as a tensor.
SHAPE_INPUTS: dict[str, frozenset[int]] = {
    "Reshape": frozenset({1}),
    "Expand": frozenset({1}),
    "ConstantOfShape": frozenset({0}),
    "Range": frozenset({0, 1, 2}),
    "Slice": frozenset({1, 2, 3, 4}),
    "Resize": frozenset({3}),
    "Tile": frozenset({1}),
}


def is_shape_value(expr: Any) -> bool:
    """Whether ``expr`` is a shape value rather than a tensor."""
    return isinstance(expr, relax.ShapeExpr) or tvm.ir.is_prim_expr(expr)


def as_relax(value: SymbolicValue) -> relax.Expr:
    """A known value as the importer passes shape values on: a constant when every
    element is one, a ``ShapeExpr`` for 1-D int64, a ``PrimExpr`` for an integer scalar,
    else a tensor computed at run time."""
    if value.is_constant:
        array = np.array([int(v) for v in value.values.flat]).astype(value.dtype)
        return relax.const(array.reshape(value.values.shape), value.dtype)
    if value.dtype == "int64" and value.values.ndim == 1:
        return relax.ShapeExpr(list(value.values))
    if value.values.ndim == 0 and value.dtype in _INT_TYPES:
        scalar = value.values[()]
        return scalar if value.dtype == "int64" else tirx.Cast(value.dtype, scalar)
    return as_tensor(value)


def as_tensor(value: SymbolicValue) -> relax.Expr:
    """A known value as a tensor of its ONNX dtype, computed from the dimensions at run
    time (for consumers that take it as data)."""
    flat = [v if str(v.ty) == "int64" else tirx.Cast("int64", v) for v in value.values.flat]
    if not flat:
        return relax.const(np.zeros(value.values.shape, dtype=value.dtype), value.dtype)
    tensor = relax.op.shape_to_tensor(relax.ShapeExpr(flat))
    tensor = relax.op.reshape(tensor, list(value.values.shape))
    if value.dtype == "bool":
        return relax.op.not_equal(tensor, relax.const(0, "int64"))
    return tensor if value.dtype == "int64" else relax.op.astype(tensor, value.dtype)

"""ONNX ``Pad`` (opsets 11-25): every mode (constant, edge, reflect, wrap), negative
pads, and ``pads``, ``constant_value`` and ``axes`` given at run time.

TVM 0.27's converter needs constant pads and axes and has no ``wrap`` mode. The common
case (constant mode, constant non-negative pads, a float tensor of static shape) becomes
Relax's ``nn.pad``, which later passes read (``tvmext.fold_pad_into_conv``); the rest
is a TE compute. Along each axis a negative pad first removes elements, then a positive
one adds elements filled by the mode as ``np.pad`` (the reference) fills them: ``edge``
repeats the border, ``reflect`` mirrors without repeating it (again past the far edge
when the pad is longer than the axis), ``wrap`` continues periodically. Pads and axes
known at compile time give a static output shape; pads or axes given at run time give
symbolic dimensions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tvm
from tvm import relax, te, tirx

from tvmext.dims import static_shape
from tvmext.errors import ModelError, ShapeError
from tvmext.onnx.converters.helpers import const, runtime_shape
from tvmext.onnx.registry import register_converter

_MODES = ("constant", "edge", "reflect", "wrap")


def _constant(expr: relax.Expr | None) -> np.ndarray | None:
    if isinstance(expr, tvm.ir.GenericConst):
        return expr.value.numpy()
    return None


def _i64(value: int | tirx.PrimExpr | te.TensorSlice) -> tirx.PrimExpr:
    if isinstance(value, te.TensorSlice):
        value = value.asobject()
    if isinstance(value, int):
        return tirx.const(value, "int64")
    return value if str(value.ty) == "int64" else tirx.Cast("int64", value)


def _source(mode: str, s: tirx.PrimExpr, kept: tirx.PrimExpr) -> tirx.PrimExpr:
    """Index into an axis of ``kept`` elements that output position ``s`` (relative to
    its first element) reads; for constant mode, ``s`` clamped (read only inside)."""
    zero, one = _i64(0), _i64(1)
    if mode in ("constant", "edge"):
        return tirx.max(tirx.min(s, kept - one), zero)
    if mode == "wrap":
        return tirx.floormod(s, tirx.max(kept, one))
    period = _i64(2) * (kept - one)  # reflect: a mirror image every 2 (kept - 1)
    r = tirx.floormod(s, tirx.max(period, one))
    return tirx.Select(r >= kept, period - r, r)


def _pad_te(
    data: te.Tensor,
    begin: list[int] | te.Tensor,
    end: list[int] | te.Tensor,
    value: te.Tensor | None,
    out_shape: list[tirx.PrimExpr] | None,
    mode: str,
) -> te.Tensor:
    """``data`` padded; ``out_shape`` None: the static pads' ``n + begin + end``."""
    rank = len(data.shape)
    dtype = str(data.dtype)
    fill = tirx.const(0, dtype) if value is None else value[()].asobject()
    zero = _i64(0)
    # Per axis: elements removed before, elements kept, elements added before.
    plans = []
    for d in range(rank):
        b, e = _i64(begin[d]), _i64(end[d])
        removed = tirx.max(-b, zero)
        kept = _i64(data.shape[d]) - removed - tirx.max(-e, zero)
        plans.append((removed, kept, tirx.max(b, zero)))

    def pad_value(*index: tirx.PrimExpr) -> tirx.PrimExpr:
        source, inside = [], []
        for o, (removed, kept, added) in zip(index, plans, strict=True):
            s = _i64(o) - added
            inside.append(tirx.all(s >= zero, s < kept))
            source.append(removed + _source(mode, s, kept))
        read = data[tuple(source)]
        if mode != "constant":
            return read
        return tirx.if_then_else(tirx.all(*inside), read, fill)

    if out_shape is None:
        out_shape = [
            _i64(n) + _i64(b) + _i64(e) for n, b, e in zip(data.shape, begin, end, strict=True)
        ]
    return te.compute(out_shape, pad_value, name="pad")


def _full_widths(
    bb: relax.BlockBuilder, pads: relax.Expr, axes: relax.Expr | None, rank: int, count: int
) -> tuple[relax.Expr, relax.Expr]:
    """Runtime ``pads`` (begins, then ends, of ``count`` axes) as int64 [rank] begins
    and ends of every axis: an axis not listed in ``axes`` gets 0."""
    op = relax.op
    pads = bb.match_cast(
        bb.normalize(op.astype(pads, "int64")), relax.TensorType([2 * count], "int64")
    )
    begins = op.strided_slice(pads, axes=[0], begin=[0], end=[count])
    ends = op.strided_slice(pads, axes=[0], begin=[count], end=[2 * count])
    if axes is None:
        return bb.emit(begins), bb.emit(ends)
    axes = op.astype(axes, "int64")
    axes = op.where(op.less(axes, const(np.int64(0))), op.add(axes, const(np.int64(rank))), axes)
    # [count, rank]: 1 where the i-th listed axis is axis d.
    listed = op.astype(
        op.equal(op.expand_dims(axes, 1), const(np.arange(rank, dtype=np.int64))), "int64"
    )
    widths = []
    for part in (begins, ends):
        widths.append(bb.emit(op.sum(op.multiply(op.expand_dims(part, 1), listed), axis=0)))
    return widths[0], widths[1]


def _static_widths(
    pads: np.ndarray, axes: list[int] | None, rank: int
) -> tuple[list[int], list[int]]:
    widths = [int(p) for p in pads.reshape(-1)]
    listed = axes if axes is not None else list(range(rank))
    if len(widths) != 2 * len(listed):
        raise ShapeError(
            f"input 1 (pads) holds {len(widths)} values; expected 2 per padded axis "
            f"({2 * len(listed)})"
        )
    begin, end = [0] * rank, [0] * rank
    for i, axis in enumerate(listed):
        begin[axis], end[axis] = widths[i], widths[len(listed) + i]
    return begin, end


def _static_axes(axes: np.ndarray, rank: int) -> list[int]:
    listed = [int(a) for a in axes.reshape(-1)]
    bad = [a for a in listed if not -rank <= a < rank]
    if bad:
        raise ShapeError(
            f"input 3 (axes) holds {bad[0]}, out of range for input 0 of rank {rank}; "
            f"expected axes in [{-rank}, {rank})"
        )
    listed = [a % rank for a in listed]
    if len(set(listed)) != len(listed):
        raise ShapeError(f"input 3 (axes) {axes.tolist()} repeats an axis; expected distinct axes")
    return listed


def _check_static(mode: str, shape: list[int] | None, begin: list[int], end: list[int]) -> None:
    """Errors the reference raises, where the input shape is known."""
    if shape is None:
        return
    for axis, (n, b, e) in enumerate(zip(shape, begin, end, strict=True)):
        kept = n - max(-b, 0) - max(-e, 0)
        if kept < 0 or n + b + e < 0:
            raise ShapeError(
                f"input 1 (pads) removes more than the {n} elements of axis {axis} "
                f"(pads {b} and {e}); expected at most the axis length"
            )
        if mode != "constant" and kept == 0 and (b > 0 or e > 0):
            raise ShapeError(
                f"mode {mode!r} cannot pad axis {axis}, which has no elements left; "
                "expected a non-empty axis or mode 'constant'"
            )


def _as_nn_pad(data: relax.Expr, begin: list[int], end: list[int], fill: float) -> relax.Expr:
    width = [w for pair in zip(begin, end, strict=True) for w in pair]  # Relax: per axis
    return relax.op.nn.pad(data, width, "constant", fill)


@register_converter("", "Pad", 11)
def pad(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX Pad: ``nn.pad`` for constant non-negative pads of a float tensor in constant
    mode, a TE compute otherwise."""
    data = inputs[0]
    pads, value, axes = (inputs[i] if len(inputs) > i else None for i in (1, 2, 3))
    mode = attrs.get("mode", "constant")
    if mode not in _MODES:
        raise ModelError(f"mode {mode!r} is not one of {', '.join(map(repr, _MODES))}")
    if not isinstance(data.ty, relax.TensorType) or data.ty.ndim < 0:
        raise ModelError("input 0 (data) has an unknown rank; expected a tensor of known rank")
    if pads is None:
        raise ModelError("input 1 (pads) is missing; expected an int64 tensor of pads")
    rank, dtype = data.ty.ndim, str(data.ty.dtype)
    shape = static_shape(data)
    value_const = _constant(value)
    if value is not None:
        value_shape = static_shape(value)
        if value_shape is None or int(np.prod(value_shape)) != 1:
            raise ShapeError(
                f"input 2 (constant_value) has type {value.ty}; expected a single value"
            )
        if str(value.ty.dtype) != dtype:
            raise ShapeError(
                f"input 2 (constant_value) is {value.ty.dtype}; expected {dtype}, the type "
                "of input 0 (data)"
            )
        value = bb.normalize(relax.op.reshape(value, []))

    axes_const = _constant(axes)
    listed = _static_axes(axes_const, rank) if axes_const is not None else None
    pads_const = _constant(pads)
    if pads_const is not None and (axes is None or listed is not None):
        begin, end = _static_widths(pads_const, listed, rank)
        _check_static(mode, shape, begin, end)
        fill_known = value is None or value_const is not None
        if (
            mode == "constant"
            and fill_known
            and rank > 0
            and isinstance(data.ty.shape, relax.ShapeExpr)  # static or symbolic dims
            and dtype.startswith("float")
            and min(begin + end, default=0) >= 0
        ):
            fill = 0.0 if value_const is None else float(value_const.reshape(-1)[0])
            return _as_nn_pad(data, begin, end, fill)
        return bb.emit_te(_pad_te, data, begin, end, value, None, mode, primfunc_name_hint="pad")

    count = rank
    if axes is not None:
        axes_shape, pads_shape = static_shape(axes), static_shape(pads)
        if axes_shape is not None and len(axes_shape) == 1:
            count = axes_shape[0]
        elif pads_shape is not None and len(pads_shape) == 1 and pads_shape[0] % 2 == 0:
            count = pads_shape[0] // 2
        else:
            raise ShapeError(
                f"input 3 (axes) has type {axes.ty} and input 1 (pads) {pads.ty}; expected "
                "a 1-D axes or pads tensor of static length"
            )
        axes = bb.match_cast(
            bb.normalize(relax.op.astype(axes, "int64")), relax.TensorType([count], "int64")
        )
    pads_shape = static_shape(pads)
    if pads_shape is not None and pads_shape != [2 * count]:
        raise ShapeError(
            f"input 1 (pads) has shape {pads_shape}; expected [{2 * count}], 2 per padded axis"
        )
    begin_t, end_t = _full_widths(bb, pads, axes, rank, count)
    op = relax.op
    dims = op.shape_to_tensor(op.shape_of(data))
    out_dims = runtime_shape(bb, op.add(op.add(dims, begin_t), end_t), rank, "pad_dim")
    return bb.emit_te(
        _pad_te, data, begin_t, end_t, value, list(out_dims.values), mode, primfunc_name_hint="pad"
    )

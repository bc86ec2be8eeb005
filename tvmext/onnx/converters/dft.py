"""ONNX spectral transforms TVM 0.27's importer lacks: DFT (opsets 17 and 20) and
STFT.

A transform is a direct sum over the samples of a ``te.compute``, in float64 and with
the twiddle angle reduced modulo the transform length before it is scaled, then cast
to the output dtype; it follows the ONNX reference (``onnx/reference/ops/op_dft.py``,
``op_stft.py``), which follows ``numpy.fft``. Lengths, steps and axes given as runtime
tensors become symbolic dimensions, and so do the output dimensions that depend on
them; constant ones stay static.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import tvm
from tvm import relax, te, tirx

from tvmext.dims import static_shape
from tvmext.errors import ModelError
from tvmext.onnx.converters.helpers import const, runtime_shape
from tvmext.onnx.registry import register_converter

PrimExpr = Any  # tvm.tirx.PrimExpr; TVM ships no type stubs
Dim = Any  # an int or a PrimExpr
_FLOATS = ("float16", "bfloat16", "float32", "float64")


def _constant_int(expr: relax.Expr | None, what: str) -> int | None:
    """The value of a constant scalar input, None where it is given at run time."""
    if not isinstance(expr, tvm.ir.GenericConst):
        return None
    value = expr.value.numpy().reshape(-1)
    if value.size != 1 or value.dtype.kind not in "iu":
        raise ModelError(f"{what} holds {value.size} {value.dtype} values; expected one integer")
    return int(value[0])


def _as_vector(expr: relax.Expr, what: str) -> relax.Expr:
    """A scalar input as an int64 tensor of shape [1]."""
    ty = expr.ty
    if not isinstance(ty, relax.TensorType) or ty.ndim not in (0, 1) or "int" not in str(ty.dtype):
        raise ModelError(f"{what} is {ty}; expected an integer scalar")
    return relax.op.reshape(relax.op.astype(expr, "int64"), [1])


def _dims(
    bb: relax.BlockBuilder, values: Sequence[relax.Expr], count: int, prefix: str
) -> list[Dim]:
    """Runtime int64 vectors (``count`` values in all) as symbolic dimensions."""
    shape = runtime_shape(bb, relax.op.concat(list(values), axis=0), count, prefix)
    return list(shape.values)


def _select(index: Dim, options: Sequence[Dim]) -> Dim:
    """``options[index]`` for a static or symbolic index."""
    if isinstance(index, int):
        return options[index]
    expr = options[-1]
    for d in reversed(range(len(options) - 1)):
        expr = tirx.Select(index == d, options[d], expr)
    return expr


def _i64(value: Dim) -> PrimExpr:
    return tirx.const(value, "int64") if isinstance(value, int) else tirx.Cast("int64", value)


def _f64(value: Any) -> PrimExpr:
    if isinstance(value, float):
        return tirx.const(value, "float64")
    return tirx.Cast("float64", value)


def _angle(freq: PrimExpr, sample: PrimExpr, length: Dim) -> PrimExpr:
    """``2*pi*freq*sample/length``, reduced modulo ``length`` first so that large
    indices keep their precision."""
    turns = tirx.truncmod(_i64(freq) * _i64(sample), _i64(length))
    return _f64(turns) * (2.0 * math.pi) / _f64(_i64(length))


def _signal_shape(x: relax.Expr, op_type: str) -> list[int]:
    shape = static_shape(x)
    if shape is None or len(shape) < 2 or shape[-1] not in (1, 2):
        raise ModelError(
            f"{op_type}: input 0 has type {x.ty}; expected a static shape whose last "
            "dimension is 1 (real) or 2 (real and imaginary parts)"
        )
    dtype = str(x.ty.dtype)
    if dtype not in _FLOATS:
        raise ModelError(f"{op_type}: input 0 has dtype {dtype}; expected one of {_FLOATS}")
    return shape


def _dft_te(
    x: te.Tensor,
    axis: Dim,
    length: Dim,
    out_dims: list[Dim],
    inverse: bool,
    onesided: bool,
) -> te.Tensor:
    """The DFT of ``x`` along ``axis`` (its last dimension holds the components)."""
    rank = len(x.shape)
    signal_dims = [int(d) for d in x.shape[:-1]]
    in_len = _select(axis, signal_dims)
    is_complex = int(x.shape[-1]) == 2
    real_out = inverse and onesided
    half = tirx.floordiv(_i64(length), 2) + 1
    extent = tirx.min(_i64(in_len), half if real_out else _i64(length))
    k = te.reduce_axis((tirx.const(0, "int64"), extent), name="k")

    def sample(idx: Sequence[PrimExpr], part: int) -> PrimExpr:
        if part == 1 and not is_complex:
            return _f64(0.0)
        if isinstance(axis, int):
            at = [k if d == axis else _i64(idx[d]) for d in range(rank - 1)]
        else:
            at = [tirx.Select(axis == d, k, _i64(idx[d])) for d in range(rank - 1)]
        return _f64(x[(*at, part)])

    def body(*idx: PrimExpr) -> PrimExpr:
        freq = _select(axis, list(idx[:-1]))
        theta = _angle(freq, k, length)
        cos, sin = tirx.cos(theta), tirx.sin(theta)
        re, im = sample(idx, 0), sample(idx, 1)
        if real_out:
            # Hermitian sum: the bins past the middle are the conjugates of those before
            # it; numpy ignores the imaginary parts of the DC and Nyquist bins.
            edge = tirx.Or(k == 0, k * 2 == _i64(length))
            weight = tirx.Select(edge, _f64(1.0), _f64(2.0))
            im_weight = tirx.Select(edge, _f64(0.0), _f64(2.0))
            return te.sum(weight * re * cos - im_weight * im * sin, axis=k)
        sign = 1.0 if inverse else -1.0
        real_part = re * cos - sign * im * sin
        imag_part = im * cos + sign * re * sin
        return te.sum(tirx.Select(idx[-1] == 0, real_part, imag_part), axis=k)

    parts = 1 if real_out else 2
    total = te.compute((*out_dims, parts), body, name="dft_sum")
    scale = _f64(_i64(length)) if inverse else None
    return te.compute(
        total.shape,
        lambda *i: tirx.Cast(x.dtype, total[i] / scale if scale is not None else total[i]),
        name="dft",
    )


def _dft(
    bb: relax.BlockBuilder,
    x: relax.Expr,
    length_input: relax.Expr | None,
    axis_value: int | None,
    axis_input: relax.Expr | None,
    attrs: dict[str, Any],
) -> relax.Expr:
    shape = _signal_shape(x, "DFT")
    rank = len(shape)
    inverse = bool(attrs.get("inverse", 0))
    onesided = bool(attrs.get("onesided", 0))
    if axis_input is not None:
        axis_value = _constant_int(axis_input, "DFT: input 2 (axis)")
    length_value = _constant_int(length_input, "DFT: input 1 (dft_length)")
    if axis_value is not None and not (-rank <= axis_value <= rank - 2):
        raise ModelError(
            f"DFT: axis {axis_value} is out of range for an input of rank {rank}; expected "
            f"one in [{-rank}, {-2}] or [0, {rank - 2}] (the last dimension holds the "
            "components)"
        )
    if length_value is not None and length_value < 1:
        raise ModelError(f"DFT: dft_length is {length_value}; expected a positive length")
    irfft = inverse and onesided
    forward_onesided = onesided and not inverse
    if axis_value is not None and (length_input is None or length_value is not None):
        axis: Dim = axis_value % rank
        in_len = shape[int(axis)]
        if length_value is None:
            length_value = 2 * (in_len - 1) if irfft else in_len
        if length_value < 1:
            raise ModelError(
                f"DFT: the default dft_length is {length_value}; expected a positive length"
            )
        length: Dim = length_value
        out_len = length_value // 2 + 1 if forward_onesided else length_value
        out_dims: list[Dim] = [out_len if d == axis else shape[d] for d in range(rank - 1)]
    else:
        op = relax.op
        if axis_value is not None:
            axis_t = const([axis_value % rank])
        else:
            assert axis_input is not None
            axis_t = _as_vector(axis_input, "DFT: input 2 (axis)")
            axis_t = op.where(op.less(axis_t, const([0])), op.add(axis_t, const([rank])), axis_t)
        in_len_t = op.take(const(shape[:-1]), axis_t, axis=0, mode="clip")
        if length_input is None:
            length_t = (
                op.multiply(op.subtract(in_len_t, const([1])), const([2])) if irfft else in_len_t
            )
        else:
            length_t = _as_vector(length_input, "DFT: input 1 (dft_length)")
        out_len_t = (
            op.add(op.floor_divide(length_t, const([2])), const([1]))
            if forward_onesided
            else length_t
        )
        # An axis out of range or a length below 1 gives a negative dimension, which
        # the runtime refuses, rather than a transform along some other axis.
        valid = op.logical_and(
            op.logical_and(
                op.greater_equal(axis_t, const([0])), op.less(axis_t, const([rank - 1]))
            ),
            op.greater_equal(length_t, const([1])),
        )
        dims_t = op.where(
            op.equal(const(list(range(rank - 1))), axis_t), out_len_t, const(shape[:-1])
        )
        dims_t = op.where(valid, dims_t, const([-1] * (rank - 1)))
        axis, length, *out_dims = _dims(bb, [axis_t, length_t, dims_t], rank + 1, "dft_")
    return bb.emit_te(
        _dft_te, x, axis, length, out_dims, inverse, onesided, primfunc_name_hint="dft"
    )


@register_converter("", "DFT", 17)
def dft_17(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX DFT-17: the axis is an attribute (default 1)."""
    length = inputs[1] if len(inputs) > 1 else None
    return _dft(bb, inputs[0], length, int(attrs.get("axis", 1)), None, attrs)


@register_converter("", "DFT", 20)
def dft_20(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX DFT-20: the axis is input 2 (default -2), constant or given at run time."""
    length = inputs[1] if len(inputs) > 1 else None
    axis = inputs[2] if len(inputs) > 2 else None
    return _dft(bb, inputs[0], length, -2 if axis is None else None, axis, attrs)


def _stft_te(
    x: te.Tensor,
    window: te.Tensor | None,
    step: Dim,
    length: Dim,
    frames: Dim,
    bins: Dim,
) -> te.Tensor:
    """Frame ``f`` is the ``window``-weighted DFT of the samples from ``f * step`` on
    (zero past the end of the signal); the window's length is the frame's."""
    batch, signal_len, parts = (int(d) for d in x.shape)
    window_len = _i64(length) if window is None else tirx.const(int(window.shape[0]), "int64")
    k = te.reduce_axis((tirx.const(0, "int64"), tirx.min(window_len, _i64(length))), name="k")

    def sample(b: PrimExpr, pos: PrimExpr, part: int) -> PrimExpr:
        inside = pos < signal_len
        value = x[b, tirx.min(pos, signal_len - 1), part]
        return tirx.if_then_else(inside, _f64(value), _f64(0.0))

    def body(b: PrimExpr, f: PrimExpr, j: PrimExpr, c: PrimExpr) -> PrimExpr:
        pos = _i64(f) * _i64(step) + k
        weight = _f64(window[k]) if window is not None else _f64(1.0)
        re = sample(b, pos, 0) * weight
        im = sample(b, pos, 1) * weight if parts == 2 else _f64(0.0)
        theta = _angle(j, k, length)
        cos, sin = tirx.cos(theta), tirx.sin(theta)
        return te.sum(tirx.Select(c == 0, re * cos + im * sin, im * cos - re * sin), axis=k)

    total = te.compute((batch, frames, bins, 2), body, name="stft_sum")
    return te.compute(total.shape, lambda *i: tirx.Cast(x.dtype, total[i]), name="stft")


@register_converter("", "STFT", 17)
def stft(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX STFT of a ``[batch, length, 1 or 2]`` signal; the frame step and frame
    length may be runtime scalars."""
    x = inputs[0]
    shape = _signal_shape(x, "STFT")
    if len(shape) != 3:
        raise ModelError(
            f"STFT: input 0 (signal) has shape {shape}; expected [batch, length, 1 or 2]"
        )
    step_input = inputs[1]
    window, length_input = (inputs[i] if len(inputs) > i else None for i in (2, 3))
    onesided = bool(attrs.get("onesided", 1))
    window_len = None
    if window is not None:
        window_shape = static_shape(window)
        if window_shape is None or len(window_shape) != 1:
            raise ModelError(f"STFT: input 2 (window) is {window.ty}; expected a static 1-D tensor")
        if str(window.ty.dtype) != str(x.ty.dtype):
            raise ModelError(
                f"STFT: input 2 (window) has dtype {window.ty.dtype}; expected the signal's "
                f"{x.ty.dtype}"
            )
        window_len = window_shape[0]
    signal_len = shape[1]
    step_value = _constant_int(step_input, "STFT: input 1 (frame_step)")
    length_value = _constant_int(length_input, "STFT: input 3 (frame_length)")
    if length_input is None:
        length_value = window_len if window_len is not None else signal_len
    if step_value is not None and step_value < 1:
        raise ModelError(f"STFT: frame_step is {step_value}; expected a positive step")
    if length_value is not None and not 1 <= length_value <= signal_len:
        raise ModelError(
            f"STFT: the frame length is {length_value}; expected one in [1, {signal_len}] "
            "(the signal's length)"
        )
    if step_value is not None and length_value is not None:
        frames = 1 + (signal_len - length_value) // step_value
        bins = length_value // 2 + 1 if onesided else length_value
        dims: list[Dim] = [step_value, length_value, frames, bins]
    else:
        op = relax.op
        step_t = _as_vector(step_input, "STFT: input 1 (frame_step)")
        length_t = (
            const([length_value])
            if length_value is not None
            else _as_vector(length_input, "STFT: input 3 (frame_length)")
        )
        frames_t = op.add(
            op.floor_divide(op.subtract(const([signal_len]), length_t), step_t), const([1])
        )
        bins_t = op.add(op.floor_divide(length_t, const([2])), const([1])) if onesided else length_t
        # A step below 1 or a length outside [1, signal length] gives a negative frame
        # count, which the runtime refuses.
        valid = op.logical_and(
            op.greater_equal(step_t, const([1])),
            op.logical_and(
                op.greater_equal(length_t, const([1])),
                op.less_equal(length_t, const([signal_len])),
            ),
        )
        frames_t = op.where(valid, frames_t, const([-1]))
        dims = _dims(
            bb, [op.where(valid, step_t, const([1])), length_t, frames_t, bins_t], 4, "stft_"
        )
    return bb.emit_te(_stft_te, x, window, *dims, primfunc_name_hint="stft")

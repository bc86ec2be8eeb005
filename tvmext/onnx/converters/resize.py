"""ONNX ``Resize`` (opsets 11-19) with every mode the spec defines.

TVM 0.27's converter needs constant ``scales``/``sizes`` (it rejects a runtime tensor,
as in models whose sizes come from ``Shape``), ignores ``antialias``, ``axes`` and
``keep_aspect_ratio_policy``, has no ``half_pixel_symmetric``, resizes only the spatial
axes, and turns ``scales`` into sizes, so that its coordinates use ``out / in`` instead
of the given scale (wrong whenever ``in * scale`` is not a whole number). Those cases
are computed here in TE, following the separable algorithm of the ONNX reference
(``onnx/reference/ops/op_resize.py``): one axis at a time, in float64, each output
position a weighted sum of a window of edge-clamped input positions; sizes given at run
time become symbolic dimensions. Constant cases TVM handles go to TVM's converter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import tvm
from tvm import relax, te, tirx
from tvm.sym.analyzer import Analyzer

from tvmext.dims import static_shape
from tvmext.errors import ModelError
from tvmext.onnx.converters.helpers import const, runtime_shape
from tvmext.onnx.registry import register_converter

# Half-width of the interpolation kernel (taps on each side at scale 1).
_SUPPORT = {"linear": 1, "cubic": 2}
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
_COORD_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_crop_and_resize",
)
_TVM_COORD_MODES = set(_COORD_MODES) - {"half_pixel_symmetric"}


def _constant(expr: relax.Expr | None) -> np.ndarray | None:
    if isinstance(expr, tvm.ir.GenericConst):
        return expr.value.numpy()
    return None


def _given(expr: relax.Expr | None) -> bool:
    """Whether an optional input is present and not an empty constant."""
    if expr is None:
        return False
    value = _constant(expr)
    return value is None or value.size > 0


def _taps(mode: str, antialias: bool, scale: float) -> int:
    """Window length of the reference's ``_*_coeffs*`` functions for one axis."""
    support = _SUPPORT[mode]
    if not antialias:
        return 2 * support
    return 2 - 2 * (math.floor(-support / min(scale, 1.0)) + 1)


def _static_plan(
    in_shape: list[int],
    axes: list[int],
    scales: np.ndarray | None,
    sizes: np.ndarray | None,
    policy: str,
) -> tuple[list[float], list[int]]:
    """Per resized axis: the scale the coordinates use and the output size."""
    ins = [in_shape[a] for a in axes]
    if sizes is not None:
        factors = [int(s) / n for s, n in zip(sizes, ins, strict=True)]
        if policy == "stretch":
            return factors, [int(s) for s in sizes]
        scale = min(factors) if policy == "not_larger" else max(factors)
        return [scale] * len(axes), [int(scale * n + 0.5) for n in ins]
    assert scales is not None
    factors = [float(s) for s in scales]
    return factors, [int(s * n) for s, n in zip(factors, ins, strict=True)]


def _runtime_plan(
    bb: relax.BlockBuilder,
    data: relax.Expr,
    axes: list[int],
    scales: relax.Expr | None,
    sizes: relax.Expr | None,
    policy: str,
) -> tuple[relax.Expr, list[tvm.ir.Expr]]:
    """As :func:`_static_plan` for scales or sizes known at run time: a float64 tensor of
    scales and symbolic output sizes."""
    op = relax.op
    dims = bb.emit(op.shape_to_tensor(op.shape_of(data)))
    ins = op.astype(op.take(dims, const(np.array(axes, dtype=np.int64)), axis=0), "float64")
    if sizes is not None:
        factors = op.divide(op.astype(sizes, "float64"), ins)
        if policy == "stretch":
            return bb.emit(factors), _symbolic(bb, op.astype(sizes, "int64"), len(axes))
        scale = op.min(factors) if policy == "not_larger" else op.max(factors)
        factors = op.broadcast_to(scale, [len(axes)])
        out = op.floor(op.add(op.multiply(factors, ins), const(np.float64(0.5))))
    else:
        assert scales is not None
        factors = op.astype(scales, "float64")
        out = op.floor(op.multiply(factors, ins))
    factors = bb.emit(factors)
    return factors, _symbolic(bb, op.astype(out, "int64"), len(axes))


def _scaled_static_axes(
    data: relax.Expr, axes: list[int], scales: np.ndarray, mode: str, antialias: bool
) -> tuple[list[int], list[float], list[tvm.ir.Expr], list[int]] | None:
    """The static plan for constant scales that resize only static axes of an input
    whose other dimensions are symbolic (a dynamic batch); None otherwise."""
    if scales.size != len(axes):
        return None
    dims = list(data.ty.shape.values) if isinstance(data.ty.shape, relax.ShapeExpr) else None
    if dims is None:
        return None
    kept = [k for k, f in enumerate(scales) if not math.isclose(float(f), 1.0)]
    if not all(isinstance(dims[axes[k]], tirx.IntImm) for k in kept):
        return None
    factors = [float(scales[k]) for k in kept]
    sizes = [
        tirx.IntImm("int64", int(f * int(dims[axes[k]])))
        for f, k in zip(factors, kept, strict=True)
    ]
    taps = [_taps(mode, antialias, f) if mode != "nearest" else 1 for f in factors]
    return kept, factors, sizes, taps


def _symbolic_plan(
    bb: relax.BlockBuilder,
    data: relax.Expr,
    axes: list[int],
    sizes: list[tvm.ir.Expr],
    mode: str,
    antialias: bool,
) -> tuple[list[int], relax.Expr | list[float], list[tvm.ir.Expr], list[Any]]:
    """The plan for sizes that are functions of the input dimensions (a decoder
    upsampling to a skip connection's ``Shape``): an axis whose size is its input's is
    left alone, and where the other axes are static the plan is the static one."""
    in_dims = [data.ty.shape.values[a] for a in axes]
    analyzer = Analyzer()
    kept = [
        k
        for k, (n, size) in enumerate(zip(in_dims, sizes, strict=True))
        if not analyzer.can_prove_equal(n, size)
    ]
    if all(isinstance(d, tirx.IntImm) for k in kept for d in (in_dims[k], sizes[k])):
        factors = [int(sizes[k]) / int(in_dims[k]) for k in kept]
        taps = [_taps(mode, antialias, f) if mode != "nearest" else 1 for f in factors]
        return kept, factors, [sizes[k] for k in kept], taps
    op = relax.op

    def as_f64(dims: list[tvm.ir.Expr]) -> relax.Expr:
        return op.astype(op.shape_to_tensor(relax.ShapeExpr(dims)), "float64")

    factor_arg = bb.emit(
        op.divide(as_f64([sizes[k] for k in kept]), as_f64([in_dims[k] for k in kept]))
    )
    if mode != "nearest" and antialias:
        taps = _runtime_taps(bb, factor_arg, mode, len(kept))
    else:
        taps = [2 * _SUPPORT.get(mode, 0) or 1] * len(kept)
    return kept, factor_arg, [sizes[k] for k in kept], taps


def _symbolic(bb: relax.BlockBuilder, values: relax.Expr, n: int) -> list[tvm.ir.Expr]:
    return list(runtime_shape(bb, values, n, "resize_dim").values)


def _runtime_taps(
    bb: relax.BlockBuilder, factors: relax.Expr, mode: str, n: int
) -> list[tvm.ir.Expr]:
    """:func:`_taps` (antialias) for scales known at run time, as symbolic lengths."""
    op = relax.op
    support = const(np.float64(-_SUPPORT[mode]))
    shrink = op.minimum(factors, const(np.float64(1.0)))
    start = op.add(op.floor(op.divide(support, shrink)), const(np.float64(1.0)))
    taps = op.subtract(const(np.float64(2.0)), op.multiply(const(np.float64(2.0)), start))
    return list(runtime_shape(bb, op.astype(taps, "int64"), n, "resize_taps").values)


def _f64(value: Any) -> tvm.ir.Expr:
    if isinstance(value, int | float):
        return tirx.const(float(value), "float64")
    return tirx.Cast("float64", value)


def _source(
    mode: str,
    y: tvm.ir.Expr,
    scale: tvm.ir.Expr,
    in_w: tvm.ir.Expr,
    out_w: tvm.ir.Expr,
    roi: tuple[tvm.ir.Expr, tvm.ir.Expr] | None,
) -> tvm.ir.Expr:
    """Source coordinate of output position ``y`` (the reference's ``_compute_x_ori``)."""
    one, half = _f64(1), _f64(0.5)
    width = scale * in_w  # the output width before rounding down
    single = width == one
    if mode == "align_corners":
        return tirx.Select(single, _f64(0), y * (in_w - one) / (width - one))
    if mode == "asymmetric":
        return y / scale
    if mode == "tf_crop_and_resize":
        assert roi is not None
        start, end = roi
        crop = tirx.Select(
            single,
            (end - start) * (in_w - one) / _f64(2),
            y * (end - start) * (in_w - one) / (width - one),
        )
        return crop + start * (in_w - one)
    if mode == "pytorch_half_pixel":
        return tirx.Select(single, -half, (y + half) / scale - half)
    if mode == "half_pixel":
        return (y + half) / scale - half
    offset = in_w / _f64(2) * (one - out_w / width)  # half_pixel_symmetric
    return offset + (y + half) / scale - half


def _kernel(mode: str, d: tvm.ir.Expr, a: float) -> tvm.ir.Expr:
    """Weight at distance ``d`` (>= 0) of the linear or cubic (coefficient ``a``) kernel."""
    if mode == "linear":
        return tirx.max(_f64(1) - d, _f64(0))
    a = _f64(a)
    near = ((a + _f64(2)) * d - (a + _f64(3))) * d * d + _f64(1)
    far = ((a * d - _f64(5) * a) * d + _f64(8) * a) * d - _f64(4) * a
    return tirx.Select(d <= _f64(1), near, tirx.Select(d < _f64(2), far, _f64(0)))


def _resize_axis(
    data: te.Tensor,
    axis: int,
    scale: tvm.ir.Expr,
    out_w: tvm.ir.Expr,
    taps: int | tvm.ir.Expr,
    roi: tuple[tvm.ir.Expr, tvm.ir.Expr] | None,
    attrs: dict[str, Any],
) -> te.Tensor:
    """``data`` (float64) resized along ``axis``, as the reference's
    ``_interpolate_1d_along_axis``."""
    mode, coord = attrs["mode"], attrs["coord"]
    in_dim = tirx.Cast("int64", data.shape[axis])
    in_w, out_f = _f64(in_dim), _f64(out_w)
    last = in_dim - tirx.const(1, "int64")

    def source(o: tvm.ir.Expr) -> tuple[tvm.ir.Expr, tvm.ir.Expr]:
        """The left neighbour of the source coordinate and the ratio in (0, 1] past it
        (an integer coordinate counts as ratio 1 past its left neighbour)."""
        x = _source(coord, _f64(o), scale, in_w, out_f, roi)
        whole = tirx.floor(x) == x
        left = tirx.Cast("int64", tirx.floor(x)) - tirx.Cast("int64", whole)
        return left, x - tirx.Cast("float64", left)

    def clamp(i: tvm.ir.Expr) -> tvm.ir.Expr:
        return tirx.max(tirx.min(tirx.Cast("int64", i), last), 0)

    def at(index: tuple, i: tvm.ir.Expr) -> tvm.ir.Expr:
        return data[(*index[:axis], i, *index[axis + 1 :])]

    out_shape = [*data.shape[:axis], out_w, *data.shape[axis + 1 :]]
    if mode == "nearest":
        rule = attrs["nearest_mode"]

        def nearest(*index: tvm.ir.Expr) -> tvm.ir.Expr:
            left, ratio = source(index[axis])
            up = {
                "round_prefer_floor": ratio > _f64(0.5),
                "round_prefer_ceil": ratio >= _f64(0.5),
                "floor": ratio == _f64(1),
                "ceil": tirx.const(True),
            }[rule]
            return at(index, clamp(left + tirx.Cast("int64", up)))

        result = te.compute(out_shape, nearest, name="resize_nearest")
    else:
        shrink = tirx.min(scale, _f64(1)) if attrs["antialias"] else _f64(1)
        n = taps if isinstance(taps, tvm.ir.Expr) else tirx.const(taps, "int64")
        first = tirx.const(1, "int64") - tirx.Cast("int64", n) // 2

        def tap(o: tvm.ir.Expr, t: tvm.ir.Expr) -> tuple[tvm.ir.Expr, tvm.ir.Expr]:
            left, ratio = source(o)
            j = first + tirx.Cast("int64", t)
            weight = _kernel(mode, tirx.abs((_f64(j) - ratio) * shrink), attrs["cubic_a"])
            index = left + j
            if attrs["exclude_outside"]:
                inside = tirx.all(index >= 0, index < in_dim)
                weight = tirx.Select(inside, weight, _f64(0))
            return weight, index

        k = te.reduce_axis((0, n), name="k")
        total = te.compute((out_w,), lambda o: te.sum(tap(o, k)[0], axis=k), name="weight_sum")
        normalize = attrs["antialias"] or attrs["exclude_outside"]

        def blend(*index: tvm.ir.Expr) -> tvm.ir.Expr:
            o = index[axis]
            t = te.reduce_axis((0, n), name="t")
            weight, i = tap(o, t)
            if normalize:  # the reference divides by the sum, or by 1 where it is 0
                s = total[o]
                weight = weight / tirx.Select(s == _f64(0), _f64(1), s)
            return te.sum(weight * at(index, clamp(i)), axis=t)

        result = te.compute(out_shape, blend, name="resize_blend")
    if coord != "tf_crop_and_resize":
        return result
    fill = _f64(attrs["extrapolation_value"])

    def extrapolate(*index: tvm.ir.Expr) -> tvm.ir.Expr:
        x = _source(coord, _f64(index[axis]), scale, in_w, out_f, roi)
        outside = tirx.any(x < _f64(0), x > in_w - _f64(1))
        return tirx.Select(outside, fill, result[index])

    return te.compute(out_shape, extrapolate, name="resize_extrapolate")


def _saturate(value: tvm.ir.Expr, dtype: str) -> tvm.ir.Expr:
    """The reference's ``saturate_cast``: integers rounded half to even, then clipped."""
    if dtype == "bfloat16":
        return tirx.Cast(dtype, value)
    if dtype.startswith(("int", "uint")):
        limits: tuple[float, float] = (np.iinfo(dtype).min, np.iinfo(dtype).max)
        value = tirx.nearbyint(value)
    else:
        limits = (float(np.finfo(dtype).min), float(np.finfo(dtype).max))
    low, high = _f64(float(limits[0])), _f64(float(limits[1]))
    return tirx.Cast(dtype, tirx.Select(value < low, low, tirx.Select(value > high, high, value)))


def _resize_te(
    data: te.Tensor,
    factors: te.Tensor | list[float],
    roi: te.Tensor | None,
    out_sizes: list[tvm.ir.Expr],
    taps: list[int | tvm.ir.Expr],
    axes: list[int],
    attrs: dict[str, Any],
) -> te.Tensor:
    dtype = str(data.dtype)
    cur = te.compute(data.shape, lambda *i: _f64(data[i]), name="resize_in")
    for k, axis in enumerate(axes):
        scale = factors[k] if isinstance(factors, te.Tensor) else _f64(factors[k])
        window = None
        if roi is not None:
            window = (_f64(roi[k]), _f64(roi[k + len(axes)]))
        cur = _resize_axis(cur, axis, scale, out_sizes[k], taps[k], window, attrs)
    return te.compute(cur.shape, lambda *i: _saturate(cur[i], dtype), name="resize_out")


def _tvm_handles(
    attrs: dict[str, Any],
    coord: str,
    in_shape: list[int] | None,
    factors: list[float] | None,
    sizes: list[int] | None,
    axes_given: bool,
) -> bool:
    """Whether TVM's converter computes this (constant) Resize as the spec says: only the
    spatial axes resized, no antialias, and coordinates from ``out / in`` equal to those
    from the given scales."""
    if in_shape is None or factors is None or sizes is None or axes_given:
        return False
    if attrs.get("antialias", 0) or attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        return False
    if coord not in _TVM_COORD_MODES or not 3 <= len(in_shape) <= 5:
        return False
    if sizes[:2] != in_shape[:2]:
        return False
    return all(f * n == s for f, n, s in zip(factors, in_shape, sizes, strict=True))


@register_converter("", "Resize", 11)
def resize(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX Resize; constant cases TVM gets right go to TVM, the rest to TE."""
    data = inputs[0]
    roi, scales, sizes = (inputs[i] if len(inputs) > i else None for i in (1, 2, 3))
    if not isinstance(data.ty, relax.TensorType) or data.ty.ndim < 0:
        raise ModelError("input 0 (X) has an unknown rank; expected a tensor of known rank")
    rank = data.ty.ndim
    mode = attrs.get("mode", "nearest")
    coord = attrs.get("coordinate_transformation_mode", "half_pixel")
    nearest_mode = attrs.get("nearest_mode", "round_prefer_floor")
    policy = attrs.get("keep_aspect_ratio_policy", "stretch")
    antialias = bool(attrs.get("antialias", 0))
    if mode not in ("nearest", *_SUPPORT):
        raise ModelError(f"mode {mode!r} is not one of 'nearest', 'linear', 'cubic'")
    if coord not in _COORD_MODES:
        raise ModelError(f"coordinate_transformation_mode {coord!r} is not one of {_COORD_MODES}")
    if nearest_mode not in _NEAREST_MODES:
        raise ModelError(f"nearest_mode {nearest_mode!r} is not one of {_NEAREST_MODES}")
    if policy not in ("stretch", "not_larger", "not_smaller"):
        raise ModelError(
            f"keep_aspect_ratio_policy {policy!r} is not one of 'stretch', 'not_larger', "
            "'not_smaller'"
        )
    if antialias and mode == "nearest":
        raise ModelError("antialias=1 is given with mode 'nearest'; expected linear or cubic")
    has_scales, has_sizes = _given(scales), _given(sizes)
    if has_scales == has_sizes:
        raise ModelError("expected exactly one of input 2 (scales) and input 3 (sizes)")
    axes_given = "axes" in attrs
    axes = [int(a) % rank for a in attrs.get("axes", range(rank))]
    if len(set(axes)) != len(axes):
        raise ModelError(f"axes {attrs['axes']} repeat an axis; expected distinct axes")
    if coord == "tf_crop_and_resize" and not _given(roi):
        raise ModelError("coordinate_transformation_mode 'tf_crop_and_resize' needs input 1 (roi)")

    shape = static_shape(data)
    given = _constant(scales if has_scales else sizes)
    factor_arg: relax.Expr | list[float]
    if has_sizes and isinstance(sizes, relax.ShapeExpr) and policy == "stretch":
        if len(sizes.values) != len(axes):
            raise ModelError(
                f"sizes holds {len(sizes.values)} values; expected one per resized axis "
                f"({len(axes)})"
            )
        kept, factor_arg, sizes_arg, taps = _symbolic_plan(
            bb, data, axes, list(sizes.values), mode, antialias
        )
    elif (
        has_scales
        and given is not None
        and shape is None
        and (plan := _scaled_static_axes(data, axes, given.reshape(-1), mode, antialias))
    ):
        kept, factor_arg, sizes_arg, taps = plan
    elif given is not None and shape is not None:
        given = given.reshape(-1)
        if given.size != len(axes):
            raise ModelError(
                f"{'scales' if has_scales else 'sizes'} holds {given.size} values; expected "
                f"one per resized axis ({len(axes)})"
            )
        factors, out_sizes = _static_plan(
            shape, axes, given if has_scales else None, None if has_scales else given, policy
        )
        roi_value = _constant(roi)
        if _tvm_handles(attrs, coord, shape, factors, out_sizes, axes_given) and (
            roi_value is not None or not _given(roi)
        ):
            return fallback()
        # An axis left as it is skipped, as in the reference.
        kept = [
            k
            for k, a in enumerate(axes)
            if not (math.isclose(factors[k], 1.0) and out_sizes[k] == shape[a])
            or coord == "tf_crop_and_resize"
        ]
        factor_arg = [factors[k] for k in kept]
        sizes_arg = [tirx.IntImm("int64", out_sizes[k]) for k in kept]
        taps = [_taps(mode, antialias, factors[k]) if mode != "nearest" else 1 for k in kept]
    else:
        kept = list(range(len(axes)))
        if has_scales:
            factor_arg, sizes_arg = _runtime_plan(bb, data, axes, scales, None, policy)
        else:
            factor_arg, sizes_arg = _runtime_plan(bb, data, axes, None, sizes, policy)
        if mode != "nearest" and antialias:
            taps = _runtime_taps(bb, factor_arg, mode, len(axes))
        else:
            taps = [2 * _SUPPORT.get(mode, 0) or 1] * len(axes)
    roi_arg = None
    if coord == "tf_crop_and_resize":
        assert roi is not None
        roi_arg = bb.normalize(relax.op.astype(roi, "float64"))
    te_attrs = {
        "mode": mode,
        "coord": coord,
        "nearest_mode": nearest_mode,
        "antialias": antialias,
        "exclude_outside": bool(attrs.get("exclude_outside", 0)),
        "cubic_a": float(attrs.get("cubic_coeff_a", -0.75)),
        "extrapolation_value": float(attrs.get("extrapolation_value", 0.0)),
    }
    return bb.emit_te(
        _resize_te,
        data,
        factor_arg,
        roi_arg,
        sizes_arg,
        taps,
        [axes[k] for k in kept],
        te_attrs,
        primfunc_name_hint="resize",
    )


@register_converter("", "Upsample", 9)
def upsample(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX Upsample (deprecated) with runtime ``scales``: a Resize of asymmetric
    coordinates (nearest rounding down), as onnxruntime computes it; TVM's converter
    needs constant scales, and gets those."""
    if _constant(inputs[1]) is not None:
        return fallback()
    mode = attrs.get("mode", "nearest")
    if mode not in ("nearest", "linear"):
        raise ModelError(f"mode {mode!r} is not one of 'nearest', 'linear'")
    resize_attrs = {
        "mode": mode,
        "coordinate_transformation_mode": "asymmetric",
        "nearest_mode": "floor",
    }
    return resize(bb, [inputs[0], None, inputs[1]], resize_attrs, fallback)

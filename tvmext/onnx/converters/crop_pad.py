"""ONNX ``CenterCropPad`` (opset 18), which TVM 0.27's importer lacks: each listed axis
is cut or zero-padded to the given length around its centre.

As in the reference (``onnx/reference/ops/op_center_crop_pad.py``), an odd difference
puts the extra element removed or added at the end. The window's start in the input is
``trunc((in - out) / 2)``: non-negative for a crop, negative (zeros before the input)
for a pad. A ``shape`` known at compile time gives a static output shape; one given at
run time gives symbolic dimensions.
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


def _i64(value: Any) -> tirx.PrimExpr:
    if isinstance(value, int):
        return tirx.const(value, "int64")
    return value if str(value.ty) == "int64" else tirx.Cast("int64", value)


def _center_crop_pad_te(data: te.Tensor, axes: list[int], lengths: list[Any]) -> te.Tensor:
    """``data`` with axis ``axes[i]`` cut or padded to ``lengths[i]`` around its centre."""
    zero, two = _i64(0), _i64(2)
    out_shape = [_i64(n) for n in data.shape]
    for axis, length in zip(axes, lengths, strict=True):
        out_shape[axis] = _i64(length)
    starts = [tirx.truncdiv(_i64(n) - m, two) for n, m in zip(data.shape, out_shape, strict=True)]
    last = [_i64(n) - _i64(1) for n in data.shape]

    def window(*index: tirx.PrimExpr) -> tirx.PrimExpr:
        source = [_i64(o) + s for o, s in zip(index, starts, strict=True)]
        inside = tirx.all(
            *[tirx.all(i >= zero, i <= top) for i, top in zip(source, last, strict=True)]
        )
        clamped = tuple(
            tirx.max(tirx.min(i, top), zero) for i, top in zip(source, last, strict=True)
        )
        return tirx.if_then_else(inside, data[clamped], tirx.const(0, str(data.dtype)))

    return te.compute(out_shape, window, name="center_crop_pad")


@register_converter("", "CenterCropPad", 18)
def center_crop_pad(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX CenterCropPad: a TE window of the input, zeros where it reaches past it."""
    data, shape = inputs[0], inputs[1]
    if not isinstance(data.ty, relax.TensorType) or data.ty.ndim < 0:
        raise ModelError(
            "input 0 (input_data) has an unknown rank; expected a tensor of known rank"
        )
    rank = data.ty.ndim
    given = [int(a) for a in attrs.get("axes", range(rank))]
    bad = [a for a in given if not -rank <= a < rank]
    if bad:
        raise ModelError(
            f"axes holds {bad[0]}, out of range for input 0 of rank {rank}; expected axes "
            f"in [{-rank}, {rank})"
        )
    axes = [a % rank for a in given]
    if len(set(axes)) != len(axes):
        raise ModelError(f"axes {given} repeat an axis; expected distinct axes")
    shape_dims = static_shape(shape)
    if shape_dims is not None and shape_dims != [len(axes)]:
        raise ShapeError(
            f"input 1 (shape) has shape {shape_dims}; expected one length per axis ([{len(axes)}])"
        )
    if isinstance(shape, tvm.ir.GenericConst):
        lengths = [int(v) for v in shape.value.numpy().reshape(-1)]
        if any(v < 0 for v in lengths):
            raise ShapeError(f"input 1 (shape) is {lengths}; expected non-negative lengths")
    else:
        op = relax.op
        lengths_t = bb.match_cast(
            bb.normalize(op.astype(shape, "int64")), relax.TensorType([len(axes)], "int64")
        )
        dims = op.shape_to_tensor(op.shape_of(data))
        # Axis d's length: from the input's dims, or the i-th given length if d is axes[i].
        picks = [rank + axes.index(d) if d in axes else d for d in range(rank)]
        picked = const(np.array(picks, dtype=np.int64))
        out_dims = op.take(op.concat([dims, lengths_t], axis=0), picked, axis=0)
        symbolic = runtime_shape(bb, out_dims, rank, "crop_pad_dim").values
        lengths = [symbolic[a] for a in axes]
    return bb.emit_te(
        _center_crop_pad_te, data, axes, lengths, primfunc_name_hint="center_crop_pad"
    )

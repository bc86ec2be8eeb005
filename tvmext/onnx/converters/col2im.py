"""ONNX ``Col2Im`` (opset 18), which TVM 0.27's importer lacks: sliding blocks of an
image ([N, C * prod(block_shape), L]) summed back into the image
([N, C, *image_shape]), for any number of spatial axes.

Computed as a gather, following the reference (``onnx/reference/ops/op_col2im.py``):
image position ``y`` receives, for each offset ``k`` in the block, column entry
``c * K + flat(k)`` of block ``flat(b)`` where ``b * stride = y + pad_begin - k *
dilation``, when that ``b`` is a whole block index inside the grid of
``(image + pad_begin + pad_end - dilation * (block - 1) - 1) // stride + 1`` blocks
per axis (``flat`` is row-major). ``image_shape`` and ``block_shape`` given at run time
become symbolic dimensions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tvm
from tvm import relax, te, tirx

from tvmext.dims import static_shape
from tvmext.errors import ModelError, ShapeError
from tvmext.onnx.converters.helpers import runtime_shape
from tvmext.onnx.registry import register_converter


def _i64(value: Any) -> tirx.PrimExpr:
    if isinstance(value, int):
        return tirx.const(value, "int64")
    return value if str(value.ty) == "int64" else tirx.Cast("int64", value)


def _flat(indices: list[tirx.PrimExpr], extents: list[tirx.PrimExpr]) -> tirx.PrimExpr:
    """Row-major position of ``indices`` in a grid of ``extents``."""
    position = _i64(0)
    for i, n in zip(indices, extents, strict=True):
        position = position * n + i
    return position


def _col2im_te(
    data: te.Tensor,
    image: list[Any],
    block: list[Any],
    dilations: list[int],
    pads: list[int],
    strides: list[int],
) -> te.Tensor:
    k = len(image)
    image, block = [_i64(v) for v in image], [_i64(v) for v in block]
    zero, one = _i64(0), _i64(1)
    grid = [
        tirx.floordiv(
            n + _i64(pads[i] + pads[k + i]) - _i64(dilations[i]) * (b - one) - one, _i64(strides[i])
        )
        + one
        for i, (n, b) in enumerate(zip(image, block, strict=True))
    ]
    size = _i64(1)
    for b in block:
        size = size * b
    channels_in, length = _i64(data.shape[1]), _i64(data.shape[2])
    dtype = str(data.dtype)
    acc = "float32" if dtype in ("float16", "bfloat16") else dtype

    def gather(n: tirx.PrimExpr, c: tirx.PrimExpr, *y: tirx.PrimExpr) -> tirx.PrimExpr:
        r = te.reduce_axis((zero, size), name="r")
        offsets: list[tirx.PrimExpr] = []
        rest = _i64(r.var)
        for b in reversed(block):  # row-major: the last axis varies fastest
            offsets.insert(0, tirx.floormod(rest, b))
            rest = tirx.floordiv(rest, b)
        starts, valid = [], []
        for i in range(k):
            t = _i64(y[i]) + _i64(pads[i]) - offsets[i] * _i64(dilations[i])
            stride = _i64(strides[i])
            start = tirx.floordiv(t, stride)
            starts.append(start)
            valid += [tirx.floormod(t, stride) == zero, start >= zero, start < grid[i]]
        channel = _i64(c) * size + _i64(r.var)
        column = _flat(starts, grid)
        # Inside the input too, so that a runtime shape that does not fit reads nothing.
        valid += [channel < channels_in, column < length]
        value = tirx.if_then_else(
            tirx.all(*valid), tirx.Cast(acc, data[n, channel, column]), tirx.const(0, acc)
        )
        return te.sum(value, axis=r)

    out_shape = [_i64(data.shape[0]), tirx.floordiv(channels_in, size), *image]
    summed = te.compute(out_shape, gather, name="col2im_sum")
    if acc == dtype:
        return summed
    return te.compute(out_shape, lambda *i: tirx.Cast(dtype, summed[i]), name="col2im")


def _shape_input(bb: relax.BlockBuilder, expr: relax.Expr, k: int, name: str) -> list[Any]:
    """A shape input as ints where constant, else as symbolic dimensions."""
    if isinstance(expr, tvm.ir.GenericConst):
        return [int(v) for v in expr.value.numpy().reshape(-1)]
    dims = bb.normalize(relax.op.astype(expr, "int64"))
    return list(runtime_shape(bb, dims, k, f"col2im_{name}").values)


def _check_static(
    data_shape: list[int] | None,
    image: list[Any],
    block: list[Any],
    dilations: list[int],
    pads: list[int],
    strides: list[int],
) -> None:
    """The reference's shape checks, where the values are known at compile time."""
    if not all(isinstance(v, int) for v in [*image, *block]):
        return
    if any(b <= 0 for b in block) or any(n < 0 for n in image):
        raise ShapeError(
            f"input 2 (block_shape) {block} and input 1 (image_shape) {image}; expected "
            "positive block lengths and non-negative image lengths"
        )
    k = len(image)
    grid = [
        (image[i] + pads[i] + pads[k + i] - dilations[i] * (block[i] - 1) - 1) // strides[i] + 1
        for i in range(k)
    ]
    if any(g < 1 for g in grid):
        raise ShapeError(
            f"image_shape {image} with pads {pads} holds {grid} blocks of block_shape "
            f"{block} (dilations {dilations}, strides {strides}); expected at least one "
            "per axis"
        )
    if data_shape is None:
        return
    size = int(np.prod(block))
    if data_shape[1] % size:
        raise ShapeError(
            f"input 0 (input) has {data_shape[1]} channels; expected a multiple of the "
            f"block size {size} (block_shape {block})"
        )
    if data_shape[2] != int(np.prod(grid)):
        raise ShapeError(
            f"input 0 (input) holds {data_shape[2]} blocks; expected {int(np.prod(grid))} "
            f"({' x '.join(map(str, grid))} for image_shape {image}, block_shape {block})"
        )


@register_converter("", "Col2Im", 18)
def col2im(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX Col2Im: each image position gathers the column entries that cover it."""
    data, image_shape, block_shape = inputs[:3]
    if not isinstance(data.ty, relax.TensorType) or data.ty.ndim != 3:
        raise ShapeError(
            f"input 0 (input) has type {data.ty}; expected a 3-D tensor "
            "[N, C * prod(block_shape), L]"
        )
    lengths = [static_shape(e) for e in (image_shape, block_shape)]
    known = [s[0] for s in lengths if s is not None and len(s) == 1]
    if not known:
        raise ShapeError(
            f"input 1 (image_shape) has type {image_shape.ty} and input 2 (block_shape) "
            f"{block_shape.ty}; expected 1-D tensors of static length"
        )
    k = known[0]
    if any(s != [k] for s in lengths if s is not None):
        raise ShapeError(
            f"input 1 (image_shape) has shape {lengths[0]} and input 2 (block_shape) "
            f"{lengths[1]}; expected the same length, one value per spatial axis"
        )
    dilations = [int(v) for v in attrs.get("dilations", [1] * k)]
    pads = [int(v) for v in attrs.get("pads", [0] * (2 * k))]
    strides = [int(v) for v in attrs.get("strides", [1] * k)]
    for name, values, count in (
        ("dilations", dilations, k),
        ("pads", pads, 2 * k),
        ("strides", strides, k),
    ):
        if len(values) != count:
            raise ModelError(
                f"{name} {values} has {len(values)} values; expected {count} for {k} spatial axes"
            )
    if any(v <= 0 for v in [*dilations, *strides]) or any(p < 0 for p in pads):
        raise ModelError(
            f"dilations {dilations}, strides {strides}, pads {pads}; expected positive "
            "dilations and strides, non-negative pads"
        )
    image = _shape_input(bb, image_shape, k, "image")
    block = _shape_input(bb, block_shape, k, "block")
    _check_static(static_shape(data), image, block, dilations, pads, strides)
    return bb.emit_te(
        _col2im_te, data, image, block, dilations, pads, strides, primfunc_name_hint="col2im"
    )

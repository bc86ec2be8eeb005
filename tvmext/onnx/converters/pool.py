"""ONNX pooling TVM 0.27 lowers badly or lacks: an AveragePool whose one window covers
the whole input (a mean over H, W), and MaxPool's ``Indices`` output.


PyTorch models write a global pool as ``AvgPool2d(kernel, ceil_mode=True)`` with a
kernel far larger than the feature map (the ``transformers`` EfficientNet pools its
7x7 map with a 1280x1280 kernel). TVM lowers that literally: it pads the input to
the kernel's size (8 GB for EfficientNet-B0) before averaging the 49 real values.
With no explicit padding and a single window, the result is the mean over the input,
whatever ``ceil_mode`` and ``count_include_pad`` say (ONNX counts neither the
ceil-mode overhang nor, without explicit pads, any padding).

TVM's MaxPool converter returns only the maximum; with the ``Indices`` output, both
come from one TE reduction over each window, carrying (value, position) pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tvm import relax, te, tirx

from tvmext.dims import static_shape
from tvmext.errors import ModelError
from tvmext.onnx.registry import register_converter


def _covers_input(shape: list[int] | None, attrs: dict[str, Any]) -> bool:
    if shape is None or len(shape) < 3:
        return False
    spatial = shape[2:]
    kernel = list(attrs.get("kernel_shape", []))
    if len(kernel) != len(spatial) or attrs.get("auto_pad", "NOTSET") not in (
        "NOTSET",
        "VALID",
    ):
        return False
    if any(p != 0 for p in attrs.get("pads", [])) or any(
        d != 1 for d in attrs.get("dilations", [])
    ):
        return False
    return all(k >= n for k, n in zip(kernel, spatial, strict=True))


@register_converter("", "AveragePool", 7)
def average_pool(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX AveragePool; one window over the whole input becomes a mean over H, W."""
    shape = static_shape(inputs[0])
    if not _covers_input(shape, attrs):
        return fallback()
    assert shape is not None
    return relax.op.mean(inputs[0], list(range(2, len(shape))), keepdims=True)


def _max_pool_geometry(
    spatial: list[int], attrs: dict[str, Any]
) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """Per spatial axis: kernel, stride, dilation, leading pad and output size, as the
    ONNX MaxPool spec defines them for each ``auto_pad``."""
    n = len(spatial)
    kernel = list(attrs["kernel_shape"])
    strides = list(attrs.get("strides", [1] * n))
    dilations = list(attrs.get("dilations", [1] * n))
    pads = list(attrs.get("pads", [0] * (2 * n)))
    auto_pad, ceil_mode = attrs.get("auto_pad", "NOTSET"), attrs.get("ceil_mode", 0)
    begins, sizes = [], []
    for i in range(n):
        extent = (kernel[i] - 1) * dilations[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            size = -(-spatial[i] // strides[i])
            total = max((size - 1) * strides[i] + extent - spatial[i], 0)
            begins.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
        elif auto_pad == "VALID":
            size = -(-(spatial[i] - extent + 1) // strides[i])
            begins.append(0)
        elif auto_pad == "NOTSET":
            span = spatial[i] + pads[i] + pads[n + i] - extent
            rounding = math.ceil if ceil_mode else math.floor
            size = int(rounding(span / strides[i])) + 1
            # A last window starting in the end padding is dropped (ceil mode).
            if ceil_mode and (size - 1) * strides[i] >= spatial[i] + pads[i]:
                size -= 1
            begins.append(pads[i])
        else:
            raise ModelError(
                f"auto_pad {auto_pad!r}: expected NOTSET, SAME_UPPER, SAME_LOWER or VALID"
            )
        sizes.append(size)
    return kernel, strides, dilations, begins, sizes


@register_converter("", "MaxPool", 8)
def max_pool(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """MaxPool with its ``Indices`` output: the first maximum of each window in scan
    order (padding never wins), as a flat index into the input, row-major
    (``storage_order=0``) or column-major within each (N, C) plane; a single output
    goes to TVM's converter."""
    if attrs["_num_outputs"] == 1:
        return fallback()
    data = inputs[0]
    shape = static_shape(data)
    if shape is None or len(shape) < 3:
        raise ModelError(f"input 0 (X) has shape {shape}; expected a static (N, C, ...) shape")
    spatial = shape[2:]
    if len(attrs.get("kernel_shape", [])) != len(spatial):
        raise ModelError(f"kernel_shape {attrs.get('kernel_shape')}: expected {len(spatial)} sizes")
    storage_order = attrs.get("storage_order", 0)
    if storage_order not in (0, 1):
        raise ModelError(f"storage_order {storage_order}: expected 0 or 1")
    kernel, strides, dilations, begins, sizes = _max_pool_geometry(spatial, attrs)
    dtype = str(data.ty.dtype)
    plane = math.prod(spatial)
    # Strides of a position within a plane in the index the output reports.
    row_major = [math.prod(spatial[i + 1 :]) for i in range(len(spatial))]
    order = (
        row_major if storage_order == 0 else [math.prod(spatial[:i]) for i in range(len(spatial))]
    )

    def first_max(lhs: tuple[Any, Any], rhs: tuple[Any, Any]) -> tuple[Any, Any]:
        better = tirx.any(rhs[1] > lhs[1], tirx.all(rhs[1] == lhs[1], rhs[0] < lhs[0]))
        return tirx.Select(better, rhs[0], lhs[0]), tirx.Select(better, rhs[1], lhs[1])

    def nothing(key_type: str, value_type: str) -> tuple[Any, Any]:
        return tirx.const(plane, key_type), te.min_value(value_type)

    reducer = te.comm_reducer(first_max, nothing, name="first_max")

    def compute(x: te.Tensor) -> list[te.Tensor]:
        taps = [te.reduce_axis((0, k), f"k{i}") for i, k in enumerate(kernel)]

        def window(b: Any, c: Any, *out: Any) -> tuple[Any, Any]:
            pos = [
                o * s - p + t * d
                for o, s, p, t, d in zip(out, strides, begins, taps, dilations, strict=True)
            ]
            inside = tirx.all(*[tirx.all(q >= 0, q < n) for q, n in zip(pos, spatial, strict=True)])
            clamped = [tirx.max(tirx.min(q, n - 1), 0) for q, n in zip(pos, spatial, strict=True)]
            key = sum(tirx.Cast("int64", q) * m for q, m in zip(clamped, row_major, strict=True))
            return reducer(
                (
                    tirx.Select(inside, key, tirx.const(plane, "int64")),
                    tirx.Select(inside, x(b, c, *clamped), te.min_value(dtype)),
                ),
                axis=taps,
            )

        key, value = te.compute(shape[:2] + sizes, window, name="max_pool_window")

        def index(b: Any, c: Any, *out: Any) -> Any:
            k = key(b, c, *out)
            coords = [
                tirx.floormod(tirx.floordiv(k, m), n)
                for m, n in zip(row_major, spatial, strict=True)
            ]
            within = sum(q * m for q, m in zip(coords, order, strict=True))
            flat = (tirx.Cast("int64", b) * shape[1] + tirx.Cast("int64", c)) * plane + within
            return tirx.Select(k == plane, tirx.const(-1, "int64"), flat)

        def maximum(*idx: Any) -> Any:
            return tirx.Select(key(*idx) == plane, tirx.const(0, dtype), value(*idx))

        shape_out = shape[:2] + sizes
        return [
            te.compute(shape_out, maximum, name="max_pool"),
            te.compute(shape_out, index, name="max_pool_indices"),
        ]

    pooled = bb.emit_te(compute, data)
    return relax.Tuple(
        [bb.emit(relax.TupleGetItem(pooled, 0)), bb.emit(relax.TupleGetItem(pooled, 1))]
    )

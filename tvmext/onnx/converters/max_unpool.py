"""ONNX ``MaxUnpool`` with an ``output_shape`` input.

As the ONNX reference (``onnx/reference/ops/op_max_unpool.py``) and the conformance
data define it, the indices address the unpooled tensor of the size ``kernel_shape``,
``strides`` and ``pads`` imply; ``output_shape`` then places that tensor at the start
of a zero tensor of the requested size. TVM 0.27's converter instead scatters into
the requested size (a different element for the same index), and fails on an
``output_shape`` known only at run time. Without ``output_shape``, TVM's converter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tvm
from tvm import relax, te, tirx

from tvmext.dims import static_shape
from tvmext.errors import ModelError
from tvmext.onnx.converters.helpers import runtime_shape
from tvmext.onnx.registry import register_converter


@register_converter("", "MaxUnpool", 9)
def max_unpool(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Scatter of X to its indices in the implied unpooled size, then zero-extended (or
    cut) to ``output_shape``."""
    target = inputs[2] if len(inputs) > 2 else None
    if target is None:
        return fallback()
    data, indices = inputs[0], inputs[1]
    shape = static_shape(data)
    kernel = list(attrs["kernel_shape"])
    if shape is None or len(shape) != len(kernel) + 2:
        raise ModelError(
            f"input 0 (X) has shape {shape}; expected a static shape of rank "
            f"{len(kernel) + 2} (N, C and one dimension per kernel_shape entry)"
        )
    if static_shape(indices) != shape:
        raise ModelError(
            f"input 1 (I) has shape {static_shape(indices)}; expected that of input 0 {shape}"
        )
    n = len(kernel)
    strides = list(attrs.get("strides", [1] * n))
    pads = list(attrs.get("pads", [0] * (2 * n)))
    implied = shape[:2] + [
        (shape[i + 2] - 1) * strides[i] - (pads[i] + pads[n + i]) + kernel[i] for i in range(n)
    ]
    op = relax.op
    if isinstance(target, tvm.ir.GenericConst):
        out_shape = [int(d) for d in target.value.numpy().reshape(-1)]
        if len(out_shape) != n + 2:
            raise ModelError(f"input 2 (output_shape) is {out_shape}; expected {n + 2} sizes")
        dims: list[Any] = out_shape
    else:
        length = static_shape(target)
        if length != [n + 2]:
            raise ModelError(f"input 2 (output_shape) has shape {length}; expected [{n + 2}]")
        dims = list(runtime_shape(bb, op.astype(target, "int64"), n + 2, "unpool_dim").values)
    # Emitted after the output's symbolic sizes are bound: FuseOps puts a fused group
    # where its first member was, and the group would use the sizes before match_cast.
    flat = op.zeros(relax.ShapeExpr([int(np.prod(implied))]), str(data.ty.dtype))
    flat = op.scatter_elements(flat, op.reshape(indices, [-1]), op.reshape(data, [-1]), axis=0)
    unpooled = bb.emit(op.reshape(flat, implied))

    def place(y: te.Tensor) -> te.Tensor:
        def element(*idx: tirx.Var) -> tirx.PrimExpr:
            inside = tirx.all(*[i < d for i, d in zip(idx, implied, strict=True)])
            clamped = [tirx.min(i, d - 1) for i, d in zip(idx, implied, strict=True)]
            return tirx.Select(inside, y(*clamped), tirx.const(0, y.dtype))

        return te.compute(dims, element, name="max_unpool_place")

    return bb.emit_te(place, unpooled)

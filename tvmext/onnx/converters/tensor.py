"""ONNX ``Trilu``, ``Constant``, ``Pad`` and ``Gather`` where TVM 0.27's importer gets them wrong,
lacks them or hides what they do (registered for ``ai.onnx``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tvm
from tvm import relax

from tvmext.errors import ShapeError
from tvmext.onnx.converters.helpers import const, static_shape
from tvmext.onnx.registry import register_converter


@register_converter("", "Trilu", 14)
def trilu(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Trilu of a tensor with no elements is that tensor (TVM's runtime-``k`` path
    fails to build a mask of zero rows)."""
    dims = static_shape(inputs[0])
    return inputs[0] if dims is not None and 0 in dims else fallback()


_CONSTANT_KINDS = {
    "value_float": np.float32,
    "value_floats": np.float32,
    "value_int": np.int64,
    "value_ints": np.int64,
}


@register_converter("", "Constant", 1)
def constant(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``Constant`` with ``value_float(s)``/``value_int(s)`` (TVM handles only ``value``)."""
    for key, dtype in _CONSTANT_KINDS.items():
        if key in attrs:
            return const(np.array(attrs[key], dtype=dtype))
    return fallback()


def _constant_values(expr: relax.Expr | None) -> np.ndarray | None:
    if expr is None:
        return None
    return expr.value.numpy() if isinstance(expr, tvm.ir.GenericConst) else None


@register_converter("", "Pad", 11)
def pad(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX Pad, constant mode with constant pads (any axes), as Relax's ``nn.pad``, which
    later passes can read (``tvmext.fold_pad_into_conv``); TVM's importer emits a TE
    kernel instead. Other modes, negative pads (crops) and pads computed at run time go
    to TVM's converter."""
    mode = attrs.get("mode", "constant")
    data = inputs[0]
    rank = len(static_shape(data) or []) if isinstance(data.ty, relax.TensorType) else 0
    pads = _constant_values(inputs[1] if len(inputs) > 1 else None)
    value = _constant_values(inputs[2] if len(inputs) > 2 else None)
    axes = _constant_values(inputs[3] if len(inputs) > 3 else None)
    dtype = str(data.ty.dtype) if isinstance(data.ty, relax.TensorType) else ""
    if mode != "constant" or pads is None or rank == 0 or not dtype.startswith("float"):
        return fallback()
    if (len(inputs) > 2 and inputs[2] is not None and value is None) or (
        len(inputs) > 3 and inputs[3] is not None and axes is None
    ):
        return fallback()
    picked = [int(a) % rank for a in axes.reshape(-1)] if axes is not None else list(range(rank))
    widths = [int(p) for p in pads.reshape(-1)]  # all begins, then all ends
    if len(widths) != 2 * len(picked) or any(p < 0 for p in widths):
        return fallback()
    width = [0] * (2 * rank)  # Relax: (begin, end) per axis
    for i, axis in enumerate(picked):
        width[2 * axis], width[2 * axis + 1] = widths[i], widths[len(picked) + i]
    fill = float(value.reshape(-1)[0]) if value is not None and value.size else 0.0
    return relax.op.nn.pad(data, width, "constant", fill)


@register_converter("", "Gather", 1)
def gather(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """TVM's Gather is ``take`` in its fast mode, which reads out of bounds (and may
    crash the process at run time) for an index past the axis: constant indices are
    checked against a static axis here, at compile time."""
    data, indices = inputs[0], inputs[1]
    shape = static_shape(data) if not isinstance(data, relax.ShapeExpr) else None
    if isinstance(indices, tvm.ir.GenericConst) and shape is not None:
        axis = attrs.get("axis", 0)
        if not -len(shape) <= axis < len(shape):
            raise ShapeError(
                f"axis {axis} is out of range for input 0 of rank {len(shape)}; expected "
                f"an axis in [{-len(shape)}, {len(shape)})"
            )
        size = shape[axis]
        values = indices.value.numpy()
        bad = values[(values < -size) | (values >= size)]
        if bad.size:
            raise ShapeError(
                f"input 1 (indices) holds {int(bad.reshape(-1)[0])}, out of range for axis "
                f"{axis} of input 0 (size {size}); expected indices in [{-size}, {size})"
            )
    return fallback()

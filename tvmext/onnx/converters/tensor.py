"""ONNX ``Trilu``, ``Constant`` and ``Gather`` where TVM 0.27's importer gets them wrong,
lacks them or hides what they do (registered for ``ai.onnx``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tvm
from tvm import relax

from tvmext.dims import static_shape
from tvmext.errors import ShapeError
from tvmext.onnx.converters.helpers import const
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

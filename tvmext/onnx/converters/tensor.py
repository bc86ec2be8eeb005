"""ONNX ``Trilu`` and ``Constant`` where TVM 0.27's importer gets them wrong or lacks them
(registered for ``ai.onnx``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tvm import relax

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

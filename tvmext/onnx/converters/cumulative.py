"""ONNX CumSum and CumProd, with a constant or a runtime ``axis`` (TVM 0.27 has no
CumProd and takes only a constant CumSum axis).

The rank is static, so a runtime axis is one of ``rank`` choices: each is computed and
the one the axis names is selected; the output shape is the input's either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tvm
from tvm import relax

from tvmext.errors import ModelError
from tvmext.onnx.converters.helpers import const
from tvmext.onnx.registry import register_converter

_Scan = Callable[..., relax.Expr]


def _along(scan: _Scan, data: relax.Expr, axis: int, exclusive: bool, reverse: bool) -> relax.Expr:
    op = relax.op
    x = op.flip(data, axis) if reverse else data
    x = scan(x, axis, exclusive=exclusive)
    return op.flip(x, axis) if reverse else x


def _cumulative(scan: _Scan, name: str) -> Callable[..., relax.Expr]:
    def convert(
        bb: relax.BlockBuilder,
        inputs: list[relax.Expr],
        attrs: dict[str, Any],
        fallback: Callable[[], relax.Expr],
    ) -> relax.Expr:
        data, axis = inputs[0], inputs[1]
        exclusive, reverse = bool(attrs.get("exclusive", 0)), bool(attrs.get("reverse", 0))
        rank = data.ty.ndim if isinstance(data.ty, relax.TensorType) else -1
        if rank < 0:
            raise ModelError("input 0 (x) has an unknown rank; expected a tensor of known rank")
        if isinstance(axis, tvm.ir.GenericConst):
            return _along(scan, data, int(axis.value.numpy().item()) % rank, exclusive, reverse)
        op = relax.op
        chosen = op.reshape(op.astype(axis, "int64"), ())
        chosen = bb.emit(op.where(op.less(chosen, const(np.int64(0))),
                                  op.add(chosen, const(np.int64(rank))), chosen))  # fmt: skip
        result = _along(scan, data, rank - 1, exclusive, reverse)
        for a in range(rank - 1):
            this = op.equal(chosen, const(np.int64(a)))
            result = op.where(this, _along(scan, data, a, exclusive, reverse), result)
        return result

    convert.__name__ = convert.__qualname__ = name.lower()
    convert.__doc__ = f"ONNX {name} along a constant or runtime axis."
    return convert


register_converter("", "CumSum", 11)(_cumulative(relax.op.cumsum, "CumSum"))
register_converter("", "CumProd", 26)(_cumulative(relax.op.cumprod, "CumProd"))

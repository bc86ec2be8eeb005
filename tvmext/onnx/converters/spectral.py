"""ONNX window functions: HannWindow, HammingWindow and BlackmanWindow (TVM 0.27's
importer has none of them).

The window length is a runtime scalar, so it becomes a fresh symbolic dimension and the
window is a ``te.compute`` over it. Values are computed in float64 and then cast to
``output_datatype``, so every output dtype gets the correctly rounded window.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tvm import relax, te, tirx
from tvm.relax.frontend.onnx.onnx_frontend import get_type

from tvmext.errors import ModelError
from tvmext.onnx.converters.helpers import runtime_shape
from tvmext.onnx.registry import register_converter

# w(n, N) for sample n of a window whose period is N (both float64 PrimExprs), in the
# ONNX reference's order of operations, so integer output types truncate the same way.
_Window = Callable[[tirx.Expr, tirx.Expr], tirx.Expr]


def _hann(n: tirx.Expr, period: tirx.Expr) -> tirx.Expr:
    s = tirx.sin(n * math.pi / period)
    return s * s


def _hamming(n: tirx.Expr, period: tirx.Expr) -> tirx.Expr:
    alpha = 25.0 / 46.0
    return alpha - tirx.cos(n * math.pi * 2.0 / period) * (1.0 - alpha)


def _blackman(n: tirx.Expr, period: tirx.Expr) -> tirx.Expr:
    y = tirx.cos(n * (2.0 * math.pi) / period) * -0.5
    return y + tirx.cos(n * (4.0 * math.pi) / period) * 0.08 + 0.42


def _window(window: _Window, name: str) -> Callable[..., relax.Expr]:
    def convert(
        bb: relax.BlockBuilder,
        inputs: list[relax.Expr],
        attrs: dict[str, Any],
        fallback: Callable[[], relax.Expr],
    ) -> relax.Expr:
        dtype = get_type(attrs.get("output_datatype", 1))
        if dtype not in {"float16", "bfloat16", "float32", "float64"} and not dtype.startswith(
            ("int", "uint")
        ):
            raise ModelError(f"{name} output_datatype {dtype} is not a numeric tensor type")
        periodic = bool(attrs.get("periodic", 1))
        size = relax.op.reshape(relax.op.astype(inputs[0], "int64"), [1])
        (length,) = runtime_shape(bb, size, 1, "window_len").values

        def compute(length: tirx.Expr) -> te.Tensor:
            period = tirx.Cast("float64", length if periodic else length - 1)
            return te.compute(
                (length,),
                lambda i: tirx.Cast(dtype, window(tirx.Cast("float64", i), period)),
                name=name.lower(),
            )

        return bb.emit_te(compute, length)

    convert.__name__ = convert.__qualname__ = name.lower()
    convert.__doc__ = f"ONNX {name} of a runtime length."
    return convert


register_converter("", "HannWindow", 17)(_window(_hann, "HannWindow"))
register_converter("", "HammingWindow", 17)(_window(_hamming, "HammingWindow"))
register_converter("", "BlackmanWindow", 17)(_window(_blackman, "BlackmanWindow"))

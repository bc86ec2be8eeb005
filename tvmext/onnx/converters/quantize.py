"""ONNX quantized operators TVM's importer lacks: QLinearMatMul and ConvInteger (TVM 0.27
has no converter for them; both accumulate exactly in int32).

QLinearMatMul follows the spec's integer semantics: the zero-point-shifted operands are
multiplied in int32 (exact), then requantized with ``a_scale * b_scale / y_scale`` in
float64, rounded half to even and saturated to the output type, as ONNX's reference
does; a float32 requantization would round some products differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tvm import relax

from tvmext.errors import ModelError
from tvmext.onnx.converters.helpers import static_shape
from tvmext.onnx.registry import register_converter


def _scalar(expr: relax.Expr, what: str) -> relax.Expr:
    """``expr`` as a 0-d tensor, or ModelError where it holds more than one value."""
    shape = static_shape(expr)
    if shape is None or int(np.prod(shape)) != 1:
        raise ModelError(f"QLinearMatMul {what} has shape {shape}; expected a single value")
    return relax.op.reshape(expr, ())


@register_converter("", "QLinearMatMul", 10)
def qlinear_matmul(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Integer matmul of the shifted operands, requantized to ``y_zero_point``'s type."""
    a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp = inputs
    op = relax.op
    out_dtype = str(y_zp.ty.dtype)
    if out_dtype not in ("int8", "uint8"):
        raise ModelError(f"QLinearMatMul output type {out_dtype}; expected int8 or uint8")
    b_shape = static_shape(b)
    # b's parameters may be per output column (1-D of b's last dimension): they broadcast
    # along the product's last axis; a's and y's must be per tensor.
    for name, param in (("b_scale", b_scale), ("b_zero_point", b_zp)):
        shape = static_shape(param)
        per_column = b_shape is not None and shape == [b_shape[-1]]
        if shape is None or not (per_column or int(np.prod(shape)) == 1):
            raise ModelError(
                f"QLinearMatMul {name} has shape {shape}; expected a single value or one "
                f"per column of b (shape {b_shape[-1:] if b_shape else '[N]'})"
            )
    a_i = op.subtract(op.astype(a, "int32"), op.astype(_scalar(a_zp, "a_zero_point"), "int32"))
    b_i = op.subtract(op.astype(b, "int32"), op.astype(b_zp, "int32"))
    product = op.astype(op.matmul(a_i, b_i, out_dtype="int32"), "float64")
    # The multiplier is formed in the scales' own type first, as the reference does.
    multiplier = op.divide(op.multiply(_scalar(a_scale, "a_scale"), b_scale),
                           _scalar(y_scale, "y_scale"))  # fmt: skip
    value = op.add(op.multiply(product, op.astype(multiplier, "float64")),
                   op.astype(_scalar(y_zp, "y_zero_point"), "float64"))  # fmt: skip
    info = np.iinfo(out_dtype)
    value = op.clip(op.round(value), float(info.min), float(info.max))
    return op.astype(value, out_dtype)


@register_converter("", "ConvInteger", 10)
def conv_integer(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """2-D convolution of the zero-point-shifted operands, accumulated exactly in int32."""
    op = relax.op
    x, w = inputs[0], inputs[1]
    x_zp = inputs[2] if len(inputs) > 2 and inputs[2] is not None else None
    w_zp = inputs[3] if len(inputs) > 3 and inputs[3] is not None else None
    rank = len(x.ty.shape) if isinstance(x.ty, relax.TensorType) and x.ty.ndim >= 0 else None
    if rank != 4:
        raise ModelError(f"ConvInteger input has rank {rank}; expected a 4-D (NCHW) one")
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ModelError(f"ConvInteger auto_pad {attrs['auto_pad']!r}; expected NOTSET")
    x_i = op.astype(x, "int32")
    if x_zp is not None:
        x_i = op.subtract(x_i, op.astype(_scalar(x_zp, "x_zero_point"), "int32"))
    w_i = op.astype(w, "int32")
    if w_zp is not None:
        # A per-tensor or per-output-channel zero point, broadcast over the kernel.
        zp_shape = static_shape(w_zp)
        zp_size = int(np.prod(zp_shape)) if zp_shape is not None else 0
        if zp_size not in (1, (static_shape(w) or [0])[0]):
            raise ModelError(
                f"ConvInteger w_zero_point has shape {static_shape(w_zp)}; expected a single "
                "value or one per output channel"
            )
        w_i = op.subtract(w_i, op.astype(op.reshape(w_zp, [zp_size, 1, 1, 1]), "int32"))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    return op.nn.conv2d(
        x_i,
        w_i,
        strides=list(attrs.get("strides", [1, 1])),
        padding=[pads[0], pads[1], pads[2], pads[3]],
        dilation=list(attrs.get("dilations", [1, 1])),
        groups=int(attrs.get("group", 1)),
        out_dtype="int32",
    )

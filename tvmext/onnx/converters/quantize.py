"""ONNX quantization: QuantizeLinear and DequantizeLinear for every type the spec
allows, and the quantized operators TVM's importer lacks, QLinearMatMul and ConvInteger
(TVM 0.27 has no converter for them; they accumulate exactly in int32).

TVM's QuantizeLinear/DequantizeLinear take integer byte types only, per tensor or per
axis: no float8, sub-byte or float4 type, no ``block_size``, no ``precision``. Here
they follow ONNX's reference (``onnx/reference/ops/op_quantize_linear.py``): the
quotient ``x / y_scale`` is formed in the operands' type, an integer output is that
quotient rounded half to even plus the zero point, saturated to the type's range; a
float output (float8, float4) is the quotient plus the zero point, rounded by the
bit-exact casts of :mod:`.float8` and :mod:`.sub_byte`. Dequantization subtracts the
zero point and multiplies by the scale in float32. A blocked scale (``block_size``)
repeats each value over ``block_size`` consecutive elements along ``axis``.

QLinearMatMul follows the spec's integer semantics: the zero-point-shifted operands are
multiplied in int32 (exact), then requantized with ``a_scale * b_scale / y_scale`` in
float64, rounded half to even and saturated to the output type, as ONNX's reference
does; a float32 requantization would round some products differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from onnx.helper import tensor_dtype_to_np_dtype
from tvm import relax, te, tirx

from tvmext.dims import static_shape
from tvmext.errors import ModelError, ShapeError
from tvmext.onnx.converters.float8 import FORMATS, cast_to
from tvmext.onnx.converters.sub_byte import FLOAT4, cast_sub_byte
from tvmext.onnx.registry import register_converter
from tvmext.runtime.packed_dtypes import CARRIER

# Integer types a quantized value may have, with their ranges.
_INTEGER_RANGES = {
    "uint8": (0, 255),
    "int8": (-128, 127),
    "uint16": (0, 65535),
    "int16": (-32768, 32767),
    "uint4": (0, 15),
    "int4": (-8, 7),
    "uint2": (0, 3),
    "int2": (-2, 1),
}
_FLOAT_QUANTIZED = (*sorted(FORMATS), FLOAT4)
_DEQUANTIZED = ("float32", "float16", "bfloat16")


def _logical_dtype(inputs: list[relax.Expr], attrs: dict[str, Any], index: int) -> str:
    """The ONNX type of input ``index``: sub-byte types arrive in their byte carriers,
    so the importer's record of logical types comes first."""
    known = attrs.get("_input_dtypes") or ()
    if index < len(known) and known[index]:
        return str(known[index])
    return str(inputs[index].ty.dtype)


def _to_float32(bb: relax.BlockBuilder, value: relax.Expr, dtype: str) -> relax.Expr:
    """``value`` (of logical type ``dtype``, in its carrier if sub-byte) as float32."""
    if dtype in CARRIER:
        return cast_sub_byte(bb, value, dtype, "float32", True, "up")
    return cast_to(bb, value, "float32", True)


def _present(inputs: list[relax.Expr], index: int) -> bool:
    return len(inputs) > index and inputs[index] is not None


def _broadcastable(
    bb: relax.BlockBuilder,
    param: relax.Expr,
    x: relax.Expr,
    axis: int,
    block_size: int,
    what: str,
) -> relax.Expr:
    """A scale or zero point shaped to broadcast against ``x``: a single value, one
    value per slice along ``axis``, or (``block_size`` > 0) one value per block of
    ``block_size`` elements along ``axis``, repeated over the block."""
    param, x = bb.normalize(param), bb.normalize(x)
    shape = static_shape(param)
    if shape is None:
        raise ShapeError(f"{what} has a dynamic shape; expected a static one")
    if int(np.prod(shape)) == 1 and len(shape) <= 1:
        return relax.op.reshape(param, ())
    rank = x.ty.ndim
    if rank < 0 or not -rank <= axis < rank:
        raise ModelError(f"axis {axis} is out of range for an input of rank {rank}")
    axis %= rank
    dims = list(x.ty.shape.values)
    static = [int(d) if isinstance(d, tirx.IntImm) else None for d in dims]
    if block_size <= 0:
        if len(shape) != 1 or static[axis] not in (None, shape[0]):
            raise ShapeError(
                f"{what} has shape {shape}; expected a single value or one value per "
                f"slice of axis {axis} of the input (of shape {static})"
            )
        return relax.op.reshape(param, [shape[0] if d == axis else 1 for d in range(rank)])
    length = static[axis]
    blocks = None if length is None else -(-length // block_size)
    expected = [blocks if d == axis else n for d, n in enumerate(static)]
    if len(shape) != rank or any(e not in (None, n) for e, n in zip(expected, shape, strict=True)):
        raise ShapeError(
            f"{what} has shape {shape}; expected {expected}: the input's shape {static} "
            f"with axis {axis} in blocks of {block_size}"
        )

    def repeat(t: te.Tensor) -> te.Tensor:
        def value(*i: Any) -> Any:
            return t(*[j // block_size if d == axis else j for d, j in enumerate(i)])

        return te.compute(dims, value, "block_repeat")

    return bb.emit_te(repeat, param)


def _quantized_dtype(attrs: dict[str, Any], zero_point_dtype: str | None) -> str:
    """QuantizeLinear's output type: the zero point's, else ``output_dtype``, else
    uint8; the two must agree where both are given."""
    output_dtype = attrs.get("output_dtype", 0)
    chosen = tensor_dtype_to_np_dtype(output_dtype).name if output_dtype else None
    if chosen is not None and zero_point_dtype is not None and chosen != zero_point_dtype:
        raise ModelError(
            f"QuantizeLinear output_dtype {chosen} differs from the type of "
            f"y_zero_point ({zero_point_dtype}); expected them to agree"
        )
    dtype = zero_point_dtype or chosen or "uint8"
    if dtype not in _INTEGER_RANGES and dtype not in _FLOAT_QUANTIZED:
        raise ModelError(
            f"QuantizeLinear output type {dtype}; expected one of "
            f"{', '.join([*_INTEGER_RANGES, *_FLOAT_QUANTIZED])}"
        )
    return dtype


@register_converter("", "QuantizeLinear", 10)
def quantize_linear(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``x / y_scale`` rounded (integer types: half to even, then saturated; float8
    with ``saturate``; float4 saturating) after adding ``y_zero_point``."""
    op = relax.op
    x, scale = inputs[0], inputs[1]
    x_dtype, scale_dtype = _logical_dtype(inputs, attrs, 0), _logical_dtype(inputs, attrs, 1)
    has_zp = _present(inputs, 2)
    zp_dtype = _logical_dtype(inputs, attrs, 2) if has_zp else None
    out_dtype = _quantized_dtype(attrs, zp_dtype)
    axis, block_size = int(attrs.get("axis", 1)), int(attrs.get("block_size", 0))
    precision = attrs.get("precision", 0)
    # The quotient's type: the given precision, else NumPy's promotion of the operands'.
    if precision:
        dtype = tensor_dtype_to_np_dtype(precision).name
    elif x_dtype == scale_dtype:
        dtype = x_dtype
    else:
        dtype = "float64" if x_dtype == "int32" else "float32"
    if dtype not in ("float32", "float16", "bfloat16", "float64"):
        raise ModelError(f"QuantizeLinear computes x / y_scale in {dtype}; expected a float type")
    if scale_dtype in FORMATS or scale_dtype == "float8_e8m0fnu":
        scale = _to_float32(bb, scale, scale_dtype)
    scale = _broadcastable(bb, scale, x, axis, block_size, "QuantizeLinear y_scale")
    quotient = op.divide(op.astype(x, dtype), op.astype(scale, dtype))
    wide = "float64" if dtype == "float64" else "float32"
    value = op.astype(quotient, wide)
    if out_dtype in _INTEGER_RANGES:
        value = op.round(value)
    if has_zp:
        zp = _broadcastable(bb, _to_float32(bb, inputs[2], str(zp_dtype)), x, axis, block_size,
                            "QuantizeLinear y_zero_point")  # fmt: skip
        value = op.add(value, op.astype(zp, wide))
    if out_dtype in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[out_dtype]
        return op.astype(op.clip(value, float(low), float(high)), CARRIER.get(out_dtype, out_dtype))
    value = bb.emit(op.astype(value, "float32"))
    if out_dtype == FLOAT4:
        return cast_sub_byte(bb, value, "float32", FLOAT4, True, "up")
    return cast_to(bb, value, out_dtype, bool(attrs.get("saturate", 1)))


@register_converter("", "DequantizeLinear", 10)
def dequantize_linear(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``(x - x_zero_point) * x_scale`` in float32, in ``output_dtype`` or the scale's
    type."""
    op = relax.op
    x, scale = inputs[0], inputs[1]
    x_dtype, scale_dtype = _logical_dtype(inputs, attrs, 0), _logical_dtype(inputs, attrs, 1)
    output_dtype = attrs.get("output_dtype", 0)
    out_dtype = tensor_dtype_to_np_dtype(output_dtype).name if output_dtype else scale_dtype
    if out_dtype not in _DEQUANTIZED:
        raise ModelError(
            f"DequantizeLinear output type {out_dtype}; expected one of "
            f"{', '.join(_DEQUANTIZED)} (set output_dtype where x_scale is of another type)"
        )
    axis, block_size = int(attrs.get("axis", 1)), int(attrs.get("block_size", 0))
    value = _to_float32(bb, x, x_dtype)
    # NumPy's promotion, as the reference computes: float32 less int32 is float64.
    wide = "float64" if x_dtype == "int32" and _present(inputs, 2) else "float32"
    if _present(inputs, 2):
        zp_dtype = _logical_dtype(inputs, attrs, 2)
        zp = inputs[2] if x_dtype == "int32" else _to_float32(bb, inputs[2], zp_dtype)
        zp = _broadcastable(bb, zp, x, axis, block_size, "DequantizeLinear x_zero_point")
        value = op.subtract(op.astype(value, wide), op.astype(zp, wide))
    scale = _broadcastable(bb, _to_float32(bb, scale, scale_dtype), x, axis, block_size,
                           "DequantizeLinear x_scale")  # fmt: skip
    value = op.multiply(value, op.astype(scale, wide))
    return op.astype(value, out_dtype)


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

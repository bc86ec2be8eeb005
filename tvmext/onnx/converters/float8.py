"""ONNX Cast and CastLike to and from the float8 types, bit-exact.

TVM 0.27's float8 casts lose zero and NaN and wrap around on overflow (measured: 0
reads back as 2**-7, 1e6 becomes -15). Here they are computed on the bits: decoding
builds the float32 bits (subnormals by an exact scale), encoding rounds the float32
mantissa to nearest-even and applies ONNX's ``saturate`` rule (out of range: the
largest finite value, else infinity or NaN as the format has them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tvm
from onnx.helper import tensor_dtype_to_np_dtype
from tvm import relax, te, tirx

from tvmext.onnx.registry import register_converter


@dataclass(frozen=True)
class Float8:
    """A float8 format: exponent and mantissa bits, bias, largest finite code, and
    whether it has infinities (else NaN is the overflow) and negative zero."""

    exponent: int
    mantissa: int
    bias: int
    max_code: int
    fnuz: bool  # one NaN (0x80), no infinity, no negative zero

    @property
    def has_inf(self) -> bool:
        return self.exponent == 5 and not self.fnuz


FORMATS = {
    "float8_e4m3fn": Float8(4, 3, 7, 0x7E, fnuz=False),
    "float8_e4m3fnuz": Float8(4, 3, 8, 0x7F, fnuz=True),
    "float8_e5m2": Float8(5, 2, 15, 0x7B, fnuz=False),
    "float8_e5m2fnuz": Float8(5, 2, 16, 0x7F, fnuz=True),
}


def _i32(value: int) -> tirx.PrimExpr:
    return tirx.const(value, "int32")


def _decode(bits: tirx.PrimExpr, fmt: Float8) -> tirx.PrimExpr:
    """float32 value of the float8 code ``bits`` (an int32 in 0..255)."""
    m_bits = fmt.mantissa
    sign = bits >> 7
    exponent = (bits >> m_bits) & _i32((1 << fmt.exponent) - 1)
    mantissa = bits & _i32((1 << m_bits) - 1)
    normal_bits = (sign << 31) | ((exponent - fmt.bias + 127) << 23) | (mantissa << (23 - m_bits))
    normal = tirx.reinterpret("float32", normal_bits.astype("uint32"))
    subnormal = mantissa.astype("float32") * tirx.const(2.0 ** (1 - fmt.bias - m_bits), "float32")
    subnormal = tirx.Select(sign == 1, -subnormal, subnormal)
    value = tirx.Select(exponent == 0, subnormal, normal)
    nan = tirx.const(float("nan"), "float32")
    if fmt.fnuz:
        return tirx.Select(bits == 0x80, nan, value)
    if fmt.has_inf:
        top = exponent == (1 << fmt.exponent) - 1
        inf = tirx.Select(sign == 1, tirx.const(-float("inf"), "float32"),
                          tirx.const(float("inf"), "float32"))  # fmt: skip
        return tirx.Select(top, tirx.Select(mantissa == 0, inf, nan), value)
    return tirx.Select((bits & 0x7F) == 0x7F, nan, value)


def _encode(x: tirx.PrimExpr, fmt: Float8, saturate: bool) -> tirx.PrimExpr:
    """float8 code (int32) of the float32 ``x``: round to nearest even, then ONNX's
    saturate rule."""
    m_bits, shift = fmt.mantissa, 23 - fmt.mantissa
    xb = tirx.reinterpret("uint32", x)
    sign = (xb >> tirx.const(31, "uint32")).astype("int32")
    magnitude = tirx.abs(x)
    exponent = ((xb >> tirx.const(23, "uint32")) & tirx.const(0xFF, "uint32")).astype("int32")
    mantissa = (xb & tirx.const(0x7FFFFF, "uint32")).astype("int32")
    # Normal range: keep the top mantissa bits, round the rest to nearest even.
    base = ((exponent - 127 + fmt.bias) << m_bits) + (mantissa >> shift)
    rest, half = mantissa & _i32((1 << shift) - 1), 1 << (shift - 1)
    round_up = tirx.Or(rest > half, tirx.And(rest == half, (base & 1) == 1))
    normal = base + tirx.Select(round_up, _i32(1), _i32(0))
    # Subnormal range: multiples of the smallest subnormal (a power of two: exact).
    quantum = 2.0 ** (1 - fmt.bias - m_bits)
    subnormal = tirx.nearbyint(magnitude * tirx.const(1 / quantum, "float32")).astype("int32")
    smallest_normal = tirx.const(2.0 ** (1 - fmt.bias), "float32")
    code = tirx.Select(magnitude < smallest_normal, subnormal, normal)
    nan_code = _i32(0x80) if fmt.fnuz else _i32(0x7F)
    if saturate:
        overflow = _i32(fmt.max_code)
    elif fmt.has_inf:
        overflow = _i32(0x7C)
    else:
        overflow = nan_code
    code = tirx.Select(code > fmt.max_code, overflow, code)
    if fmt.fnuz:
        signed = tirx.Select(tirx.Or(code == 0, code == 0x80), code, code | (sign << 7))
    else:
        signed = code | (sign << 7)
    return tirx.Select(tirx.isnan(x), nan_code, signed)


def cast_float8(bb: relax.BlockBuilder, data: relax.Expr, to: str, saturate: bool) -> relax.Expr:
    """``data`` cast to ``to``, where one of them is a float8 type."""
    source = str(data.ty.dtype)
    if source in FORMATS:
        fmt = FORMATS[source]

        def decode(t: te.Tensor) -> te.Tensor:
            def value(*i: Any) -> tirx.PrimExpr:
                bits = tirx.reinterpret("uint8", t(*i)).astype("int32")
                return _decode(bits, fmt)

            return te.compute(t.shape, value, "float8_decode")

        wide = bb.emit_te(decode, data)
        return wide if to == "float32" else cast_to(bb, wide, to, saturate)
    fmt = FORMATS[to]
    wide = data if source == "float32" else bb.emit(relax.op.astype(data, "float32"))

    def encode(t: te.Tensor) -> te.Tensor:
        def value(*i: Any) -> tirx.PrimExpr:
            code = _encode(t(*i), fmt, saturate).astype("uint8")
            return tirx.reinterpret(to, code)

        return te.compute(t.shape, value, "float8_encode")

    return bb.emit_te(encode, wide)


def cast_to(bb: relax.BlockBuilder, data: relax.Expr, to: str, saturate: bool) -> relax.Expr:
    """``data`` cast to ``to``: bit-exact for float8, else ``relax.op.astype``."""
    if to in FORMATS or str(data.ty.dtype) in FORMATS:
        return cast_float8(bb, data, to, saturate)
    return relax.op.astype(data, to)


def _involves_float8(data: relax.Expr, to: str) -> bool:
    ty = getattr(data, "ty", None)
    return isinstance(ty, relax.TensorType) and (to in FORMATS or str(ty.dtype) in FORMATS)


@register_converter("", "Cast", 19)
def cast(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Cast; float8 sources or targets bit-exact (see the module docstring)."""
    to = tensor_dtype_to_np_dtype(attrs["to"]).name
    if not _involves_float8(inputs[0], to) or isinstance(inputs[0], tvm.ir.GenericConst):
        return fallback()
    return cast_float8(bb, inputs[0], to, bool(attrs.get("saturate", 1)))


@register_converter("", "CastLike", 19)
def cast_like(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """CastLike; float8 sources or targets bit-exact."""
    target = getattr(inputs[1], "ty", None)
    if not isinstance(target, relax.TensorType):
        return fallback()
    to = str(target.dtype)
    if not _involves_float8(inputs[0], to) or isinstance(inputs[0], tvm.ir.GenericConst):
        return fallback()
    return cast_float8(bb, inputs[0], to, bool(attrs.get("saturate", 1)))

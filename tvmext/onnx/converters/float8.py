"""Casts to and from the float8 types, bit-exact.

TVM 0.27's float8 casts lose zero and NaN and wrap around on overflow (measured: 0
reads back as 2**-7, 1e6 becomes -15). Here they are computed on the bits: decoding
builds the float32 bits (subnormals by an exact scale), encoding rounds the float32
mantissa to nearest-even and applies ONNX's ``saturate`` rule (out of range: the
largest finite value, else infinity or NaN as the format has them). float8e8m0 (a
power of two: exponent only) rounds by the Cast's ``round_mode`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tvm import relax, te, tirx

from tvmext.errors import ModelError


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
    # ``x`` is read a dozen times: bound once, not copied with an inlined producer in
    # each copy, which TVM's simplifier takes minutes over. (Only ``x``, a float: TVM's
    # integer bound analysis rejects an integer Let that a loop's tail copies.)
    var = tirx.Var("f8_x", "float32")
    return tirx.Let(var, x, _encode_value(var, fmt, saturate))


def _encode_value(x: tirx.Var, fmt: Float8, saturate: bool) -> tirx.PrimExpr:
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
    if fmt.fnuz:  # no negative zero, and NaN is 0x80 alone
        signed = tirx.Select(tirx.Or(code == 0, code == 0x80), code, code | (sign << 7))
    else:
        signed = code | (sign << 7)
    return tirx.Select(tirx.isnan(x), nan_code, signed)


E8M0 = "float8_e8m0fnu"
FLOAT8 = {*FORMATS, E8M0}
_ROUND_MODES = ("up", "down", "nearest")


def _decode_e8m0(bits: tirx.PrimExpr) -> tirx.PrimExpr:
    """float32 value of the float8e8m0 code ``bits``: 2**(bits - 127), 255 is NaN."""
    # 2**-127 is a float32 subnormal: only its mantissa's top bit is set.
    value_bits = tirx.Select(bits == 0, _i32(0x00400000), bits << 23)
    value = tirx.reinterpret("float32", value_bits.astype("uint32"))
    return tirx.Select(bits == 0xFF, tirx.const(float("nan"), "float32"), value)


def _encode_e8m0(x: tirx.PrimExpr, saturate: bool, round_mode: str) -> tirx.PrimExpr:
    """float8e8m0 code (int32) of the float32 ``x``: its exponent, rounded by
    ``round_mode`` as ``onnx.numpy_helper.to_float8e8m0`` does (the sign is dropped;
    NaN and infinity give 255; ``saturate`` stops rounding up into 255)."""
    xb = tirx.reinterpret("uint32", x)
    exponent = ((xb >> tirx.const(23, "uint32")) & tirx.const(0xFF, "uint32")).astype("int32")

    def bit_set(mask: int) -> tirx.PrimExpr:
        return (xb & tirx.const(mask, "uint32")) != tirx.const(0, "uint32")

    if round_mode == "up":
        round_up = bit_set(0x7FFFFF)
    elif round_mode == "nearest":
        round_up = tirx.And(bit_set(0x400000), tirx.Or(bit_set(0x3FFFFF), exponent > 0))
    else:
        round_up = tirx.const(False, "bool")
    if saturate:
        round_up = tirx.And(round_up, exponent != 0xFE)
    code = exponent + tirx.Select(round_up, _i32(1), _i32(0))
    return tirx.Select(exponent == 0xFF, _i32(0xFF), code)


def cast_float8(
    bb: relax.BlockBuilder, data: relax.Expr, to: str, saturate: bool, round_mode: str = "up"
) -> relax.Expr:
    """``data`` cast to ``to``, where one of them is a float8 type."""
    if round_mode not in _ROUND_MODES:
        raise ModelError(f"round_mode is {round_mode!r}; expected one of {_ROUND_MODES}")
    source = str(data.ty.dtype)
    if source in FLOAT8:

        def decode(t: te.Tensor) -> te.Tensor:
            def value(*i: Any) -> tirx.PrimExpr:
                bits = tirx.reinterpret("uint8", t(*i)).astype("int32")
                return _decode_e8m0(bits) if source == E8M0 else _decode(bits, FORMATS[source])

            return te.compute(t.shape, value, "float8_decode")

        wide = bb.emit_te(decode, data)
        return wide if to == "float32" else cast_to(bb, wide, to, saturate, round_mode)
    wide = data if source == "float32" else bb.emit(relax.op.astype(data, "float32"))

    def encode(t: te.Tensor) -> te.Tensor:
        def value(*i: Any) -> tirx.PrimExpr:
            if to == E8M0:
                code = _encode_e8m0(t(*i), saturate, round_mode)
            else:
                code = _encode(t(*i), FORMATS[to], saturate)
            return tirx.reinterpret(to, code.astype("uint8"))

        return te.compute(t.shape, value, "float8_encode")

    return bb.emit_te(encode, wide)


def cast_to(
    bb: relax.BlockBuilder, data: relax.Expr, to: str, saturate: bool, round_mode: str = "up"
) -> relax.Expr:
    """``data`` cast to ``to``: bit-exact for float8, else ``relax.op.astype``."""
    if to in FLOAT8 or str(data.ty.dtype) in FLOAT8:
        return cast_float8(bb, data, to, saturate, round_mode)
    return relax.op.astype(data, to)

"""Casts to and from the sub-byte types (int4, uint4, int2, uint2, float4e2m1).

Inside a compiled model these tensors live in their byte carriers
(:mod:`tvmext.runtime.packed_dtypes`): the integer types as their values, float4 as
its code. The rules are those of the ONNX reference (NumPy with ``ml_dtypes``):
a float becomes an integer type by truncation, and a value outside the type's range
(NaN and infinities too) becomes 0; an integer wraps to the type's low bits; a float
becomes float4 by rounding to nearest even, saturating at ±6, with NaN as -0.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import relax, te, tirx

from tvmext.onnx.converters.float8 import FLOAT8, cast_to
from tvmext.runtime.packed_dtypes import CARRIER, CODED

FLOAT4 = "float4_e2m1fn"
_BITS = {"int4": 4, "uint4": 4, "int2": 2, "uint2": 2}
# float4 magnitudes' codes by upper bound: a bound is inclusive where the code below
# it is even (ties round to the even code).
_FLOAT4_BOUNDS = (
    (0.25, True),
    (0.75, False),
    (1.25, True),
    (1.75, False),
    (2.5, True),
    (3.5, False),
    (5.0, True),
)


def _i32(value: int) -> tirx.PrimExpr:
    return tirx.const(value, "int32")


def _decode_float4(code: tirx.PrimExpr) -> tirx.PrimExpr:
    """float32 value of the float4e2m1 ``code`` (an int32 in 0..15)."""
    exponent, mantissa = (code >> 1) & 3, code & 1
    # 1.m * 2**(e-1) for normal codes, 0.m for the subnormals (e = 0).
    normal = ((mantissa + 2) << exponent).astype("float32") * tirx.const(0.25, "float32")
    subnormal = mantissa.astype("float32") * tirx.const(0.5, "float32")
    magnitude = tirx.Select(exponent == 0, subnormal, normal)
    return tirx.Select((code >> 3) == 1, -magnitude, magnitude)


def _encode_float4(x: tirx.PrimExpr, dtype: str) -> tirx.PrimExpr:
    """float4e2m1 code (int32) of ``x``, of the float type ``dtype``."""
    magnitude = tirx.abs(x)
    code = _i32(7)
    for value, (bound, inclusive) in reversed(list(enumerate(_FLOAT4_BOUNDS))):
        bound_const = tirx.const(bound, dtype)
        below = magnitude <= bound_const if inclusive else magnitude < bound_const
        code = tirx.Select(below, _i32(value), code)
    bits = tvm.DataType(dtype).bits
    sign = tirx.reinterpret(f"uint{bits}", x) >> tirx.const(bits - 1, f"uint{bits}")
    signed = tirx.Select(sign == tirx.const(1, f"uint{bits}"), code | 8, code)  # -0 too
    return tirx.Select(tirx.isnan(x), _i32(8), signed)


def _encode_int(x: tirx.PrimExpr, dtype: str, to: str, carrier: str) -> tirx.PrimExpr:
    """The value of ``x`` (of type ``dtype``) in the sub-byte integer type ``to``, as
    ``carrier``."""
    bits = _BITS[to]
    signed = not to.startswith("u")
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if "float" in dtype:
        whole = tirx.trunc(x)
        inside = tirx.And(whole >= tirx.const(low, dtype), whole <= tirx.const(high, dtype))
        return tirx.Select(inside, whole, tirx.const(0, dtype)).astype(carrier)
    wrapped = x.astype("int64") & tirx.const((1 << bits) - 1, "int64")
    if signed:
        wrapped = tirx.Select(wrapped > high, wrapped - (1 << bits), wrapped)
    return wrapped.astype(carrier)


def _map(bb: relax.BlockBuilder, data: relax.Expr, fn: Any, name: str) -> relax.Expr:
    """``fn(element, dtype)`` applied to each element of ``data``."""

    def compute(t: te.Tensor) -> te.Tensor:
        return te.compute(t.shape, lambda *i: fn(t(*i), str(t.dtype)), name)

    return bb.emit_te(compute, data)


def cast_sub_byte(
    bb: relax.BlockBuilder,
    data: relax.Expr,
    source: str,
    to: str,
    saturate: bool,
    round_mode: str,
) -> relax.Expr:
    """``data`` (of logical type ``source``, in its carrier if sub-byte) cast to the
    logical type ``to``; one of the two is a sub-byte type."""
    if source in CODED:
        data = _map(bb, data, lambda c, _: _decode_float4(c.astype("int32")), "float4_decode")
    elif source in FLOAT8 and to in CARRIER:
        data = cast_to(bb, data, "float32", saturate)
    if to not in CARRIER:
        return cast_to(bb, data, to, saturate, round_mode)
    dtype = str(data.ty.dtype)
    if dtype in ("float16", "bfloat16") or (to in CODED and "float" not in dtype):
        # Exact (float16, bfloat16) or as exact as float4 needs: compare in float32.
        data, dtype = bb.emit(relax.op.astype(data, "float32")), "float32"
    carrier = CARRIER[to]
    if to in CODED:
        encode = _map(bb, data, lambda x, dtype: _encode_float4(x, dtype), "float4_encode")
        return bb.emit(relax.op.astype(encode, carrier))
    return _map(bb, data, lambda x, dtype: _encode_int(x, dtype, to, carrier), "sub_byte_encode")

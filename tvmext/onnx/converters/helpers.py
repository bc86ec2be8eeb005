"""Helpers the ONNX converters share: constants of an exact dtype, shapes read at run
time, rounding to half floats, and half-float products accumulated in float32."""

from __future__ import annotations

from typing import Any

import numpy as np
from tvm import relax, te, tirx


def const(value: Any) -> relax.Expr:
    """A constant with exactly ``value``'s NumPy dtype (``relax.const`` alone turns
    int64 into int32 and float64 into float32)."""
    array = np.asarray(value)
    return relax.const(array, str(array.dtype))


def runtime_shape(bb: relax.BlockBuilder, dims: relax.Expr, rank: int, prefix: str) -> relax.Expr:
    """An int64 tensor ``dims`` of static length ``rank`` as a shape of fresh symbolic
    dimensions, for ops whose output shape is data."""
    dims = bb.match_cast(bb.normalize(dims), relax.TensorType([rank], "int64"))
    shape = bb.emit(relax.op.tensor_to_shape(dims))
    values = [tirx.Var(f"{prefix}{i}", "int64") for i in range(rank)]
    bb.match_cast(shape, relax.ShapeType(values))
    return relax.ShapeExpr(values)


# Float dtypes whose matmuls accumulate in float32 (as NumPy computes them).
HALF_FLOATS = ("float16", "bfloat16")


def _bfloat16_rounded(x: te.Tensor) -> te.Tensor:
    def rounded(*index: Any) -> Any:
        value = x(*index)
        bits = tirx.reinterpret("uint32", value)
        lsb = (bits >> tirx.const(16, "uint32")) & tirx.const(1, "uint32")
        kept = (bits + tirx.const(0x7FFF, "uint32") + lsb) & tirx.const(0xFFFF0000, "uint32")
        return tirx.Select(tirx.isnan(value), value, tirx.reinterpret("float32", kept))

    return te.compute(x.shape, rounded, name="bfloat16_rounded")


def narrow_float32(bb: relax.BlockBuilder, x: relax.Expr, dtype: str) -> relax.Expr:
    """A float32 ``x`` rounded (to nearest even) to ``dtype``.

    For bfloat16 the rounding is done on the float32 bits first: TVM 0.27's bf16
    legalization drops a ``Cast(bfloat16, x)`` that feeds bf16 arithmetic in the same
    kernel (it computes on the unrounded float32 value), so the cast alone may not round.
    """
    if dtype == "bfloat16":
        x = bb.emit_te(_bfloat16_rounded, x, primfunc_name_hint="bfloat16_rounded")
    return relax.op.astype(x, dtype)


def matmul_float32_accumulated(
    bb: relax.BlockBuilder, a: relax.Expr, b: relax.Expr, dtype: str
) -> relax.Expr:
    """``a @ b`` in ``dtype``; float16/bfloat16 products accumulate in float32 and are
    rounded once per element (as NumPy and ONNX Runtime compute them), not once per term."""
    if dtype not in HALF_FLOATS:
        return relax.op.matmul(a, b)
    return narrow_float32(bb, bb.emit(relax.op.matmul(a, b, out_dtype="float32")), dtype)


# Consumers that use a ShapeExpr as a shape, where TVM's own path works best.

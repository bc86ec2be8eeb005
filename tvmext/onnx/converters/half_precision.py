"""ONNX ``MatMul`` and ``Softmax`` of float16/bfloat16 tensors with the reference's
rounding. TVM's importer computes both in the tensor's own type, so a float16 matmul
rounds after every product it adds and a float16 softmax sums in float16; the ONNX
reference (NumPy, ml_dtypes) accumulates matmuls of both types, and float16 sums, in
float32, rounding once. Other dtypes go to TVM's importer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tvm import relax

from tvmext.onnx.converters.helpers import HALF_FLOATS, matmul_float32_accumulated, narrow_float32
from tvmext.onnx.registry import register_converter


def _dtype(x: relax.Expr) -> str | None:
    ty = getattr(x, "ty", None)
    return str(ty.dtype) if isinstance(ty, relax.TensorType) else None


@register_converter("", "MatMul", 1)
def matmul(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``A @ B`` (NumPy semantics); float16/bfloat16 products accumulate in float32."""
    a, b = inputs
    dtype = _dtype(a)
    if dtype not in HALF_FLOATS or _dtype(b) != dtype:
        return fallback()
    return matmul_float32_accumulated(bb, a, b, dtype)


@register_converter("", "Softmax", 13)
def softmax(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``exp(x - max) / sum(exp(x - max))`` along ``axis`` (default -1), each step
    rounded to x's type as the reference does; a float16 sum accumulates in float32."""
    op = relax.op
    x = inputs[0]
    dtype = _dtype(x)
    if dtype not in HALF_FLOATS:
        return fallback()
    axis = attrs.get("axis", -1)
    exps = bb.emit(op.exp(op.subtract(x, op.max(x, axis=axis, keepdims=True))))
    if dtype == "float16":
        wide = bb.emit(op.sum(op.astype(exps, "float32"), axis=axis, keepdims=True))
        total = narrow_float32(bb, wide, dtype)
    else:
        total = op.sum(exps, axis=axis, keepdims=True)
    return op.divide(exps, bb.emit(total))

"""Elementwise ONNX ops TVM 0.27's importer lacks (Swish, SwiGLU, Celu, BitCast), gets
wrong at the edges (IsInf ignores its sign attributes; BitShift by a negative or too
wide amount; Mish and Softplus lose precision for very negative x), computes in
float32 whatever the input type (Elu), rejects for mixed types (Pow), or imports as opaque TE calls
(Clip with constant bounds becomes ``relax.clip``, which layout passes carry and
targets fuse, e.g. ReLU6 into a convolution)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tvm
from onnx.helper import tensor_dtype_to_np_dtype
from tvm import relax, te, tirx

from tvmext.errors import ModelError
from tvmext.onnx.converters.helpers import const
from tvmext.onnx.registry import register_converter


def _scalar(value: float, like: relax.Expr) -> relax.Expr:
    return const(np.array(value, dtype=str(like.ty.dtype)))


def _swish(x: relax.Expr, alpha: float) -> relax.Expr:
    return relax.op.multiply(x, relax.op.sigmoid(relax.op.multiply(x, _scalar(alpha, x))))


@register_converter("", "Swish", 24)
def swish(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``x * sigmoid(alpha * x)``."""
    return _swish(inputs[0], attrs.get("alpha", 1.0))


@register_converter("", "SwiGLU", 28)
def swiglu(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``Swish_alpha(A) * B``."""
    return relax.op.multiply(_swish(inputs[0], attrs.get("alpha", 1.0)), inputs[1])


@register_converter("", "Celu", 12)
def celu(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    op, x = relax.op, inputs[0]
    alpha = _scalar(attrs.get("alpha", 1.0), x)
    zero, one = _scalar(0, x), _scalar(1, x)
    negative = op.multiply(alpha, op.subtract(op.exp(op.divide(x, alpha)), one))
    return op.add(op.maximum(zero, x), op.minimum(zero, negative))


@register_converter("", "Elu", 6)
def elu(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``x`` if positive, else ``alpha * (exp(x) - 1)``, in the input's type."""
    op, x = relax.op, inputs[0]
    alpha, zero, one = _scalar(attrs.get("alpha", 1.0), x), _scalar(0, x), _scalar(1, x)
    negative = op.multiply(alpha, op.subtract(op.exp(x), one))
    return op.where(op.greater(x, zero), x, negative)


def _bound(expr: relax.Expr | None) -> float | None:
    """A scalar constant clip bound (NaN meaning none, as in ONNX Runtime)."""
    if not isinstance(expr, tvm.ir.Constant) or expr.value.numpy().size != 1:
        return None
    return float(expr.value.numpy().reshape(()))


@register_converter("", "Clip", 6)
def clip(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``relax.clip`` for a float tensor and constant bounds (attributes before opset 11,
    optional inputs since); otherwise TVM's importer."""
    x, given = inputs[0], list(inputs[1:]) + [None] * (3 - len(inputs))
    ty = getattr(x, "ty", None)
    if not (isinstance(ty, relax.TensorType) and "float" in str(ty.dtype)):
        return fallback()
    bounds = [attrs.get("min", -np.inf), attrs.get("max", np.inf)]
    for i, expr in enumerate(given):
        if expr is not None:
            value = _bound(expr)
            if value is None:
                return fallback()
            bounds[i] = value if not np.isnan(value) else bounds[i]
    return relax.op.clip(x, float(bounds[0]), float(bounds[1]))


@register_converter("", "Pow", 12)
def power(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``X ** Y`` in X's type, also when Y's type differs or both are integers (TVM's
    power takes one float type)."""
    op, (base, exponent) = relax.op, inputs
    base_ty, exponent_ty = getattr(base, "ty", None), getattr(exponent, "ty", None)
    if not (isinstance(base_ty, relax.TensorType) and isinstance(exponent_ty, relax.TensorType)):
        return fallback()
    dtype, exponent_dtype = str(base_ty.dtype), str(exponent_ty.dtype)
    if "float" in dtype:
        return op.power(base, exponent if exponent_dtype == dtype else op.astype(exponent, dtype))
    # An integer base: computed in float64, rounded back (exact for results below 2**53).
    wide = op.power(op.astype(base, "float64"), op.astype(exponent, "float64"))
    return op.astype(op.round(wide) if "float" not in exponent_dtype else op.trunc(wide), dtype)


@register_converter("", "BitCast", 26)
def bitcast(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """The same bits read as the ``to`` type (of the same width)."""
    x = inputs[0]
    source = np.dtype(str(x.ty.dtype))
    target = tensor_dtype_to_np_dtype(attrs["to"])
    if source.itemsize != target.itemsize:
        raise ModelError(
            f"BitCast from {source} to {target}: the types must have the same bit width"
        )
    if source == target:
        return x
    dtype = str(target)
    if source == np.bool_ or target == np.bool_:
        # bool is one byte in memory but one bit in TIR: go through its integer value.
        return relax.op.astype(x, dtype)
    return bb.emit_te(
        lambda t: te.compute(t.shape, lambda *i: tirx.reinterpret(dtype, t(*i)), "bitcast"), x
    )


@register_converter("", "IsInf", 10)
def isinf(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Infinity test honouring ``detect_positive``/``detect_negative`` (TVM's importer
    ignores them and detects both signs)."""
    op, x = relax.op, inputs[0]
    positive, negative = attrs.get("detect_positive", 1), attrs.get("detect_negative", 1)
    infinite = op.isinf(x)
    if positive and negative:
        return infinite
    if not positive and not negative:
        return op.zeros_like(infinite)
    zero = _scalar(0, x)
    return op.logical_and(infinite, op.greater(x, zero) if positive else op.less(x, zero))


@register_converter("", "BitShift", 11)
def bitshift(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``X << Y`` or ``X >> Y`` with the reference's result for a shift below zero or at
    least the bit width (TVM shifts by it as given, which LLVM leaves undefined): 0, or
    for a right shift of a negative signed value, -1."""
    op, (x, y) = relax.op, inputs
    direction = attrs.get("direction", "LEFT")
    if direction not in ("LEFT", "RIGHT"):
        raise ModelError(f"BitShift direction {direction!r}: expected LEFT or RIGHT")
    dtype = np.dtype(str(x.ty.dtype))
    width = np.iinfo(dtype).bits
    zero, last = const(np.array(0, dtype)), const(np.array(width - 1, dtype))
    out_of_range = op.logical_or(op.less(y, zero), op.greater(y, last))
    amount = op.minimum(op.maximum(y, zero), last)
    if direction == "LEFT":
        return op.where(out_of_range, zero, op.left_shift(x, amount))
    # An arithmetic shift by width - 1 gives -1 for a negative signed value and 0 else.
    fill = op.right_shift(x, last) if dtype.kind == "i" else zero
    return op.where(out_of_range, fill, op.right_shift(x, amount))


@register_converter("", "Mish", 18)
def mish(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``x * tanh(log(1 + e^x))`` as ``x * n (n + 2) / (n (n + 2) + 2)`` with ``n = e^x``:
    TVM's importer's ``log(1 + e^x)`` and ``tanh`` lose the relative precision where the
    result is tiny (very negative x)."""
    op, x = relax.op, inputs[0]
    # Beyond this, tanh(softplus(x)) is 1 to the type's precision and n * n overflows.
    limit = _scalar(5.0 if str(x.ty.dtype) == "float16" else 20.0, x)
    n = op.exp(op.minimum(x, limit))
    ratio = op.multiply(n, op.add(n, _scalar(2, x)))
    ratio = op.divide(ratio, op.add(ratio, _scalar(2, x)))
    return op.where(op.greater(x, limit), x, op.multiply(x, ratio))


@register_converter("", "Softplus", 1)
def softplus(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """``log(1 + e^x)`` as ``max(x, 0) + log1p(e^-|x|)``: TVM's importer's
    ``log(1 + e^-|x|)`` rounds away the relative precision where the result is tiny
    (very negative x, as in Mish's expansion). 16-bit floats compute in float32."""
    x = inputs[0]
    dtype = str(x.ty.dtype)
    wide = "float32" if dtype in ("float16", "bfloat16") else dtype

    def compute(t: te.Tensor) -> te.Tensor:
        def element(*i: tirx.Var) -> tirx.PrimExpr:
            v = t(*i).astype(wide)
            zero = tirx.const(0, wide)
            result = tirx.max(v, zero) + tirx.log1p(tirx.exp(zero - tirx.abs(v)))
            return result.astype(dtype)

        return te.compute(t.shape, element, name="softplus")

    return bb.emit_te(compute, x)

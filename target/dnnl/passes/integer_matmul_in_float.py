"""Run a matmul of two quantized activations as a float32 matmul (for the dnnl target).

A QDQ transformer's attention products (``Q K^T`` and ``softmax(...) V``) become
integer matmuls of two runtime uint8/int8 tensors minus their zero points; oneDNN's int8
primitives take constant weights only, so they ran as TVM's int32 loops (a quantized
ViT spent 60% of its time there). In float32 the same matmul is exact: each operand is
an integer of magnitude at most ``m`` (255 for a uint8/int8 tensor minus a zero point in
its range), so every partial sum of ``K`` products is at most ``K * m_a * m_b``, which
float32 holds exactly up to 2**24 (``K <= 258`` for 255 and 255: the head sizes of
such models), in any summation order. So
``astype(matmul(a - za, b - zb, out_dtype=int32), float32)`` becomes
``matmul(astype(a, float32) - za, astype(b, float32) - zb)``, which oneDNN runs. Each
operand is also held exactly in bf16 (integers up to 256; oneDNN's bf16 matmul sums in
float32), so a reduced-precision compile gets the same integers.

Precondition: runs in the ``layout`` phase, after ``tvmext.fold_weight_layouts`` has
made the zero points constants.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, is_const, is_op, wildcard

from tvmext.dims import static_shape
from tvmext.pass_registry import function_pass, register_pass
from tvmext.target.dnnl.patterns import INT8_RANGES

# Integers float32 holds exactly: up to 2**24 in magnitude; bf16 up to 256.
EXACT_LIMIT = 2**24
BF16_EXACT_LIMIT = 256


def _operand() -> tuple[DFPattern, DFPattern, DFPattern, DFPattern]:
    """``astype(x, int32) [- zero_point]``: the pattern, and its ``x``, widening and zero
    point."""
    data, zero_point = wildcard(), is_const()
    widened = is_op("relax.astype")(data)
    return is_op("relax.subtract")(widened, zero_point) | widened, data, widened, zero_point


def _dtype(expr: relax.Expr) -> str:
    return str(expr.ty.dtype) if isinstance(expr.ty, relax.TensorType) else ""


def _in_float(
    data: relax.Expr, widened: relax.Expr, zero_point: relax.Expr | None
) -> tuple[relax.Expr, int] | None:
    """``astype(data, float32) - zero_point`` and the largest magnitude it can have, if
    ``data`` is uint8/int8 widened to int32 and the zero point one int32."""
    if _dtype(data) not in INT8_RANGES or _dtype(widened) != "int32":
        return None
    lo, hi = INT8_RANGES[_dtype(data)]
    in_float = relax.op.astype(data, "float32")
    if zero_point is None:
        return in_float, max(-lo, hi)
    values = zero_point.value.numpy()
    if values.dtype != "int32" or values.size != 1:
        return None
    value = int(values.reshape(-1)[0])
    # the zero point's shape kept: it may broadcast the result to more dims
    shifted = relax.op.subtract(in_float, relax.const(values.astype("float32")))
    return shifted, max(abs(lo - value), abs(hi - value))


def _rewrite(expr: relax.Expr, matches: Any, parts: dict[str, DFPattern]) -> relax.Expr:
    matmul = matches[parts["matmul"]]
    if str(matmul.attrs.out_dtype) != "int32" or _dtype(expr) != "float32":
        return expr
    shape = static_shape(matmul.args[0])
    if shape is None:
        return expr
    operands, bound = [], shape[-1]
    for side in ("a", "b"):
        operand = _in_float(
            matches[parts[f"{side}_data"]],
            matches[parts[f"{side}_widened"]],
            matches.get(parts[f"{side}_zero_point"]),
        )
        if operand is None or operand[1] > BF16_EXACT_LIMIT:
            return expr
        operands.append(operand[0])
        bound *= operand[1]
    if bound > EXACT_LIMIT:
        return expr
    return relax.op.matmul(*operands, out_dtype="float32")


def _parts() -> dict[str, DFPattern]:
    a, a_data, a_widened, a_zero_point = _operand()
    b, b_data, b_widened, b_zero_point = _operand()
    matmul = is_op("relax.matmul")(a, b)
    return {
        "matmul": matmul, "cast": is_op("relax.astype")(matmul),
        "a_data": a_data, "a_widened": a_widened, "a_zero_point": a_zero_point,
        "b_data": b_data, "b_widened": b_widened, "b_zero_point": b_zero_point,
    }  # fmt: skip


@register_pass("tvmext.integer_matmul_in_float", targets=("dnnl",))
def integer_matmul_in_float() -> tvm.transform.Pass:
    """Rewrite an int32 matmul of two uint8/int8 tensors, cast to float32, into a float32
    matmul where that is exact."""
    parts = _parts()

    return function_pass(
        "tvmext.IntegerMatmulInFloat",
        lambda func: relax.dpl.rewrite_call(
            parts["cast"], lambda e, m: _rewrite(e, m, parts), func
        ),
    )

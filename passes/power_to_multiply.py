"""``x ** 2`` and ``x ** 3`` as products, ``x ** 0.5`` as a square root.

TVM's LLVM backend has no vector math library: ``power`` becomes a call of ``powf`` per
element, a scalar loop (Llama's RMSNorm squares its input with ``pow(x, 2)``: 0.1 ms
for 32K elements, as long as a oneDNN matmul of the layer). Products and ``sqrt`` are
vector instructions. Exact for 2 and 3 (one or two roundings, as ``powf`` within an
ulp); ``sqrt`` is correctly rounded.
"""

from __future__ import annotations

from typing import Any

import tvm
import tvm_ffi
from tvm import relax
from tvm.relax.dpl import DFPattern, is_const, is_op, wildcard

from tvmext.pass_registry import function_pass, register_pass


def _patterns() -> tuple[dict[str, DFPattern], DFPattern]:
    parts: dict[str, DFPattern] = {"x": wildcard(), "exponent": is_const()}
    parts["power"] = is_op("relax.power")(parts["x"], parts["exponent"])
    return parts, parts["power"]


def _rewrite(expr: relax.Expr, matches: dict[DFPattern, relax.Expr], parts: dict[str, Any]) -> Any:
    x, exponent = matches[parts["x"]], matches[parts["exponent"]].value.numpy()
    ty = x.ty
    if exponent.size != 1 or not isinstance(ty, relax.TensorType) or "float" not in str(ty.dtype):
        return expr
    if not tvm_ffi.structural_equal(ty, expr.ty):  # the exponent broadcasts the result
        return expr
    value = float(exponent.reshape(()))
    if value == 2.0:
        return relax.op.multiply(x, x)
    if value == 3.0:
        return relax.op.multiply(relax.op.multiply(x, x), x)
    if value == 0.5:
        return relax.op.sqrt(x)
    return expr


@register_pass("tvmext.power_to_multiply", targets=("*",))
def power_to_multiply() -> tvm.transform.Pass:
    """Rewrite ``power(x, c)`` for a scalar constant ``c`` of 2, 3 or 0.5."""
    parts, pattern = _patterns()
    return function_pass(
        "tvmext.PowerToMultiply",
        lambda func: relax.dpl.rewrite_call(pattern, lambda e, m: _rewrite(e, m, parts), func),
    )

"""Recognize GELU's tanh approximation written out (for the dnnl target).

GPT-2 and its relatives (``transformers``' ``NewGELUActivation``) compute
``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x ** 3)))``: nine element-wise
ops, a ``pow`` among them, that the pattern table cannot fuse and that cost GPT-2 a
third of its time as a TVM kernel. This pass rewrites each such expression, in any of
the association orders of the outer product, to ``nn.gelu_tanh``, which oneDNN fuses
as an ``eltwise_gelu_tanh`` post-op. Constants must be scalars with the values of the
formula (within float32 rounding); anything else is left as it is.

Precondition: runs in the ``prepare`` phase, before layouts are chosen.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, is_const, is_op, wildcard

from tvmext.pass_registry import function_pass, register_pass

_VALUES = {"cube": 3.0, "coeff": 0.044715, "scale": math.sqrt(2.0 / math.pi), "one": 1.0}


def _patterns() -> tuple[dict[str, DFPattern], DFPattern]:
    x = wildcard()
    parts: dict[str, DFPattern] = {"x": x, "half": is_const()}
    parts.update({k: is_const() for k in _VALUES})
    mul = is_op("relax.multiply")
    cubed = mul(is_op("relax.power")(x, parts["cube"]), parts["coeff"])
    inner = mul(is_op("relax.add")(x, cubed), parts["scale"])
    one_plus = is_op("relax.add")(is_op("relax.tanh")(inner), parts["one"])
    half = parts["half"]
    pattern = (
        mul(mul(x, half), one_plus) | mul(mul(x, one_plus), half) | mul(x, mul(one_plus, half))
    )
    return parts, pattern


def _scalar(expr: relax.Expr) -> float | None:
    value = np.asarray(expr.value.numpy())
    return float(value) if value.size == 1 else None


def _rewrite(expr: relax.Expr, matches: dict[DFPattern, relax.Expr], parts: dict[str, Any]) -> Any:
    x = matches[parts["x"]]
    wanted = {**_VALUES, "half": 0.5}
    for name, want in wanted.items():
        got = _scalar(matches[parts[name]])
        if got is None or not math.isclose(got, want, rel_tol=1e-6):
            return expr
    if not isinstance(x.ty, relax.TensorType) or x.ty.dtype != expr.ty.dtype:
        return expr
    return relax.op.nn.gelu_tanh(x)


@register_pass("tvmext.gelu_tanh", targets=("dnnl",))
def gelu_tanh() -> tvm.transform.Pass:
    """Rewrite ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))`` to
    ``nn.gelu_tanh(x)``."""
    parts, pattern = _patterns()

    return function_pass(
        "tvmext.GeluTanh",
        lambda func: relax.dpl.rewrite_call(pattern, lambda e, m: _rewrite(e, m, parts), func),
    )

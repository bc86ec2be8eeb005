"""Recognize GELU written out with ``erf`` (for the dnnl target).

ONNX before opset 20 has no Gelu: exporters write ``0.5 * x * (1 + erf(x / sqrt(2)))``
(or with ``x * (1 / sqrt(2))``), five element-wise ops that the pattern table cannot
fuse into the matmul or convolution before them. This pass rewrites each such
expression, in any of its association orders, to ``nn.gelu`` (erf form), which oneDNN
fuses as an ``eltwise_gelu_erf`` post-op. Constants must be scalars with the values
of the formula (within float32 rounding); anything else is left as it is.

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


def _patterns() -> tuple[dict[str, DFPattern], DFPattern]:
    x = wildcard()
    parts = {"x": x, "scale": is_const(), "one": is_const(), "half": is_const()}
    divided = is_op("relax.divide")(x, parts["scale"])
    scaled = is_op("relax.multiply")(x, parts["scale"])
    one_plus = is_op("relax.add")(is_op("relax.erf")(divided | scaled), parts["one"])
    mul = is_op("relax.multiply")
    half = parts["half"]
    pattern = (
        mul(mul(x, one_plus), half) | mul(mul(x, half), one_plus) | mul(x, mul(one_plus, half))
    )
    return parts, pattern


def _scalar(expr: relax.Expr) -> float | None:
    value = np.asarray(expr.value.numpy())
    return float(value) if value.size == 1 else None


def _rewrite(expr: relax.Expr, matches: dict[DFPattern, relax.Expr], parts: dict[str, Any]) -> Any:
    x = matches[parts["x"]]
    scale, one, half = (_scalar(matches[parts[k]]) for k in ("scale", "one", "half"))
    if scale is None or one is None or half is None:
        return expr
    divides = any(
        isinstance(v, relax.Call) and v.op.name == "relax.divide" for v in matches.values()
    )
    want = math.sqrt(2.0) if divides else 1.0 / math.sqrt(2.0)
    close = [math.isclose(a, b, rel_tol=1e-6) for a, b in ((scale, want), (one, 1.0), (half, 0.5))]
    if not all(close) or not isinstance(x.ty, relax.TensorType) or x.ty.dtype != expr.ty.dtype:
        return expr
    return relax.op.nn.gelu(x)


@register_pass("tvmext.gelu_erf", targets=("dnnl",))
def gelu_erf() -> tvm.transform.Pass:
    """Rewrite ``0.5 * x * (1 + erf(x / sqrt(2)))`` to ``nn.gelu(x)``."""
    parts, pattern = _patterns()

    return function_pass(
        "tvmext.GeluErf",
        lambda func: relax.dpl.rewrite_call(pattern, lambda e, m: _rewrite(e, m, parts), func),
    )

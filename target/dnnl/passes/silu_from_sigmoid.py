"""Recognize SiLU written out as ``x * sigmoid(x)`` (for the dnnl target).

ONNX has no SiLU before opset 24 (HardSwish aside): exporters write the Swish
activation of EfficientNet, MobileNetV3's successors and many LLM MLPs as a ``Sigmoid``
and a ``Mul`` of the same tensor. Two ops whose operands both come from the
convolution or matmul before them cannot be post-ops; this pass rewrites each such
product, in either operand order, to ``nn.silu(x)``, which oneDNN fuses as one
``eltwise_swish`` post-op.

Precondition: runs in the ``prepare`` phase, before layouts are chosen; the product
must multiply the sigmoid's own input (anything else is left as it is).
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, is_op, wildcard

from tvmext.pass_registry import function_pass, register_pass


def _patterns() -> tuple[dict[str, DFPattern], DFPattern]:
    x = wildcard()
    gate = is_op("relax.sigmoid")(x)
    product = is_op("relax.multiply")(x, gate) | is_op("relax.multiply")(gate, x)
    return {"x": x}, product


def _rewrite(expr: relax.Expr, matches: dict[DFPattern, relax.Expr], parts: dict[str, Any]) -> Any:
    x = matches[parts["x"]]
    if not isinstance(x.ty, relax.TensorType) or x.ty.dtype != expr.ty.dtype:
        return expr
    return relax.op.nn.silu(x)


@register_pass("tvmext.silu_from_sigmoid", targets=("dnnl",))
def silu_from_sigmoid() -> tvm.transform.Pass:
    """Rewrite ``x * sigmoid(x)`` (either order) to ``nn.silu(x)``."""
    parts, pattern = _patterns()

    return function_pass(
        "tvmext.SiluFromSigmoid",
        lambda func: relax.dpl.rewrite_call(pattern, lambda e, m: _rewrite(e, m, parts), func),
    )

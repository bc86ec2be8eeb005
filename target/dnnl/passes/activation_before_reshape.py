"""Move an activation from after a reshape to before it (for the dnnl target).

Exported transformer MLPs compute ``reshape(matmul(x, W), [B, S, F])`` and apply the
activation to the reshaped tensor (GPT-2: ``[64, 1024] -> [1, 64, 1024]``, then GELU).
An element-wise function commutes with a reshape, and with the activation right after
the matmul oneDNN fuses it as a post-op instead of TVM running it as a kernel of its
own; the reshape is a view either way.

Precondition: runs in the ``layout`` phase, after the passes that form the activations
(``gelu_erf``, ``gelu_tanh``, ``silu_from_sigmoid``) and before partitioning.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, is_op, wildcard

from tvmext.pass_registry import function_pass, register_pass

ACTIVATIONS = {
    "relax.nn.relu": relax.op.nn.relu,
    "relax.nn.gelu": relax.op.nn.gelu,
    "relax.nn.gelu_tanh": relax.op.nn.gelu_tanh,
    "relax.nn.silu": relax.op.nn.silu,
    "relax.sigmoid": relax.op.sigmoid,
}


def _patterns() -> tuple[dict[str, DFPattern], DFPattern]:
    parts = {"reshape": is_op("relax.reshape")(wildcard(), wildcard())}
    acts = [is_op(name)(parts["reshape"]) for name in ACTIVATIONS]
    pattern = acts[0]
    for alt in acts[1:]:
        pattern = pattern | alt
    return parts, pattern


def _rewrite(expr: relax.Expr, matches: dict[DFPattern, relax.Expr], parts: dict[str, Any]) -> Any:
    reshape = matches[parts["reshape"]]
    data, shape = reshape.args
    activation = ACTIVATIONS[expr.op.name]
    return relax.op.reshape(activation(data), shape)


@register_pass("tvmext.activation_before_reshape", targets=("dnnl",))
def activation_before_reshape() -> tvm.transform.Pass:
    """Rewrite ``act(reshape(x, s))`` to ``reshape(act(x), s)`` for oneDNN's activations."""
    parts, pattern = _patterns()

    return function_pass(
        "tvmext.ActivationBeforeReshape",
        lambda func: relax.dpl.rewrite_call(pattern, lambda e, m: _rewrite(e, m, parts), func),
    )

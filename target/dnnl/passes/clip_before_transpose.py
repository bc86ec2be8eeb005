"""Clip before the transpose that ends a run of NHWC ops (for the dnnl target).

Where ConvertLayout stops (an op without a layout rule after the clip) or a model
transposes a convolution's result itself, a ReLU6 (``clip(x, 0, 6)``) can read the
transpose back to NCHW, and the pattern table cannot fuse it into the convolution.
Clip is element-wise with scalar bounds, so ``clip(permute_dims(x))`` equals
``permute_dims(clip(x))``; this pass swaps them when the transpose has no other user
(else a second transpose would be needed), and the convolution then takes the clip as
an ``eltwise_clip`` post-op.

Precondition: runs in the ``layout`` phase after ``tvmext.nhwc_layout`` (priority 5).
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, is_op, wildcard

from tvmext.pass_registry import function_pass, register_pass


def _single_use_values(func: relax.Function) -> set[relax.Expr]:
    """The bound values whose variable is used once."""
    uses: Counter[relax.Var] = Counter()
    values: dict[relax.Var, relax.Expr] = {}

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, relax.Call):
            uses.update(a for a in expr.args if isinstance(a, relax.Var))
        elif isinstance(expr, relax.Tuple):
            uses.update(f for f in expr.fields if isinstance(f, relax.Var))
        elif isinstance(expr, relax.SeqExpr):
            values.update((b.var, b.value) for block in expr.blocks for b in block.bindings)
            if isinstance(expr.body, relax.Var):
                uses[expr.body] += 1

    relax.analysis.post_order_visit(func.body, visit)
    return {value for var, value in values.items() if uses[var] == 1}


def _swap(
    expr: relax.Expr, matches: dict[DFPattern, relax.Expr], transpose: DFPattern, single: set
) -> Any:
    permuted = matches[transpose]
    if permuted not in single:
        return expr
    clipped = relax.op.clip(permuted.args[0], expr.args[1], expr.args[2])
    return relax.Call(permuted.op, [clipped], permuted.attrs)


@register_pass("tvmext.clip_before_transpose", targets=("dnnl",))
def clip_before_transpose() -> tvm.transform.Pass:
    """Rewrite ``clip(permute_dims(x))`` to ``permute_dims(clip(x))``."""
    transpose = is_op("relax.permute_dims")(wildcard())
    pattern = is_op("relax.clip")(transpose, wildcard(), wildcard())

    def rewrite(func: relax.Function) -> relax.Function:
        swap = functools.partial(_swap, transpose=transpose, single=_single_use_values(func))
        return relax.dpl.rewrite_call(pattern, swap, func)

    return function_pass("tvmext.ClipBeforeTranspose", rewrite)

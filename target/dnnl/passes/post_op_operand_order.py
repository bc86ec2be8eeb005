"""Put the fusable operand of a residual add first (for the dnnl target).

Pattern matching follows the first operand of ``add``/``multiply`` that completes a
chain; in ``add(skip, conv_out)`` it would try to extend the chain that produced
``skip``, whose result is also used elsewhere, and the check rejects that without
trying ``conv_out``. Swapping the operands of a commutative op when the first has
other users and the second has none lets the convolution (or matmul) that produced
the second fuse the add as a post-op (oneDNN's binary post-op). Values are unchanged:
both ops commute and broadcast symmetrically.

It runs first in the ``layout`` phase (priority -1), before ``tvmext.nhwc_layout``:
ConvertLayout gives an add the layout of its first operand, so with the convolution's
result first, a residual ``add(x, conv(x))`` runs in NHWC with ``x`` transposed once,
not in NCHW with the convolution's result transposed back and forth around it.
"""

from __future__ import annotations

from collections import Counter

import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from tvmext.pass_registry import function_pass, register_pass

_COMMUTATIVE = ("relax.add", "relax.multiply")


def _uses(func: relax.Function) -> Counter[relax.Var]:
    counts: Counter[relax.Var] = Counter()

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, relax.Call):
            counts.update(a for a in expr.args if isinstance(a, relax.Var))
        elif isinstance(expr, relax.Tuple):
            counts.update(f for f in expr.fields if isinstance(f, relax.Var))

    relax.analysis.post_order_visit(func.body, visit)
    return counts


@mutator
class _Swapper(PyExprMutator):
    def __init__(self, uses: Counter[relax.Var]) -> None:
        super().__init__()
        self.uses = uses

    def visit_call_(self, call: relax.Call) -> relax.Expr:
        call = super().visit_call_(call)
        if not (isinstance(call.op, tvm.ir.Op) and call.op.name in _COMMUTATIVE):
            return call
        first, second = call.args
        if (
            isinstance(first, relax.Var)
            and isinstance(second, relax.Var)
            and self.uses[first] > 1
            and self.uses[second] == 1
        ):
            return relax.Call(call.op, [second, first], call.attrs)
        return call


@register_pass("tvmext.post_op_operand_order", targets=("dnnl",))
def post_op_operand_order() -> tvm.transform.Pass:
    """Swap operands of add/multiply so that the single-use producer comes first."""

    return function_pass(
        "tvmext.PostOpOperandOrder", lambda func: _Swapper(_uses(func)).visit_expr(func)
    )

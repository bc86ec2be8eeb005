"""One widened operand per integer product (for the dnnl target).

ConvInteger and MatMulInteger widen their uint8/int8 input to int32 and subtract its
zero point (``astype``, ``subtract``, and after ``tvmext.nhwc_layout`` a
``permute_dims``) before the product. Where one tensor feeds several products (a
ResNet block's first convolution and its downsample, BERT's query, key and value
projections), that chain is shared, and the pattern table cannot take it into one
product's oneDNN call without leaking it to the others. This pass gives each integer
conv2d/matmul its own copy of the chain, so that each becomes one int8 primitive that
reads the uint8/int8 tensor itself; the copies are element-wise and are no longer
computed at all once oneDNN takes them.

Precondition: runs in the ``layout`` phase after ``tvmext.fold_weight_layouts``
(priority 20), which turns the weights' own widening into constants.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from tvmext.pass_registry import register_pass

_PRODUCTS = ("relax.nn.conv2d", "relax.matmul")
_CHAIN = ("relax.permute_dims", "relax.subtract", "relax.astype")


@mutator
class _Unsharer(PyExprMutator):
    def __init__(self, mod: tvm.IRModule) -> None:
        super().__init__(mod)
        self.values: dict[relax.Var, relax.Call] = {}
        self.replaced: dict[relax.Var, relax.Expr] = {}

    def visit_var_(self, var: relax.Var) -> relax.Expr:
        return self.replaced.get(var, var)

    def visit_dataflow_var_(self, var: relax.DataflowVar) -> relax.Expr:
        return self.replaced.get(var, var)

    def _chain(self, expr: relax.Expr) -> list[relax.Call]:
        """The widening chain feeding a product, outermost first; [] if there is none."""
        chain: list[relax.Call] = []
        for name in _CHAIN:
            call = self.values.get(expr) if isinstance(expr, relax.Var) else None
            if call is None or call.op.name != name:
                continue
            if name == "relax.subtract" and not isinstance(call.args[1], tvm.ir.GenericConst):
                return []
            chain.append(call)
            expr = call.args[0]
        return chain if chain and chain[-1].op.name == "relax.astype" else []

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        value = binding.value
        if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
            self.values[binding.var] = value
            chain = self._chain(value.args[0]) if value.op.name in _PRODUCTS else []
            if chain and str(value.attrs.out_dtype) == "int32":
                operand = self.visit_expr(chain[-1].args[0])
                for call in reversed(chain):
                    operand = self.builder_.emit(
                        relax.Call(call.op, [operand, *call.args[1:]], call.attrs)
                    )
                product = relax.Call(value.op, [operand, *value.args[1:]], value.attrs)
                self.replaced[binding.var] = self.builder_.emit(product)
                return
        super().visit_var_binding_(binding)


@register_pass("tvmext.unshare_int8_operands", phase="layout", targets=("dnnl",), priority=20)
def unshare_int8_operands() -> tvm.transform.Pass:
    """Copy the widening chain of each integer conv2d/matmul, then drop the originals
    nobody uses."""

    @tvm.transform.module_pass(opt_level=0, name="tvmext.UnshareInt8Operands")
    def run(mod: tvm.IRModule, _ctx: Any) -> tvm.IRModule:
        for gv, func in list(mod.functions_items()):
            if isinstance(func, relax.Function):
                mod[gv] = _Unsharer(mod).visit_expr(func)
        return relax.transform.DeadCodeElimination()(mod)

    return run

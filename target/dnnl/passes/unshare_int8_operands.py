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

import tvm
from tvm import relax
from tvm.relax.expr_functor import mutator

from tvmext.pass_registry import BindingReplacer, mutator_pass, register_pass
from tvmext.target.dnnl import patterns

_PRODUCTS = ("relax.nn.conv2d", "relax.matmul")


@mutator
class _Unsharer(BindingReplacer):
    def __init__(self, mod: tvm.IRModule) -> None:
        super().__init__(mod)
        self.values: dict[relax.Var, relax.Expr] = {}

    def _copy(self, operand: patterns.Int8Operand) -> relax.Expr:
        """A fresh ``permute_dims(astype(x) - zero_point)`` (as far as ``operand`` has)."""
        widened = operand.widened
        value = self.builder_.emit(
            relax.Call(widened.op, [self.visit_expr(operand.data)], widened.attrs)
        )
        if operand.zero_point is not None:
            value = self.builder_.emit(relax.op.subtract(value, operand.zero_point))
        if operand.axes is not None:
            value = self.builder_.emit(relax.op.permute_dims(value, operand.axes))
        return value

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        value = binding.value
        if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
            self.values[binding.var] = value
            is_product = value.op.name in _PRODUCTS and str(value.attrs.out_dtype) == "int32"
            operand = patterns.int8_operand_of(value.args[0], self.values) if is_product else None
            if operand is not None and (
                operand.zero_point is None or isinstance(operand.zero_point, tvm.ir.GenericConst)
            ):  # the chains the pattern table takes
                product = relax.Call(value.op, [self._copy(operand), *value.args[1:]], value.attrs)
                self.replaced[binding.var] = self.builder_.emit(product)
                return
        super().visit_var_binding_(binding)


@register_pass("tvmext.unshare_int8_operands", targets=("dnnl",))
def unshare_int8_operands() -> tvm.transform.Pass:
    """Copy the widening chain of each integer conv2d/matmul, then drop the originals
    nobody uses."""
    return mutator_pass("tvmext.UnshareInt8Operands", _Unsharer)

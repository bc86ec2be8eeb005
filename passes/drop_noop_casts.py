"""Drop ``astype(x, dtype)`` where ``x`` already has ``dtype``.

ONNX exporters and TVM's own converters emit such casts (a QDQ model's
DequantizeLinear/QuantizeLinear chains hold several per node). They compute nothing,
but they sit between the ops a target's patterns match (an integer product and the
requantization after it), so those patterns would have to allow one anywhere.

A mutator, not ``relax.dpl.rewrite_call``: that crashed TVM 0.27 on functions whose
shapes ``match_cast`` defines (an ONNX TopK with a runtime ``k``).
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.expr_functor import mutator

from tvmext.pass_registry import BindingReplacer, mutator_pass, register_pass


def _dtype(expr: relax.Expr) -> str | None:
    return str(expr.ty.dtype) if isinstance(expr.ty, relax.TensorType) else None


@mutator
class _DropCasts(BindingReplacer):
    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        value = binding.value
        if isinstance(value, relax.Call) and value.op.same_as(tvm.ir.Op.get("relax.astype")):
            source = self.visit_expr(value.args[0])
            same = _dtype(source) is not None and _dtype(source) == str(value.attrs.dtype)
            # a block's output stays a binding: its users outside the block cannot read
            # a dataflow variable
            inside = isinstance(binding.var, relax.DataflowVar)
            if same and (inside or not isinstance(source, relax.DataflowVar)):
                self.replaced[binding.var] = source
        super().visit_var_binding_(binding)


@register_pass("tvmext.drop_noop_casts", targets=("*",))
def drop_noop_casts() -> tvm.transform.Pass:
    """Rewrite ``astype(x, x.dtype)`` to ``x``, then drop the bindings nobody uses."""
    return mutator_pass("tvmext.DropNoopCasts", _DropCasts)

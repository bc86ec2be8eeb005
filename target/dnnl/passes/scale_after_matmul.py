"""Move a scalar scale of a matmul operand to the matmul's result.

Attention as exported scales the queries, the keys or both before their product
(``matmul(q * s, permute_dims(k) * s)``, PyTorch's ``scaled_dot_product_attention``
splits ``1/sqrt(d)`` that way). Each scale is then a TVM kernel that also
materializes the transposed keys, which the oneDNN matmul would otherwise read in
place (a strided view). ``matmul(a * s, b) = matmul(a, b) * s`` for a scalar ``s``, and
the scale on the result is a post-op of the oneDNN matmul: no kernel, no copy. The
product is rounded once more per element (within the matmul's own rounding).

Only for float32 matmuls (what oneDNN takes; a float16 operand scaled before a float32
product is rounded once more, which moving the scale would change) and constant scalars
(one element); a scale that other ops also use stays for them.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from tvmext.pass_registry import function_pass, register_pass


def _scalar(expr: relax.Expr, dtype: str) -> relax.Expr | None:
    """``expr`` as a rank-0 constant when it is one ``dtype`` float value, or None."""
    if not isinstance(expr, tvm.ir.GenericConst):
        return None
    value = expr.value.numpy()
    if value.size != 1 or str(value.dtype) != dtype or not np.issubdtype(value.dtype, np.floating):
        return None
    return relax.const(value.reshape(()), dtype)


def _split(operand: relax.Expr, values: dict) -> tuple[relax.Expr, relax.Expr] | None:
    """(tensor, scale) when ``operand`` is bound to ``tensor * scale`` (either order), a
    float32 tensor and a float32 scalar constant."""
    call = values.get(operand)
    if not isinstance(call, relax.Call) or call.op != tvm.ir.Op.get("relax.multiply"):
        return None
    for tensor, scale in ((call.args[0], call.args[1]), (call.args[1], call.args[0])):
        if isinstance(tensor, tvm.ir.GenericConst) or not isinstance(tensor.ty, relax.TensorType):
            continue
        if str(tensor.ty.dtype) != "float32":
            continue  # a half-precision operand is rounded after its scale
        scalar = _scalar(scale, "float32")
        if scalar is not None:
            return tensor, scalar
    return None


@register_pass("tvmext.scale_after_matmul", targets=("dnnl",))
def scale_after_matmul() -> tvm.transform.Pass:
    """Rewrite ``matmul(a * s, b)`` and ``matmul(a, b * s)`` (``s`` a scalar constant) to
    ``matmul(a, b) * s``."""
    pattern = is_op("relax.matmul")(wildcard(), wildcard())  # operands: by their bindings

    def rewrite(func: relax.Function) -> relax.Function:
        values = {
            b.var: b.value
            for block in getattr(func.body, "blocks", [])
            for b in block.bindings
            if isinstance(b, relax.VarBinding)
        }

        def move(expr: relax.Expr, _matches: dict) -> relax.Expr:
            if not isinstance(expr, relax.Call):  # rewrite_call may offer the bound var
                return expr
            args, scales = list(expr.args), []
            if str(expr.ty.dtype) != "float32":
                return expr  # oneDNN's dtype; a half-precision product rounds its operands
            for i, operand in enumerate(args):
                split = _split(operand, values)
                if split is not None:
                    args[i], scale = split
                    scales.append(scale)
            if not scales:
                return expr
            out: relax.Expr = relax.op.matmul(args[0], args[1], out_dtype=expr.attrs.out_dtype)
            for scale in scales:
                out = relax.op.multiply(out, scale)
            return out

        return relax.dpl.rewrite_call(pattern, move, func)

    return function_pass("tvmext.ScaleAfterMatmul", rewrite)

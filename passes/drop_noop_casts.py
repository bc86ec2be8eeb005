"""Drop ``astype(x, dtype)`` where ``x`` already has ``dtype``.

ONNX exporters and TVM's own converters emit such casts (a QDQ model's
DequantizeLinear/QuantizeLinear chains hold several per node). They compute nothing,
but they sit between the ops a target's patterns match (an integer product and the
requantization after it), so those patterns would have to allow one anywhere.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, is_op, wildcard

from tvmext.pass_registry import function_pass, register_pass

_SOURCE = wildcard()
_CAST = is_op("relax.astype")(_SOURCE)


def _same_dtype(expr: relax.Expr, matches: dict[DFPattern, relax.Expr]) -> relax.Expr:
    source = matches[_SOURCE]
    ty, source_ty = expr.ty, source.ty
    if (
        isinstance(ty, relax.TensorType)
        and isinstance(source_ty, relax.TensorType)
        and str(ty.dtype) == str(source_ty.dtype)
    ):
        return source
    return expr


@register_pass("tvmext.drop_noop_casts", targets=("*",))
def drop_noop_casts() -> tvm.transform.Pass:
    """Rewrite ``astype(x, x.dtype)`` to ``x``."""
    return function_pass(
        "tvmext.DropNoopCasts", lambda func: relax.dpl.rewrite_call(_CAST, _same_dtype, func)
    )

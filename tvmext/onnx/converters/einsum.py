"""ONNX Einsum of two operands that is a (batched) matrix product, as one.

Attention written with ``torch.einsum`` (CvT's ``bhlk,bhtk->bhlt``) exports as Einsum,
which TVM lowers to one generic loop nest: no kernel library sees a matmul, and TVM's
loop runs it at a fraction of a matmul's speed. When every index of both operands is
either shared and kept (a batch dim), shared and summed (a contracted dim) or in one
operand and kept (a row or column), the product is ``permute -> reshape -> matmul ->
reshape -> permute``, where the permutes and reshapes vanish for the usual layouts.
Other equations (an ellipsis, a repeated index, one operand or three, an index summed
inside one operand) stay TVM's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tvm import relax

from tvmext.dims import static_shape
from tvmext.onnx.registry import register_converter


def _plan(equation: str) -> tuple[str, str, str, str, str, str, str] | None:
    """(a, b, out, batch, rows, contracted, cols) of a two-operand matrix-product
    equation, or None."""
    if "..." in equation or "->" not in equation:
        return None
    operands, out = equation.replace(" ", "").split("->")
    parts = operands.split(",")
    if len(parts) != 2:
        return None
    a, b = parts
    if any(len(set(s)) != len(s) for s in (a, b, out)) or not set(out) <= set(a) | set(b):
        return None
    batch = "".join(i for i in a if i in b and i in out)
    contracted = "".join(i for i in a if i in b and i not in out)
    rows = "".join(i for i in a if i not in b)
    cols = "".join(i for i in b if i not in a)
    if not set(rows + cols) <= set(out):  # an index summed within one operand
        return None
    return a, b, out, batch, rows, contracted, cols


def _arrange(bb: relax.BlockBuilder, x: relax.Expr, have: str, want: str) -> relax.Expr:
    """``x``, whose axes are the indices ``have``, with its axes in the order ``want``."""
    if have == want:
        return x
    return bb.emit(relax.op.permute_dims(x, [have.index(i) for i in want]))


@register_converter("", "Einsum", 12)
def einsum(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """A two-operand matrix-product Einsum as a matmul (see the module docstring)."""
    equation = attrs["equation"]
    plan = _plan(equation.decode() if isinstance(equation, bytes) else equation)
    a_shape, b_shape = (static_shape(x) for x in inputs) if len(inputs) == 2 else (None, None)
    if plan is None or a_shape is None or b_shape is None:
        return fallback()
    a, b, out, batch, rows, contracted, cols = plan
    if any(a_shape[a.index(i)] != b_shape[b.index(i)] for i in batch + contracted):
        return fallback()  # broadcast batch dims: TVM's einsum handles them
    size = {**dict(zip(a, a_shape, strict=True)), **dict(zip(b, b_shape, strict=True))}
    dims = [size[i] for i in batch]
    m, k, n = (int(np.prod([size[i] for i in s], dtype=np.int64)) for s in (rows, contracted, cols))
    lhs = _arrange(bb, inputs[0], a, batch + rows + contracted)
    rhs = _arrange(bb, inputs[1], b, batch + contracted + cols)
    if len(rows) != 1 or len(contracted) != 1:
        lhs = bb.emit(relax.op.reshape(lhs, [*dims, m, k]))
    if len(contracted) != 1 or len(cols) != 1:
        rhs = bb.emit(relax.op.reshape(rhs, [*dims, k, n]))
    product = bb.emit(relax.op.matmul(lhs, rhs))
    natural = batch + rows + cols
    if len(rows) != 1 or len(cols) != 1:
        product = bb.emit(relax.op.reshape(product, [size[i] for i in natural]))
    return _arrange(bb, product, natural, out)

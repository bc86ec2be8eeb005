"""A Relax call's arguments as TE placeholders, and an op's outputs and their gradients
as lists, for the ops' type inference, legalization and gradients."""

from __future__ import annotations

from collections.abc import Callable

from tvm import relax, te

from tvmext.errors import ShapeError


def placeholders(
    op_name: str, call: relax.Call, input_name: Callable[[int], str]
) -> list[te.Tensor]:
    """TE placeholders with the types of ``call``'s arguments (symbolic dims kept);
    errors name op ``op_name`` and the input (``input_name(i)``)."""
    tensors = []
    for i, arg in enumerate(call.args):
        ty = arg.ty
        name = input_name(i)
        if not isinstance(ty, relax.TensorType):
            raise ShapeError(f"op {op_name!r}: input {name!r} must be a tensor, got {ty}")
        if ty.shape is None or not isinstance(ty.shape, relax.ShapeExpr):
            raise ShapeError(
                f"op {op_name!r}: input {name!r} needs a known shape (rank and "
                f"dimensions, symbolic allowed), got {ty}"
            )
        tensors.append(te.placeholder(list(ty.shape.values), ty.dtype, name.lstrip("#")))
    return tensors


def outputs_and_grads(
    orig_var: relax.Var, output_grad: relax.Var, ctx: relax.BlockBuilder
) -> tuple[list[relax.Expr], list[relax.Expr]]:
    """The op's outputs and their gradients as lists (split when the op returns a tuple)."""
    if not isinstance(orig_var.ty, relax.TupleType):
        return [orig_var], [output_grad]
    n_out = len(orig_var.ty.fields)
    outputs = [ctx.emit(relax.TupleGetItem(orig_var, i)) for i in range(n_out)]
    grads = [ctx.emit(relax.TupleGetItem(output_grad, i)) for i in range(n_out)]
    return outputs, grads

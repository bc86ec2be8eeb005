"""The TVM op attributes every tvmext op shares: type inference, legalization, gradient.

Each function looks up the Python :class:`~tvmext.custom_op.CustomOp` by the call's op
name, so redefining an op (``replace=True``) takes effect without re-registering.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import relax, te

from .custom_op import _WRT, CustomOp, lookup
from .errors import ShapeError
from .op_attrs import to_python

# PrimFunc attribute naming the tvmext op a PrimFunc was lowered from.
OP_ATTR = "tvmext.op"
# PrimFunc attribute holding the op's attributes (a dict), for its schedule.
OP_ATTRS_ATTR = "tvmext.op_attrs"


def placeholders(custom: CustomOp, call: relax.Call) -> list[te.Tensor]:
    """TE placeholders with the types of ``call``'s arguments (symbolic dims kept)."""
    tensors = []
    for i, arg in enumerate(call.args):
        ty = arg.ty
        name = custom.input_name(i)
        if not isinstance(ty, relax.TensorType):
            raise ShapeError(f"op {custom.name!r}: input {name!r} must be a tensor, got {ty}")
        if ty.shape is None or not isinstance(ty.shape, relax.ShapeExpr):
            raise ShapeError(
                f"op {custom.name!r}: input {name!r} needs a known shape (rank and "
                f"dimensions, symbolic allowed), got {ty}"
            )
        tensors.append(te.placeholder(list(ty.shape.values), ty.dtype, name.lstrip("#")))
    return tensors


def infer_type(call: relax.Call, ctx: Any) -> relax.Type:
    """``FInferType``, dispatched to the op object."""
    return lookup(call.op.name).infer_call_type(call)


def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """``FLegalize``, dispatched to the op object."""
    return lookup(call.op.name).legalize_call(bb, call)


def primal_gradient(
    orig_var: relax.Var, orig_call: relax.Call, output_grad: relax.Var, ctx: relax.BlockBuilder
) -> list[relax.Expr]:
    """``FPrimalGradient``, dispatched to the op object."""
    return lookup(orig_call.op.name).call_gradient(orig_var, orig_call, output_grad, ctx)


def te_infer_type(custom: CustomOp, call: relax.Call) -> relax.Type:
    """The output type of a TE op: the declared inference, or traced from the compute."""
    custom._check_arity(len(call.args))
    attrs = custom.attr_spec.decode(call.attrs)
    if custom.infer_fn is not None:
        return custom.infer_fn(*(a.ty for a in call.args), **attrs)
    tensors = placeholders(custom, call)
    outs, is_tuple = custom.trace(tensors, attrs)
    types = [relax.TensorType(list(o.shape), o.dtype) for o in outs]
    if custom.primal is not None or is_tuple:
        return relax.TupleType(types)
    return types[0]


def te_legalize(custom: CustomOp, bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Lower a TE op's call to ``call_tir`` of its compute."""
    attrs = custom.attr_spec.decode(call.attrs)

    def compute(*tensors: te.Tensor) -> Any:
        outs, _ = custom.trace(tensors, dict(attrs))
        return outs if len(outs) > 1 else outs[0]

    func_attrs = {OP_ATTR: custom.name, OP_ATTRS_ATTR: _plain(attrs)}
    lowered = bb.call_te(
        compute,
        *call.args,
        primfunc_name_hint=custom.name.replace(".", "_"),
        primfunc_attrs=func_attrs,
    )
    # call_te returns a plain tensor for a one-element list; keep the declared tuple.
    if isinstance(call.ty, relax.TupleType) and len(call.ty.fields) == 1:
        return relax.Tuple([bb.emit(lowered)])
    return lowered


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


def te_primal_gradient(
    custom: CustomOp,
    orig_var: relax.Var,
    orig_call: relax.Call,
    output_grad: relax.Var,
    ctx: relax.BlockBuilder,
) -> list[relax.Expr]:
    """One partial per input of a TE op's call, from its companion gradient op."""
    attrs = custom.attr_spec.decode(orig_call.attrs)
    inputs = list(orig_call.args)
    outputs, out_grads = outputs_and_grads(orig_var, output_grad, ctx)
    # Trace once on placeholders to learn which inputs have a gradient.
    ins = placeholders(custom, orig_call)
    rest = [te.placeholder(list(v.ty.shape.values), v.ty.dtype) for v in outputs + out_grads]
    grads = custom._call_gradient(ins, rest, dict(attrs))
    wrt = tuple(i for i, g in enumerate(grads) if g is not None)
    partials: list[relax.Expr] = [relax.op.zeros_like(x) for x in inputs]
    if wrt:
        grad_op = custom.gradient_op()
        grad_call = grad_op.call_relax(*inputs, *outputs, *out_grads, **attrs, **{_WRT: wrt})
        result = ctx.emit(grad_call)
        for k, i in enumerate(wrt):
            partials[i] = ctx.emit(relax.TupleGetItem(result, k))
    return partials


def _plain(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()}


def func_attrs(func: tvm.tirx.PrimFunc) -> tuple[str | None, dict[str, Any]]:
    """The tvmext op name and attributes a PrimFunc was lowered from, if any."""
    if func.attrs is None or OP_ATTR not in func.attrs:
        return None, {}
    name = str(func.attrs[OP_ATTR])
    raw = func.attrs.get(OP_ATTRS_ATTR, {})
    return name, {str(k): to_python(v) for k, v in dict(raw).items()}

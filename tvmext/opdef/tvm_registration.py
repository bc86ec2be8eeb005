"""tvmext ops in TVM's op registry: the op attributes they share, dispatched by name.

Each op object registers its TVM name once, with ``FInferType``, ``FLegalize``,
``FPrimalGradient`` and ``FPurity`` functions that look the Python object up by the
call's op name on every use, so redefining an op (``replace=True``) takes effect
without touching TVM's registry. User ops are ``relax.tvmext.<ns.name>``; the
companion op computing an op's input gradients is ``relax.tvmext_grad.<ns.name>``,
so every name stays the user's (``clip_grad`` included).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import tvm
from tvm import relax

PREFIX = "relax.tvmext."
GRADIENT_PREFIX = "relax.tvmext_grad."


class RelaxOp(Protocol):
    """What TVM's op attributes need from an op object."""

    name: str
    tensor_names: tuple[str, ...] | None
    primal: Any

    @property
    def tvm_name(self) -> str: ...

    def infer_call_type(self, call: relax.Call) -> relax.Type: ...

    def legalize_call(self, bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr: ...

    def call_gradient(
        self,
        orig_var: relax.Var,
        orig_call: relax.Call,
        output_grad: relax.Var,
        ctx: relax.BlockBuilder,
    ) -> list[relax.Expr]: ...


_BY_TVM_NAME: dict[str, RelaxOp] = {}


def lookup(tvm_name: str) -> RelaxOp:
    """The op object registered under a TVM op name (``KeyError`` if none)."""
    return _BY_TVM_NAME[tvm_name]


def find(tvm_name: str) -> RelaxOp | None:
    """The op object registered under a TVM op name, or ``None``."""
    return _BY_TVM_NAME.get(tvm_name)


def tvm_names() -> Sequence[str]:
    """Every registered TVM op name (user ops and gradient companions)."""
    return list(_BY_TVM_NAME)


def install(op: RelaxOp, doc: str) -> None:
    """Register ``op`` with TVM, once per name; later definitions only rebind."""
    first = op.tvm_name not in _BY_TVM_NAME
    _BY_TVM_NAME[op.tvm_name] = op
    if not first:
        return
    tvm.ir._ffi_api.RegisterOp(op.tvm_name, doc)
    tvm_op = tvm.ir.Op.get(op.tvm_name)
    if op.tensor_names is not None:
        tvm_op.set_num_inputs(len(op.tensor_names))
        for t in op.tensor_names:
            tvm_op.add_argument(t, "Tensor", t)
    tvm.ir.register_op_attr(op.tvm_name, "FPurity", True)
    tvm.ir.register_op_attr(op.tvm_name, "FInferType", _infer_type)
    tvm.ir.register_op_attr(op.tvm_name, "FLegalize", _legalize)
    if op.primal is None:
        tvm.ir.register_op_attr(op.tvm_name, "FPrimalGradient", _primal_gradient)


def _infer_type(call: relax.Call, ctx: Any) -> relax.Type:
    return lookup(call.op.name).infer_call_type(call)


def _legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    return lookup(call.op.name).legalize_call(bb, call)


def _primal_gradient(
    orig_var: relax.Var, orig_call: relax.Call, output_grad: relax.Var, ctx: relax.BlockBuilder
) -> list[relax.Expr]:
    return lookup(orig_call.op.name).call_gradient(orig_var, orig_call, output_grad, ctx)

"""Swish / SiLU: ``y = x * sigmoid(beta * x)``, with a vectorizable ``exp``."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import s_tir, te, tirx, topi

from tvmext.lowering.schedules.helpers import inline_producers, parallel_vectorized_flat
from tvmext.opdef.declaration import op


def _sigmoid(x: te.Tensor, beta: float) -> te.Tensor:
    """``sigmoid(beta * x)`` with TOPI's polynomial ``fast_exp`` (LLVM has no vector exp)."""
    neg = te.compute(x.shape, lambda *i: x[i] * tirx.const(-beta, x.dtype), name="neg_bx")
    e = topi.fast_exp(neg) if x.dtype == "float32" else topi.exp(neg)
    one = tirx.const(1.0, x.dtype)
    return te.compute(x.shape, lambda *i: one / (one + e[i]), name="sigmoid")


@op("tvmext.swish")
def swish(x: te.Tensor, *, beta: float = 1.0) -> te.Tensor:
    """Swish activation (SiLU when ``beta == 1``)."""
    s = _sigmoid(x, beta)
    return te.compute(x.shape, lambda *i: x[i] * s[i], name="swish")


@swish.gradient
def _swish_grad(x: te.Tensor, y: te.Tensor, dy: te.Tensor, *, beta: float) -> te.Tensor:
    s = _sigmoid(x, beta)
    one = tirx.const(1.0, x.dtype)
    b = tirx.const(beta, x.dtype)
    return te.compute(
        x.shape,
        lambda *i: dy[i] * (s[i] + b * x[i] * s[i] * (one - s[i])),
        name="swish_dx",
    )


@swish.reference
def _swish_reference(x: np.ndarray, *, beta: float) -> np.ndarray:
    return (x / (1.0 + np.exp(-beta * x))).astype(x.dtype)


@swish.schedule("llvm")
def _swish_cpu(sch: s_tir.Schedule, target: tvm.target.Target) -> None:
    """Everything inlined into one parallel, vectorized loop over all elements."""
    inline_producers(sch, keep=["swish"])
    parallel_vectorized_flat(sch, sch.get_sblock("swish"), target)

"""RMSNorm over the last axis: ``y = x / sqrt(mean(x**2, -1) + eps) * weight``."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import s_tir, te, tirx

from tvmext.dims import dim, dims
from tvmext.errors import ShapeError
from tvmext.lowering.schedules.helpers import (
    parallel_rows_vectorized_cols,
    vectorized_row_reduction,
)
from tvmext.opdef.declaration import op


def _inv_rms(x: te.Tensor, eps: float) -> te.Tensor:
    *lead, d = x.shape
    k = te.reduce_axis((0, d), "k")
    sumsq = te.compute(lead, lambda *i: te.sum(x[(*i, k)] * x[(*i, k)], axis=k), name="sumsq")
    n = d.astype(x.dtype)
    return te.compute(
        lead, lambda *i: tirx.rsqrt(sumsq[i] / n + tirx.const(eps, x.dtype)), name="inv_rms"
    )


@op("tvmext.rms_norm")
def rms_norm(x: te.Tensor, weight: te.Tensor, *, eps: float = 1e-6) -> te.Tensor:
    """Root-mean-square normalization over the last axis, scaled by ``weight``."""
    d, w = x.shape[-1], weight.shape
    if len(w) != 1 or (isinstance(d, tirx.IntImm) and isinstance(w[0], tirx.IntImm) and
                       int(d) != int(w[0])):  # fmt: skip
        raise ShapeError(
            f"op 'tvmext.rms_norm': input 'weight' has shape {dims(w)}, expected "
            f"[{dim(d)}] (the last axis of 'x')"
        )
    r = _inv_rms(x, eps)
    return te.compute(x.shape, lambda *i: x[i] * r[i[:-1]] * weight[i[-1]], name="rms_norm")


@rms_norm.gradient
def _rms_norm_grad(
    x: te.Tensor, weight: te.Tensor, y: te.Tensor, dy: te.Tensor, *, eps: float
) -> tuple[te.Tensor, te.Tensor]:
    *lead, d = x.shape
    r = _inv_rms(x, eps)
    k = te.reduce_axis((0, d), "k")
    dot = te.compute(
        lead, lambda *i: te.sum(dy[(*i, k)] * weight[k] * x[(*i, k)], axis=k), name="dot"
    )
    n = d.astype(x.dtype)
    dx = te.compute(
        x.shape,
        lambda *i: (
            r[i[:-1]] * weight[i[-1]] * dy[i]
            - x[i] * r[i[:-1]] * r[i[:-1]] * r[i[:-1]] * dot[i[:-1]] / n
        ),
        name="rms_norm_dx",
    )
    rows = [te.reduce_axis((0, e), f"r{j}") for j, e in enumerate(lead)]
    dw = te.compute(
        (d,),
        lambda j: te.sum(dy[(*rows, j)] * x[(*rows, j)] * r[tuple(rows)], axis=rows),
        name="rms_norm_dw",
    )
    return dx, dw


@rms_norm.reference
def _rms_norm_reference(x: np.ndarray, weight: np.ndarray, *, eps: float) -> np.ndarray:
    ms = np.mean(np.square(x), axis=-1, keepdims=True)
    return (x / np.sqrt(ms + eps) * weight).astype(x.dtype)


@rms_norm.schedule("llvm")
def _rms_norm_cpu(sch: s_tir.Schedule, target: tvm.target.Target) -> None:
    """One parallel row loop: SIMD sum of squares, then the vectorized scaling."""
    sch.compute_inline(sch.get_sblock("inv_rms"))
    row = parallel_rows_vectorized_cols(sch, sch.get_sblock("rms_norm"), target)
    vectorized_row_reduction(sch, sch.get_sblock("sumsq"), row, target)

"""Mean and (biased) variance over trailing axes, in one op with two outputs."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import s_tir, te, tirx

from tvmext.errors import ShapeError
from tvmext.lowering.schedules.helpers import rfactor_simd, vectorize_partial
from tvmext.opdef.declaration import op


def _split(x: te.Tensor, n_axes: int) -> tuple[list[tirx.PrimExpr], list[tirx.PrimExpr]]:
    if not 1 <= n_axes <= len(x.shape):
        raise ShapeError(
            f"op 'tvmext.moments': attribute 'n_axes' must be in 1..{len(x.shape)} for "
            f"input 'x' of rank {len(x.shape)}, got {n_axes}"
        )
    return list(x.shape[: len(x.shape) - n_axes]), list(x.shape[len(x.shape) - n_axes :])


def _count(dims: list[tirx.PrimExpr], dtype: str) -> tirx.PrimExpr:
    n = tirx.const(1, "int64")
    for d in dims:
        n = n * d
    return n.astype(dtype)


@op("tvmext.moments")
def moments(x: te.Tensor, *, n_axes: int = 1) -> tuple[te.Tensor, te.Tensor]:
    """Mean and variance of ``x`` over its last ``n_axes`` axes."""
    lead, red = _split(x, n_axes)
    n = _count(red, x.dtype)
    k1 = [te.reduce_axis((0, d), f"k{j}") for j, d in enumerate(red)]
    total = te.compute(lead, lambda *i: te.sum(x[(*i, *k1)], axis=k1), name="sum")
    mean = te.compute(lead, lambda *i: total[i] / n, name="mean")
    k2 = [te.reduce_axis((0, d), f"q{j}") for j, d in enumerate(red)]
    sq = te.compute(
        lead,
        lambda *i: te.sum((x[(*i, *k2)] - mean[i]) * (x[(*i, *k2)] - mean[i]), axis=k2),
        name="sqdev",
    )
    var = te.compute(lead, lambda *i: sq[i] / n, name="var")
    return mean, var


@moments.gradient
def _moments_grad(
    x: te.Tensor,
    mean: te.Tensor,
    var: te.Tensor,
    dmean: te.Tensor,
    dvar: te.Tensor,
    *,
    n_axes: int,
) -> te.Tensor:
    lead, red = _split(x, n_axes)
    n = _count(red, x.dtype)
    two = tirx.const(2.0, x.dtype)
    m = len(lead)
    return te.compute(
        x.shape,
        lambda *i: (dmean[i[:m]] + two * dvar[i[:m]] * (x[i] - mean[i[:m]])) / n,
        name="moments_dx",
    )


@moments.reference
def _moments_reference(x: np.ndarray, *, n_axes: int) -> tuple[np.ndarray, np.ndarray]:
    axes = tuple(range(x.ndim - n_axes, x.ndim))
    return x.mean(axis=axes).astype(x.dtype), x.var(axis=axes).astype(x.dtype)


@moments.schedule("llvm")
def _moments_cpu(sch: s_tir.Schedule, target: tvm.target.Target) -> None:
    """One parallel row loop: SIMD sum, mean, SIMD squared deviations, variance."""
    total, sqdev = sch.get_sblock("sum"), sch.get_sblock("sqdev")
    partials = [rfactor_simd(sch, total, target), rfactor_simd(sch, sqdev, target)]
    n_rows = sum(iv.iter_type == tirx.IterVar.DataPar for iv in sch.get(total).iter_vars)
    rows = sch.get_loops(total)[:n_rows] or [sch.add_unit_loop(total)]
    row = sch.fuse(*rows) if len(rows) > 1 else rows[0]
    sch.parallel(row)
    if partials[0] is not None:
        sch.compute_at(partials[0], row)
    sch.reverse_compute_at(sch.get_sblock("mean"), row)
    if partials[1] is not None:
        sch.reverse_compute_at(partials[1], row)
    sch.reverse_compute_at(sqdev, row)
    sch.reverse_compute_at(sch.get_sblock("var"), row)
    for partial in partials:
        if partial is not None:
            vectorize_partial(sch, partial)

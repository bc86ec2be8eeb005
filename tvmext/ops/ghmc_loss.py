"""GHM-C loss (Li, Liu & Wang, AAAI 2019) with mmdetection's exact semantics.

``loss, new_state = ghmc_loss(pred, target, label_weight, state, bins=10, momentum=0.0,
loss_weight=1.0)`` for logits ``pred`` (N, C), ``target`` and ``label_weight`` of the same
shape and ``state`` the float32 vector of accumulated bin counts (zeros at the start;
returned unchanged when ``momentum`` is 0).

Each valid element (``label_weight > 0``) falls into one of ``bins`` equal bins of its
gradient norm ``g = |sigmoid(pred) - target|`` (edges ``k / bins`` in float32, the last
``1 + 1e-6``). Its weight is ``tot / count(bin) / n_nonempty_bins`` (with momentum, an
exponential moving average of the counts replaces them, updated only for non-empty
bins), and ``loss = loss_weight * sum(w * BCE-with-logits) / tot``, ``tot`` the number of
valid elements (at least 1). The weights carry no gradient:
``dL/dpred = loss_weight * w * (sigmoid(pred) - target) / tot``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tvm
from tvm import s_tir, te, tirx, topi

from tvmext.dims import dims
from tvmext.errors import ShapeError
from tvmext.lowering.schedules.helpers import const_extent, parallel_vectorized_flat
from tvmext.lowering.schedules.histogram import parallelize_histogram, row_chunk_histogram
from tvmext.opdef.declaration import op

_LAST_EDGE_EXTRA = 1e-6


def _edge(k: tirx.PrimExpr, bins: int) -> tirx.PrimExpr:
    """Bin edge ``k`` as mmdetection computes it in float32: k / bins (+1e-6 at the end)."""
    edge = k.astype("float32") / tirx.const(float(bins), "float32")
    return tirx.Select(k >= bins, edge + tirx.const(_LAST_EDGE_EXTRA, "float32"), edge)


_CHUNKS = 64
_LOG1P_TERMS = 10


def _exp_neg_abs(pred: te.Tensor) -> te.Tensor:
    """``exp(-|pred|)`` in (0, 1] with TOPI's polynomial ``fast_exp`` (vectorizable; LLVM
    has no vector exp). It is exactly 1 at 0, so pred = 0 gives g = 0.5 exactly."""
    neg = te.compute(pred.shape, lambda i, j: -tirx.abs(pred[i, j]), name="neg_abs")
    return topi.fast_exp(neg)


def _log1p_unit(t: tirx.PrimExpr) -> tirx.PrimExpr:
    """``log1p(t)`` for t in [0, 1] without a libm call: ``2 atanh(s)``, s = t / (2 + t) in
    [0, 1/3], summed to s^19 (relative error below 1e-10)."""
    f32 = "float32"
    s = t / (tirx.const(2.0, f32) + t)
    s2 = s * s
    series = tirx.const(1.0 / (2 * _LOG1P_TERMS - 1), f32)
    for k in range(_LOG1P_TERMS - 2, -1, -1):
        series = series * s2 + tirx.const(1.0 / (2 * k + 1), f32)
    return tirx.const(2.0, f32) * s * series


def _sum_elements(
    value: Callable[[tirx.PrimExpr, tirx.PrimExpr], tirx.PrimExpr],
    n: tirx.PrimExpr,
    c: tirx.PrimExpr,
    name: str,
) -> te.Tensor:
    """``sum_{i, j} value(i, j)`` over an (n, c) grid, as per-chunk partial sums
    ``<name>_chunks[k, j]`` (rows split into ``_CHUNKS`` parallel chunks, the column
    ``j`` kept spatial so that it vectorizes), then a sum of those."""
    rows = (n + _CHUNKS - 1) // _CHUNKS
    ri = te.reduce_axis((0, rows), f"{name}_ri")
    zero = tirx.const(0.0, "float32")
    partial = te.compute(
        (_CHUNKS, c),
        lambda k, j: te.sum(tirx.Select(k * rows + ri < n, value(k * rows + ri, j), zero), axis=ri),
        name=f"{name}_chunks",
    )
    rk, rj = te.reduce_axis((0, _CHUNKS), f"{name}_rk"), te.reduce_axis((0, c), f"{name}_rj")
    return te.compute((), lambda: te.sum(partial[rk, rj], axis=[rk, rj]), name=name)


def _bins_and_weights(
    pred: te.Tensor,
    target: te.Tensor,
    label_weight: te.Tensor,
    state: te.Tensor,
    bins: int,
    momentum: float,
) -> tuple[te.Tensor, te.Tensor, te.Tensor, te.Tensor]:
    """Per-element weights, the valid count ``tot``, the new state and the sigmoid."""
    n, c = pred.shape
    f32 = "float32"
    one, zero = tirx.const(1.0, f32), tirx.const(0.0, f32)
    e = _exp_neg_abs(pred)
    prob = te.compute(
        (n, c),
        lambda i, j: tirx.Select(pred[i, j] >= zero, one, e[i, j]) / (one + e[i, j]),
        name="prob",
    )

    def bin_of(i: tirx.Var, j: tirx.Var) -> tirx.PrimExpr:
        g = tirx.abs(prob[i, j] - target[i, j])
        guess = tirx.min(tirx.floor(g * tirx.const(float(bins), f32)).astype("int32"), bins - 1)
        guess = tirx.max(guess, 0)
        lower = tirx.Select(g < _edge(guess, bins), guess - 1, guess)
        exact = tirx.Select(
            tirx.all(lower + 1 < bins, g >= _edge(lower + 1, bins)), lower + 1, lower
        )
        return tirx.Select(label_weight[i, j] > zero, exact, -1).astype(index_dtype)

    # The bin of each element is materialized once; int8 (a quarter of the traffic of
    # int32) whenever the bins fit.
    index_dtype = "int8" if bins < 128 else "int32"
    bin_index = te.compute((n, c), bin_of, name="bin_index")
    # A scatter histogram per row chunk (parallel), then a sum over the chunks.
    per_chunk = row_chunk_histogram(bin_index, bins, _CHUNKS)
    kc = te.reduce_axis((0, _CHUNKS), "kc")
    counts = te.compute((bins,), lambda b: te.sum(per_chunk[kc, b], axis=kc), name="counts")
    # Every valid element has a bin, so the valid count is the sum of the bin counts.
    kb = te.reduce_axis((0, bins), "kb")
    valid = te.compute((), lambda: te.sum(counts[kb], axis=kb), name="valid")
    tot = te.compute((), lambda: tirx.max(valid[()], one), name="tot")
    mmt = tirx.const(momentum, f32)
    new_state = te.compute(
        (bins,),
        lambda b: tirx.Select(
            tirx.all(counts[b] > zero, mmt > zero),
            mmt * state[b] + (one - mmt) * counts[b],
            state[b],
        ),
        name="new_state",
    )
    k = te.reduce_axis((0, bins), "k")
    nonempty = te.compute(
        (), lambda: te.sum(tirx.Select(counts[k] > zero, one, zero), axis=k), name="nonempty"
    )
    denominator = new_state if momentum > 0 else counts
    # The weight depends on the element only through its bin: a table of ``bins`` values.
    bin_weight = te.compute(
        (bins,),
        lambda b: tot[()] / denominator[b] / tirx.max(nonempty[()], one),
        name="bin_weight",
    )

    def weight(i: tirx.Var, j: tirx.Var) -> tirx.PrimExpr:
        b = bin_index[i, j].astype("int32")
        return tirx.Select(b >= 0, bin_weight[tirx.max(b, 0)], zero)

    weights = te.compute((n, c), weight, name="ghm_weight")
    return weights, tot, new_state, prob


def _check_shapes(
    pred: te.Tensor, target: te.Tensor, label_weight: te.Tensor, state: te.Tensor, bins: int
) -> None:
    if len(pred.shape) != 2:
        raise ShapeError(
            f"op 'tvmext.ghmc_loss': input 'pred' must be (N, C), got {dims(pred.shape)}"
        )
    for name, t in (("target", target), ("label_weight", label_weight)):
        if dims(t.shape) != dims(pred.shape):
            raise ShapeError(
                f"op 'tvmext.ghmc_loss': input {name!r} has shape {dims(t.shape)}, expected "
                f"{dims(pred.shape)} (the shape of 'pred')"
            )
    if dims(state.shape) != [bins]:
        raise ShapeError(
            f"op 'tvmext.ghmc_loss': input 'state' has shape {dims(state.shape)}, expected "
            f"[{bins}] (one accumulated count per bin)"
        )


@op("tvmext.ghmc_loss")
def ghmc_loss(
    pred: te.Tensor,
    target: te.Tensor,
    label_weight: te.Tensor,
    state: te.Tensor,
    *,
    bins: int = 10,
    momentum: float = 0.0,
    loss_weight: float = 1.0,
) -> tuple[te.Tensor, te.Tensor]:
    """GHM-C loss and the updated bin-count state (see the module docstring)."""
    _check_shapes(pred, target, label_weight, state, bins)
    weights, tot, new_state, _ = _bins_and_weights(
        pred, target, label_weight, state, bins, momentum
    )
    n, c = pred.shape
    f32 = "float32"
    zero = tirx.const(0.0, f32)
    e = _exp_neg_abs(pred)

    def bce(i: tirx.Var, j: tirx.Var) -> tirx.PrimExpr:
        x, y = pred[i, j], target[i, j]
        return tirx.max(x, zero) - x * y + _log1p_unit(e[i, j])

    total = _sum_elements(lambda i, j: weights[i, j] * bce(i, j), n, c, "weighted_bce")
    loss = te.compute(
        (), lambda: tirx.const(loss_weight, f32) * total[()] / tot[()], name="ghmc_loss"
    )
    return loss, te.compute((bins,), lambda b: new_state[b], name="state_out")


@ghmc_loss.gradient
def _ghmc_loss_grad(
    pred: te.Tensor,
    target: te.Tensor,
    label_weight: te.Tensor,
    state: te.Tensor,
    loss: te.Tensor,
    new_state: te.Tensor,
    dloss: te.Tensor,
    dstate: te.Tensor,
    *,
    bins: int,
    momentum: float,
    loss_weight: float,
) -> tuple[te.Tensor, None, None, None]:
    weights, tot, _, prob = _bins_and_weights(pred, target, label_weight, state, bins, momentum)
    scale = tirx.const(loss_weight, "float32")
    dpred = te.compute(
        pred.shape,
        lambda i, j: dloss[()] * scale * weights[i, j] * (prob[i, j] - target[i, j]) / tot[()],
        name="ghmc_dpred",
    )
    return dpred, None, None, None


def ghmc_weights_reference(
    pred: np.ndarray,
    target: np.ndarray,
    label_weight: np.ndarray,
    state: np.ndarray,
    *,
    bins: int,
    momentum: float,
) -> tuple[np.ndarray, float, np.ndarray]:
    """mmdetection's GHMC weights in float32 NumPy: (weights, tot, new_state)."""
    edges = np.arange(bins + 1, dtype=np.float32) / np.float32(bins)
    edges[-1] += np.float32(_LAST_EDGE_EXTRA)
    prob = np.exp(-np.logaddexp(np.float32(0), -pred.astype(np.float32)))  # stable sigmoid
    g = np.abs(prob.astype(np.float32) - target)
    valid = label_weight > 0
    tot = max(float(valid.sum()), 1.0)
    weights = np.zeros_like(pred, dtype=np.float32)
    new_state = state.astype(np.float32).copy()
    nonempty = 0
    for i in range(bins):
        inds = (g >= edges[i]) & (g < edges[i + 1]) & valid
        count = int(inds.sum())
        if count > 0:
            if momentum > 0:
                new_state[i] = momentum * new_state[i] + (1 - momentum) * count
                weights[inds] = tot / new_state[i]
            else:
                weights[inds] = tot / count
            nonempty += 1
    if nonempty > 0:
        weights /= nonempty
    return weights, tot, new_state


@ghmc_loss.reference
def _ghmc_loss_reference(
    pred: np.ndarray,
    target: np.ndarray,
    label_weight: np.ndarray,
    state: np.ndarray,
    *,
    bins: int,
    momentum: float,
    loss_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    weights, tot, new_state = ghmc_weights_reference(
        pred, target, label_weight, state, bins=bins, momentum=momentum
    )
    x = pred.astype(np.float64)
    bce = np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x)))
    loss = loss_weight * float((weights * bce).sum()) / tot
    return np.asarray(loss, dtype=pred.dtype), new_state.astype(state.dtype)


def _schedule_cpu(sch: s_tir.Schedule, target: tvm.target.Target) -> None:
    """Materialize exp(-|pred|) and the bin of each element once (parallel, vectorized),
    count the bins in parallel row chunks, inline the sigmoid and weights into their
    users, and sum the weighted BCE as a parallel loop over row chunks with the columns
    vectorized."""
    blocks = {sch.get(b).name_hint: b for b in sch.get_child_blocks(sch.get_sblock("root"))}
    for name, block in blocks.items():
        if name in ("prob", "ghm_weight", "neg_abs"):
            sch.compute_inline(block)
    # exp(-|pred|) is materialized: the bin search and log1p's polynomial each read it
    # several times, and inlined it made the kernel hundreds of kilobytes of code and
    # seconds of TVM's compile time.
    for name, block in blocks.items():
        if name.startswith("T_fast_exp"):
            parallel_vectorized_flat(sch, block, target)
    parallel_vectorized_flat(sch, blocks["bin_index"], target)
    parallelize_histogram(sch)
    if "weighted_bce_chunks" in blocks:
        chunk, column, ri = sch.get_loops(blocks["weighted_bce_chunks"])
        sch.reorder(chunk, ri, column)
        sch.parallel(chunk)
        if const_extent(sch, column) is not None:
            sch.vectorize(column)
        sch.decompose_reduction(blocks["weighted_bce_chunks"], ri)
    if "ghmc_dpred" in blocks:
        parallel_vectorized_flat(sch, blocks["ghmc_dpred"], target)


ghmc_loss.schedule("llvm")(_schedule_cpu)
ghmc_loss.gradient_op().schedule("llvm")(_schedule_cpu)

"""Default schedules for PrimFuncs nobody scheduled: never TVM's naive loops.

CPU rules, the first that applies wins:

1. a register-tiled matmul (with its epilogue) where the function is one;
2. row-wise functions (sums and maxima over the trailing, contiguous axes, softmax,
   norms): rows in parallel, reductions in SIMD partial sums, the elementwise work on
   each row vectorized;
3. dlight's CPU rules (GEMV, reductions);
4. a generic rule: inline injective producers, then per block
   - elementwise and layout changes: parallel outer loops, vectorized innermost one;
     an input read in another order than the output is written is walked in its own
     order (permuted outer axes) or transposed in SIMD tiles through a local buffer
     (its contiguous axis is not the output's), so that memory is read and written
     in whole cache lines;
   - reductions over leading axes (the contiguous axis is kept): whole rows added at
     a time, in parallel partial sums over chunks of the reduced rows when the kept
     axes are too few to share among threads.

Then ``exp``/``erf``/``tanh``/``sigmoid`` become vectorizable arithmetic
(:mod:`tvmext.lowering.schedules.vector_math`). CUDA: dlight's GPU rules. A schedule
that fails the size guard (:mod:`tvmext.lowering.schedules.limits`) or a schedule
primitive gives way to the next rule. Symbolic extents are parallelized, never
vectorized.
"""

from __future__ import annotations

from collections.abc import Callable

import tvm
import tvm_ffi
from tvm import s_tir, tirx
from tvm.s_tir import dlight
from tvm.s_tir.dlight.analysis import SBlockInfo, normalize_prim_func
from tvm.s_tir.schedule import LoopRV, SBlockRV

from tvmext.lowering.schedules.cpu_matmul import schedule_matmul
from tvmext.lowering.schedules.helpers import (
    const_extent,
    parallel,
    parallel_rows_vectorized_cols,
    parallel_vectorized_flat,
    read_strides,
    rfactor_simd,
    tile_transpose,
    vector_lanes,
    vectorize_partial,
    vectorized_row_reduction,
)
from tvmext.lowering.schedules.limits import child_statements, size_violation
from tvmext.lowering.schedules.vector_math import polynomial_math

# Partial sums of a column reduction: at most this many chunks, and this many
# elements in all (the partial buffer), else the kept axes alone are parallel.
_MAX_CHUNKS = 16
_MAX_PARTIAL_ELEMENTS = 1 << 22
# Kept (outer) iterations a column reduction needs to share among threads without
# splitting the reduced axis.
_MIN_PARALLEL_ROWS = 8

Rule = Callable[[s_tir.Schedule, tvm.target.Target], bool]
# What a schedule primitive raises on a function it does not fit (ScheduleError, or
# an internal check such as transform_layout's).
_SCHEDULE_ERRORS = (s_tir.schedule.ScheduleError, tvm.error.InternalError)


def _cpu_rules() -> list[dlight.ScheduleRule]:
    return [dlight.cpu.GEMV(), dlight.cpu.Reduction()]


def _gpu_rules() -> list[dlight.ScheduleRule]:
    return [
        dlight.gpu.Matmul(),
        dlight.gpu.GEMV(),
        dlight.gpu.Reduction(),
        dlight.gpu.GeneralReduction(),
        dlight.gpu.Fallback(),
    ]


def _apply_rules(
    func: tirx.PrimFunc, target: tvm.target.Target, rules: list[dlight.ScheduleRule]
) -> s_tir.Schedule | None:
    """The first rule's schedule that applies and passes the size guard."""
    for rule in rules:
        try:
            result = rule.apply(func, target, False)
        except Exception:  # a rule that does not fit this function
            continue
        if isinstance(result, list):
            result = result[0] if result else None
        if result is not None and size_violation(result.mod["main"], target) is None:
            return result
    return None


def _loop_strides(sch: s_tir.Schedule, info: SBlockInfo) -> list[list[int]]:
    """:func:`read_strides` of ``info``'s block, one step per loop of ``info``."""
    return read_strides(sch, info.block_rv, [it.var for it in info.iters])


def _split_kinds(info: SBlockInfo) -> tuple[int, int] | None:
    """(spatial, reduced) loop counts if ``info``'s loops are spatial ones followed by
    reduced ones, else None."""
    kinds = "".join(info.dom_kind())
    n_spatial = len(kinds) - len(kinds.lstrip("S"))
    if set(kinds[n_spatial:]) - {"R"}:
        return None
    return n_spatial, len(kinds) - n_spatial


def _vectorize_tail(
    sch: s_tir.Schedule, block: SBlockRV, depth: int, target: tvm.target.Target
) -> None:
    """Vectorize ``block``'s loops below the first ``depth`` (fused, in SIMD chunks)
    where their extent is constant and divides the vector width."""
    inner = sch.get_loops(block)[depth:]
    if not inner:
        return
    loop = sch.fuse(*inner) if len(inner) > 1 else inner[0]
    lanes = vector_lanes(target, str(sch.get(block).writes[0].source.dtype))
    extent = const_extent(sch, loop)
    if extent is not None and extent % lanes == 0:
        _, lane = sch.split(loop, [None, lanes])
        sch.vectorize(lane)


def _inline(sch: s_tir.Schedule, infos: list[SBlockInfo], *, keep_shared: bool) -> list[SBlockInfo]:
    """dlight's ``try_inline`` (the blocks left), except that a consumer is never folded
    into a reduction: TVM folds it into the reduction's ``init`` too once a length-1
    reduced axis is gone (softmax over such an axis gave NaN). With ``keep_shared``, a
    producer read by several blocks stays, so its row is computed once (softmax's
    ``exp``) rather than once per reader."""

    def into_reduction(block: SBlockRV) -> bool:
        return any(sch.get(p).init is not None for p in sch.get_producers(block))

    def trial(inline: Callable[[SBlockRV], None], reverse: bool) -> int | None:
        for i, info in enumerate(infos):
            block = info.block_rv
            if reverse and into_reduction(block):
                continue
            if not reverse and keep_shared and len(sch.get_consumers(block)) > 1:
                continue
            try:
                inline(block)
            except s_tir.schedule.ScheduleError:
                continue
            return i
        return None

    while True:
        found = trial(sch.compute_inline, False)
        if found is None:
            found = trial(sch.reverse_compute_inline, True)
        if found is None:
            return infos
        infos.pop(found)


def _same_rows(info: SBlockInfo, out: SBlockInfo, n_rows: int) -> bool:
    """Whether ``info``'s first ``n_rows`` loops are spatial and span ``out``'s."""
    if len(info.iters) < n_rows or len(out.iters) < n_rows:
        return False
    return all(
        a.kind == "S" and tvm_ffi.structural_equal(a.dom, b.dom)
        for a, b in zip(info.iters[:n_rows], out.iters[:n_rows], strict=True)
    )


def schedule_rows(sch: s_tir.Schedule, target: tvm.target.Target) -> bool:
    """Row-wise functions: every reduction sums (or maxes) its trailing, contiguous
    axes per row of the same leading axes, and the other blocks work on those rows
    (softmax, layer and RMS norms, sums and maxima over the last axes, mean over
    ``[0, 2, 3]`` of NCHW). Rows run in parallel; reductions in SIMD partial sums
    (:func:`~tvmext.lowering.schedules.helpers.rfactor_simd`); elementwise work on a
    row is vectorized. Returns False when the function is not of this form."""
    infos = normalize_prim_func(sch)
    if infos is None:
        return False
    infos = _inline(sch, infos, keep_shared=True)
    rows: set[int] = set()
    for info in infos:
        if not info.is_reduction():
            continue
        split = _split_kinds(info)
        strides = _loop_strides(sch, info)
        if split is None or split[0] == 0 or not strides:
            return False
        if any(s[-1] != 1 for s in strides):  # the reduced axes are not contiguous
            return False
        rows.add(split[0])
    if len(rows) != 1:
        return False
    n_rows = rows.pop()
    out = infos[-1]
    if not all(_same_rows(info, out, n_rows) for info in infos):
        return False  # a block that is not per row (computed under each row, it repeats)
    block = out.block_rv
    if out.is_reduction():
        partial = rfactor_simd(sch, block, target)
        loops = sch.get_loops(block)[:n_rows]
        row = sch.fuse(*loops) if len(loops) > 1 else loops[0]
        parallel(sch, row)
        if partial is not None:
            sch.compute_at(partial, row)
            vectorize_partial(sch, partial)
    else:
        if set(out.dom_kind()) != {"S"} or len(out.iters) < n_rows:
            return False
        n_cols = len(out.iters) - n_rows
        if n_cols:
            row = parallel_rows_vectorized_cols(sch, block, target, n_cols)
        else:
            loops = sch.get_loops(block)
            row = sch.fuse(*loops) if len(loops) > 1 else loops[0]
            parallel(sch, row)
    for info in reversed(infos[:-1]):
        if info.is_reduction():
            vectorized_row_reduction(sch, info.block_rv, row, target)
        else:
            sch.compute_at(info.block_rv, row)
            _vectorize_tail(sch, info.block_rv, 1, target)
    return True


def schedule_parallel_vectorized(sch: s_tir.Schedule, target: tvm.target.Target) -> bool:
    """Generic CPU rule: inline producers, then schedule each block by its kind
    (:func:`_schedule_injective`, :func:`_schedule_reduction`).

    Returns False when the function cannot be analysed (it is left unchanged).
    """
    infos = normalize_prim_func(sch)
    if infos is None:
        return False
    for info in _inline(sch, infos, keep_shared=False):
        if not info.iters or "O" in info.dom_kind():
            continue
        split = _split_kinds(info)
        if split is None or split[0] == 0:
            continue
        try:  # every primitive keeps the function correct: a block may stop half-way
            if split[1]:
                _schedule_reduction(sch, info, split[0], target)
            else:
                _schedule_injective(sch, info, target)
        except _SCHEDULE_ERRORS:
            continue
    return True


def _schedule_injective(sch: s_tir.Schedule, info: SBlockInfo, target: tvm.target.Target) -> None:
    """Elementwise work and layout changes, by how the main inputs are laid out."""
    block = info.block_rv
    loops = sch.get_loops(block)
    last = len(loops) - 1
    strides = _loop_strides(sch, info) if last > 0 else []
    straight = [s for s in strides if s[last] == 1]
    transposed = [s for s in strides if s[last] != 1 and 1 in s[:last]]
    inner = {s.index(1) for s in transposed}
    iters = [it.var for it in info.iters]
    if (
        transposed
        and not straight
        and len(inner) == 1
        and not _is_copy(sch, block)
        and tile_transpose(sch, block, inner.pop(), target, iters)
    ):
        return
    if transposed:
        _tile_last_axis(sch, block, loops, loops[transposed[0].index(1)], target)
        return
    orders = {_input_order(s, last) for s in straight}
    if len(orders) == 1:
        order = orders.pop()
        if list(order) != list(range(last)) and _permute_outer(sch, block, loops, order, target):
            return
    parallel_vectorized_flat(sch, block, target)


def _is_copy(sch: s_tir.Schedule, block: SBlockRV) -> bool:
    """Whether ``block`` stores a value it loads (perhaps cast): a pure layout change,
    which LLVM transposes well from strided loads without a local tile."""
    body = sch.get(block).body
    value = getattr(body, "value", None)
    if isinstance(value, tirx.Cast):
        value = value.value
    return isinstance(value, tvm.ir.TensorLoad)


def _input_order(strides: list[int], n: int) -> tuple[int, ...]:
    """The first ``n`` loops by decreasing input step (stable): the input's order."""
    return tuple(sorted(range(n), key=lambda i: -strides[i]))


def _permute_outer(
    sch: s_tir.Schedule,
    block: SBlockRV,
    loops: list[LoopRV],
    order: tuple[int, ...],
    target: tvm.target.Target,
) -> bool:
    """An input whose outer axes come in another order than the output's (an
    attention-head split ``[B, S, H, D] -> [B, H, S, D]``) but whose contiguous axis is
    the output's: walk the outer axes in the input's order, so that it is read
    sequentially; each row is a contiguous, vectorized copy."""
    lanes = vector_lanes(target, str(sch.get(block).writes[0].source.dtype))
    extent = const_extent(sch, loops[-1])
    if extent is None or extent % lanes:
        return False
    outer = [loops[i] for i in order]
    sch.reorder(*outer, loops[-1])
    parallel(sch, sch.fuse(*outer) if len(outer) > 1 else outer[0])
    _, lane = sch.split(loops[-1], [None, lanes])
    sch.vectorize(lane)
    return True


def _tile_last_axis(
    sch: s_tir.Schedule,
    block: SBlockRV,
    loops: list[LoopRV],
    row: LoopRV,
    target: tvm.target.Target,
) -> None:
    """An input read transposed beside others read straight: walk ``lanes`` x ``lanes``
    tiles of the output's last loop and ``row`` (the transposed input's contiguous
    axis), vectorized along the output."""
    lanes = vector_lanes(target, str(sch.get(block).writes[0].source.dtype))
    last, row_extent = const_extent(sch, loops[-1]), const_extent(sch, row)
    if last is None or last % lanes or last <= lanes:
        parallel_vectorized_flat(sch, block, target)
        return
    outer, lane = sch.split(loops[-1], [None, lanes])
    others = [loop for loop in loops[:-1] if not sch.get(loop).same_as(sch.get(row))]
    if row_extent is not None and row_extent % lanes == 0:
        row_outer, row_inner = sch.split(row, [None, lanes])
        sch.reorder(*others, row_outer, outer, row_inner, lane)
        parallel(sch, sch.fuse(*others, row_outer, outer))
    else:
        parallel(sch, sch.fuse(*loops[:-1], outer) if len(loops) > 1 else outer)
    sch.vectorize(lane)


def _schedule_reduction(
    sch: s_tir.Schedule, info: SBlockInfo, n_spatial: int, target: tvm.target.Target
) -> None:
    """A reduction :func:`schedule_rows` did not take: over leading axes (the
    contiguous axis kept) as :func:`_column_reduction`, else parallel outputs."""
    block = info.block_rv
    strides = _loop_strides(sch, info)
    loops = sch.get_loops(block)
    spatial, reduce = loops[:n_spatial], loops[n_spatial:]
    contiguous_kept = bool(strides) and all(s[n_spatial - 1] == 1 for s in strides)
    if contiguous_kept and _column_reduction(sch, block, spatial, reduce, target):
        return
    parallel(sch, sch.fuse(*spatial) if len(spatial) > 1 else spatial[0])
    sch.decompose_reduction(block, reduce[0])


def _column_reduction(
    sch: s_tir.Schedule,
    block: SBlockRV,
    spatial: list[LoopRV],
    reduce: list[LoopRV],
    target: tvm.target.Target,
) -> bool:
    """Sum whole rows of the kept contiguous axis at a time (``x.sum(0)``, a sum over
    the middle axis): loops ``kept outer, reduced, kept last`` with the last vectorized,
    so the input is read sequentially. When the kept outer axes are too few to share
    among threads, the first reduced axis is split into chunks summed in parallel
    into partial rows (``rfactor``), then added up. Returns False (``sch`` unchanged)
    when the kept last axis is symbolic or does not divide the vector width."""
    lanes = vector_lanes(target, str(sch.get(block).writes[0].source.dtype))
    width = const_extent(sch, spatial[-1])
    if width is None or width % lanes:
        return False
    outer = spatial[:-1]
    rows = 1
    for loop in outer:
        rows *= const_extent(sch, loop) or _MIN_PARALLEL_ROWS
    chunks = _chunks(sch, reduce[0], rows * width)
    sch.reorder(*outer, *reduce, spatial[-1])
    if rows >= _MIN_PARALLEL_ROWS or chunks is None:
        if not outer:
            outer = [sch.add_unit_loop(block)]
        parallel(sch, sch.fuse(*outer) if len(outer) > 1 else outer[0])
        _, lane = sch.split(spatial[-1], [None, lanes])
        sch.vectorize(lane)
        sch.decompose_reduction(block, reduce[0])
        return True
    chunk, _ = sch.split(reduce[0], [chunks, None])
    partial = sch.rfactor(chunk, 0)
    # the partial block: outer..., chunk, rest of the reduction..., last
    ploops = sch.get_loops(partial)
    n = len(outer)
    sch.reorder(ploops[n], *ploops[:n])
    parallel(sch, sch.fuse(ploops[n], *ploops[:n]) if n else ploops[n])
    _, lane = sch.split(ploops[-1], [None, lanes])
    sch.vectorize(lane)
    sch.decompose_reduction(partial, ploops[n + 1])
    # the total: outer..., chunk (reduced), last
    tloops = sch.get_loops(block)
    col, lane = sch.split(tloops[-1], [None, lanes])
    sch.reorder(*tloops[:n], col, tloops[n], lane)
    parallel(sch, sch.fuse(*tloops[:n], col) if n else col)
    sch.vectorize(lane)
    sch.decompose_reduction(block, tloops[n])
    return True


def _chunks(sch: s_tir.Schedule, loop: LoopRV, row_elements: int) -> int | None:
    """How many chunks to split a reduced ``loop`` into for parallel partial sums of
    ``row_elements`` each: the most that divide its constant extent, or None."""
    extent = const_extent(sch, loop)
    if extent is None:
        return None
    for chunks in (_MAX_CHUNKS, 8, 4, 2):
        if extent % chunks == 0 and chunks * row_elements <= _MAX_PARTIAL_ELEMENTS:
            return chunks
    return None


def try_matmul(sch: s_tir.Schedule, target: tvm.target.Target) -> bool:
    """Apply the tiled matmul schedule if ``sch``'s function is a matmul (+ epilogue)."""
    infos = normalize_prim_func(sch)
    if infos is None:
        return False
    remaining = _inline(sch, infos, keep_shared=False)
    return 1 <= len(remaining) <= 2 and schedule_matmul(sch, remaining[0].block_rv, target)


def _applies(rule: Rule, func: tirx.PrimFunc, target: tvm.target.Target) -> tirx.PrimFunc | None:
    """``func`` scheduled by ``rule``, if it applies and passes the size guard."""
    sch = s_tir.Schedule(func)
    try:
        if not rule(sch, target):
            return None
    except _SCHEDULE_ERRORS:  # a primitive the function does not allow
        return None
    scheduled = sch.mod["main"]
    return scheduled if size_violation(scheduled, target) is None else None


def default_schedule(func: tirx.PrimFunc, target: tvm.target.Target) -> tirx.PrimFunc:
    """Schedule ``func`` for ``target`` by the first rule that applies (see the module
    docstring); each only if it passes the size guard
    (:mod:`tvmext.lowering.schedules.limits`), else the next. Unchanged if none applies.
    On CPUs, ``exp``/``erf``/``tanh``/``sigmoid`` then become vectorizable arithmetic
    (:mod:`tvmext.lowering.schedules.vector_math`)."""
    if target.kind.name in ("cuda", "rocm", "vulkan", "metal", "opencl"):
        gpu = _apply_rules(func, target, _gpu_rules())
        return func if gpu is None else gpu.mod["main"]
    return polynomial_math(_cpu_schedule(func, target))


def _has_reduction(func: tirx.PrimFunc) -> bool:
    """Whether a block of ``func`` reduces: the matmul, row and dlight rules schedule
    reductions only, and trying each on an elementwise function costs as much as
    scheduling it."""
    stack = [func.body]
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, s_tir.SBlock) and any(
            iv.iter_type == tirx.IterVar.CommReduce for iv in stmt.iter_vars
        ):
            return True
        stack.extend(child_statements(stmt))
    return False


def _cpu_schedule(func: tirx.PrimFunc, target: tvm.target.Target) -> tirx.PrimFunc:
    if not _has_reduction(func):
        scheduled = _applies(schedule_parallel_vectorized, func, target)
        return func if scheduled is None else scheduled
    for rule in (try_matmul, schedule_rows):
        scheduled = _applies(rule, func, target)
        if scheduled is not None:
            return scheduled
    dlight_sch = _apply_rules(func, target, _cpu_rules())
    if dlight_sch is not None:
        return dlight_sch.mod["main"]
    scheduled = _applies(schedule_parallel_vectorized, func, target)
    return func if scheduled is None else scheduled

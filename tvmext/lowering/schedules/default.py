"""Default schedules for PrimFuncs nobody scheduled: never TVM's naive loops.

CPU: a register-tiled matmul (with its epilogue) where the function is one, then
dlight's CPU rules (GEMV, row reductions such as softmax and norms), else a generic
rule: inline injective producers, then parallelize the outer spatial loops and
vectorize the innermost contiguous one. CUDA: dlight's GPU rules. A schedule that
fails the size guard (:mod:`tvmext.lowering.schedules.limits`) gives way to the next rule.
"""

from __future__ import annotations

import tvm
from tvm import s_tir, tirx
from tvm.s_tir import dlight
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.base.common_schedules import try_inline

from tvmext.lowering.schedules.cpu_matmul import schedule_matmul
from tvmext.lowering.schedules.helpers import const_extent, parallel_vectorized_flat, vector_lanes
from tvmext.lowering.schedules.limits import size_violation


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


def schedule_parallel_vectorized(sch: s_tir.Schedule, target: tvm.target.Target) -> bool:
    """Generic CPU rule: inline producers, parallel outer loops, vectorize inner.

    Returns False when the function cannot be analysed (it is left unchanged).
    """
    infos = normalize_prim_func(sch)
    if infos is None:
        return False
    for info in try_inline(sch, infos):
        block = info.block_rv
        loops = sch.get_loops(block)
        if not loops:
            continue
        kinds = {"S": [], "R": [], "O": []}  # type: dict[str, list[s_tir.schedule.LoopRV]]
        for loop, kind in zip(loops, info.dom_kind(), strict=False):
            kinds[kind].append(loop)
        spatial, reduce = kinds["S"], kinds["R"]
        if not spatial or kinds["O"]:
            continue
        sch.reorder(*spatial, *reduce)
        lanes = vector_lanes(target, str(sch.get(block).writes[0].source.dtype))
        strided = _reads_across_last_axis(sch, block)
        last = const_extent(sch, spatial[-1])
        if strided and last is not None and last % lanes == 0 and last > lanes:
            _tile_last_axis(sch, block, spatial, reduce, lanes)
            continue
        if reduce:
            sch.parallel(sch.fuse(*spatial) if len(spatial) > 1 else spatial[0])
            sch.decompose_reduction(block, reduce[0])
            continue
        parallel_vectorized_flat(sch, block, target)
    return True


def _reads_across_last_axis(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV) -> bool:
    """Whether an input's contiguous (last) index follows the block's last spatial
    iterator while that iterator is not the output's last one in the loop order: a
    column reduction (summing over leading axes) or a transpose, whose flat loop
    strides through memory."""
    stmt = sch.get(block)
    spatial = [iv.var for iv in stmt.iter_vars if iv.iter_type == tirx.IterVar.DataPar]
    reduce = [iv.var for iv in stmt.iter_vars if iv.iter_type == tirx.IterVar.CommReduce]
    if not spatial:
        return False
    for region in stmt.reads:
        if len(region.region) < 2:
            continue
        used = tirx.analysis.undefined_vars(region.region[-1].min, [])
        uses_last = any(v.same_as(spatial[-1]) for v in used)
        uses_reduce = any(v.same_as(r) for v in used for r in reduce)
        if reduce and uses_last and not uses_reduce:
            return True  # column reduction
        if not reduce and used and not uses_last:
            return True  # transpose-like read
    return False


def _tile_last_axis(
    sch: s_tir.Schedule,
    block: s_tir.schedule.SBlockRV,
    spatial: list[s_tir.schedule.LoopRV],
    reduce: list[s_tir.schedule.LoopRV],
    lanes: int,
) -> None:
    """Split the last spatial loop into SIMD lanes kept innermost: a column reduction then
    reads whole vectors per row, and a transpose walks ``lanes`` x ``lanes`` tiles."""
    outer, lane = sch.split(spatial[-1], [None, lanes])
    if reduce:
        sch.reorder(*spatial[:-1], outer, *reduce, lane)
        sch.parallel(sch.fuse(*spatial[:-1], outer) if len(spatial) > 1 else outer)
        sch.vectorize(lane)
        sch.decompose_reduction(block, reduce[0])
        return
    elif (
        len(spatial) >= 2
        and const_extent(sch, spatial[-2]) is not None
        and (const_extent(sch, spatial[-2]) or 0) % lanes == 0
    ):
        row_outer, row = sch.split(spatial[-2], [None, lanes])
        sch.reorder(*spatial[:-2], row_outer, outer, row, lane)
        sch.parallel(sch.fuse(*spatial[:-2], row_outer, outer))
    else:
        sch.parallel(sch.fuse(*spatial[:-1], outer) if len(spatial) > 1 else outer)
    sch.vectorize(lane)


def try_matmul(sch: s_tir.Schedule, target: tvm.target.Target) -> bool:
    """Apply the tiled matmul schedule if ``sch``'s function is a matmul (+ epilogue)."""
    infos = normalize_prim_func(sch)
    if infos is None:
        return False
    remaining = try_inline(sch, infos)
    return 1 <= len(remaining) <= 2 and schedule_matmul(sch, remaining[0].block_rv, target)


def default_schedule(func: tirx.PrimFunc, target: tvm.target.Target) -> tirx.PrimFunc:
    """Schedule ``func`` for ``target``: tiled matmul, dlight,
    else the generic CPU rule; each only if it passes the size guard
    (:mod:`tvmext.lowering.schedules.limits`), else the next. Unchanged if none applies."""
    if target.kind.name in ("cuda", "rocm", "vulkan", "metal", "opencl"):
        gpu = _apply_rules(func, target, _gpu_rules())
        return func if gpu is None else gpu.mod["main"]
    sch = s_tir.Schedule(func)
    if try_matmul(sch, target) and size_violation(sch.mod["main"], target) is None:
        return sch.mod["main"]
    dlight_sch = _apply_rules(func, target, _cpu_rules())
    if dlight_sch is not None:
        return dlight_sch.mod["main"]
    sch = s_tir.Schedule(func)
    if (
        schedule_parallel_vectorized(sch, target)
        and size_violation(sch.mod["main"], target) is None
    ):
        return sch.mod["main"]
    return func

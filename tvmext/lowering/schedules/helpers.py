"""Building blocks for CPU schedules of row-wise ops (norms, moments, activations) and
of layout changes (transposes).

Op schedules in :mod:`tvmext.ops` are written with these; user schedules may use
them too. Each helper leaves the function correct when shapes are symbolic or do
not divide the vector width: it then parallelizes without vectorizing.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import tvm
from tvm import s_tir, sym, tirx
from tvm.s_tir.schedule import LoopRV
from tvm.s_tir.schedule import SBlockRV as BlockRV
from tvm.sym.analyzer import Analyzer

_SERIAL = contextvars.ContextVar("tvmext_serial_loops", default=False)


@contextlib.contextmanager
def serial_loops() -> Iterator[None]:
    """Within it, :func:`parallel` leaves loops serial (a kernel too small for threads,
    :mod:`tvmext.lowering.serial_small_kernels`)."""
    token = _SERIAL.set(True)
    try:
        yield
    finally:
        _SERIAL.reset(token)


def parallel(sch: s_tir.Schedule, loop: LoopRV) -> None:
    """``sch.parallel(loop)``, unless within :func:`serial_loops`."""
    if not _SERIAL.get():
        sch.parallel(loop)


def vector_lanes(target: tvm.target.Target, dtype: str) -> int:
    """How many ``dtype`` elements fit one SIMD register of ``target`` (at least 4)."""
    bits = tvm.target.codegen.llvm_get_vector_width(target)
    return max(4, int(bits) // max(8, tvm.DataType(dtype).bits))


def const_extent(sch: s_tir.Schedule, loop: LoopRV) -> int | None:
    """The loop's extent if it is a constant."""
    extent = sch.get(loop).extent
    return int(extent) if isinstance(extent, tirx.IntImm) else None


def inline_producers(sch: s_tir.Schedule, keep: list[str]) -> None:
    """Inline every spatial block except those named in ``keep`` and the outputs."""
    for block in sch.get_child_blocks(sch.get_sblock("root")):
        if sch.get(block).name_hint in keep:
            continue
        try:
            sch.compute_inline(block)
        except s_tir.schedule.ScheduleError:  # an output or a reduction: keep it
            continue


def parallel_vectorized_flat(
    sch: s_tir.Schedule, block: BlockRV, target: tvm.target.Target
) -> None:
    """Vectorize the trailing constant-extent loops of an injective ``block`` in SIMD
    chunks and parallelize everything outside them (fused), symbolic dims included.
    When the last loop is symbolic, the loops outside it are the parallel rows and it
    stays a plain inner loop, which LLVM vectorizes with a remainder: fusing it too
    would cost a division by a symbolic extent per element."""
    loops = sch.get_loops(block)
    lanes = vector_lanes(target, str(sch.get(block).writes[0].source.dtype))
    n_const, size = 0, 1
    for loop in reversed(loops):
        extent = const_extent(sch, loop)
        if extent is None:
            break
        n_const, size = n_const + 1, size * extent
    if n_const == 0 and len(loops) > 1:
        rows = loops[:-1]
        parallel(sch, sch.fuse(*rows) if len(rows) > 1 else rows[0])
        return
    if n_const == 0 or size % lanes != 0 or (size == lanes and n_const == len(loops)):
        parallel(sch, sch.fuse(*loops) if len(loops) > 1 else loops[0])
        return
    outer, trailing = loops[: len(loops) - n_const], loops[len(loops) - n_const :]
    col = sch.fuse(*trailing) if len(trailing) > 1 else trailing[0]
    col_outer, lane = sch.split(col, [None, lanes])
    sch.vectorize(lane)
    rows = [*outer, col_outer]
    parallel(sch, sch.fuse(*rows) if len(rows) > 1 else rows[0])


def parallel_rows_vectorized_cols(
    sch: s_tir.Schedule, block: BlockRV, target: tvm.target.Target, n_cols: int = 1
) -> LoopRV:
    """Fuse and parallelize all but the last ``n_cols`` loops; vectorize the columns.

    Returns the parallel row loop (to ``compute_at`` producers under it).
    """
    loops = sch.get_loops(block)
    rows, cols = loops[:-n_cols], loops[-n_cols:]
    col = sch.fuse(*cols) if len(cols) > 1 else cols[0]
    if not rows:
        rows = [sch.add_unit_loop(block)]
    row = sch.fuse(*rows) if len(rows) > 1 else rows[0]
    parallel(sch, row)
    lanes = vector_lanes(target, str(sch.get(block).writes[0].source.dtype))
    extent = const_extent(sch, col)
    if extent is not None and extent % lanes == 0:
        _, inner = sch.split(col, [None, lanes])
        sch.vectorize(inner)
    return row


def rfactor_simd(sch: s_tir.Schedule, block: BlockRV, target: tvm.target.Target) -> BlockRV | None:
    """Split reduction ``block``'s trailing reduced axes into SIMD-wide partial sums.

    Returns the partial-sum block (``rfactor``), or None when the reduced extent is
    symbolic or does not divide the vector width (the block is left as it was).
    """
    loops = sch.get_loops(block)
    n_spatial = sum(iv.iter_type == tirx.IterVar.DataPar for iv in sch.get(block).iter_vars)
    reduce = loops[n_spatial:]
    lanes = vector_lanes(target, str(sch.get(block).writes[0].source.dtype))
    extents = [const_extent(sch, loop) for loop in reduce]
    if any(e is None for e in extents):
        return None
    total = 1
    for e in extents:
        total *= e  # type: ignore[operator]
    if total % lanes != 0 or total <= lanes:
        return None
    k = sch.fuse(*reduce) if len(reduce) > 1 else reduce[0]
    _, k_inner = sch.split(k, [None, lanes])
    return sch.rfactor(k_inner, 0)


def vectorize_partial(sch: s_tir.Schedule, partial: BlockRV) -> None:
    """Once ``partial`` (from :func:`rfactor_simd`) sits under its row loop, run its
    lanes innermost and vectorized."""
    lane, k_outer = sch.get_loops(partial)[-2:]
    sch.reorder(k_outer, lane)
    sch.vectorize(lane)
    sch.decompose_reduction(partial, k_outer)


def vectorized_row_reduction(
    sch: s_tir.Schedule, block: BlockRV, row: LoopRV, target: tvm.target.Target
) -> None:
    """Compute reduction ``block`` (spatial rows, reduced trailing axes) under ``row``,
    its consumer's row loop, with SIMD partial sums where the shape allows."""
    partial = rfactor_simd(sch, block, target)
    sch.compute_at(block, row)
    if partial is not None:
        sch.compute_at(partial, row)
        vectorize_partial(sch, partial)


# The size a symbolic dim is assumed to have where only the order of strides matters.
TYPICAL_DIM = 128


def _typical(step: tirx.PrimExpr) -> int | None:
    """``step`` as an int, its symbolic dims at :data:`TYPICAL_DIM`; None if it reads
    anything else (a loop variable, a buffer)."""
    if isinstance(step, tirx.IntImm):
        return int(step)
    analyzer = Analyzer()
    for var in tirx.analysis.undefined_vars(step):
        analyzer.bind(var, tirx.IntImm(str(var.ty), TYPICAL_DIM))
    value = analyzer.simplify(step)
    return int(value) if isinstance(value, tirx.IntImm) else None


def read_strides(
    sch: s_tir.Schedule, block: BlockRV, iters: list[tirx.Var] | None = None
) -> list[list[int]]:
    """For each main input of ``block`` (the reads indexed by the most block iterators;
    broadcast operands are left out), the step of its flat row-major index per unit of
    each block iterator, in the order of ``iters`` (default: the block's): 1 marks the
    iterator that walks the input's contiguous axis, 0 one the input does not use.
    A step that depends on a symbolic dim (``seq * 256``) is counted with every such
    dim at :data:`TYPICAL_DIM`: the order of the steps is what schedules use. Reads
    whose index is not linear in the iterators (gathers) are left out."""
    stmt = sch.get(block)
    if iters is None:
        iters = [iv.var for iv in stmt.iter_vars]
    analyzer = Analyzer()
    for iv in stmt.iter_vars:
        analyzer.bind(iv.var, iv.dom)
    found: list[tuple[int, list[int]]] = []
    for region in stmt.reads:
        buf = region.source
        flat: tirx.PrimExpr = tirx.const(0, "int64")
        for dim, rng in zip(buf.shape, region.region, strict=True):
            flat = flat * tirx.Cast("int64", dim) + tirx.Cast("int64", rng.min)
        coefficients = sym.detect_linear_equation(analyzer.simplify(flat), iters)
        if not coefficients:
            continue
        typical = [_typical(c) for c in coefficients[:-1]]
        steps = [step for step in typical if step is not None]
        if len(steps) < len(typical):
            continue
        used = sum(step != 0 for step in steps)
        found.append((used, steps))
    most = max((used for used, _ in found), default=0)
    return [steps for used, steps in found if used == most and most > 0]


def _written_dims(sch: s_tir.Schedule, block: BlockRV, iters: list[tirx.Var]) -> list[int] | None:
    """The dimension of ``block``'s output that each of the block iterators ``iters``
    indexes alone, or None if one indexes none."""
    region = sch.get(block).writes[0].region
    dims = []
    for var in iters:
        found = [i for i, r in enumerate(region) if r.min.same_as(var)]
        if len(found) != 1:
            return None
        dims.append(found[0])
    return dims


def tile_transpose(
    sch: s_tir.Schedule,
    block: BlockRV,
    inner: int,
    target: tvm.target.Target,
    iters: list[tirx.Var] | None = None,
) -> bool:
    """Transpose in SIMD tiles: the injective ``block`` (loops in output order, its
    inputs contiguous along loop ``inner`` rather than along the last loop) computes a
    tile of ``lanes`` x up to ``4 * lanes`` elements into a local buffer, vectorized
    along ``inner`` (contiguous loads), and the tile is written back vectorized along
    the output's last axis (contiguous stores). No hardware gather or scatter, which are
    slow on many x86 CPUs; the local tile stays in L1.

    Returns False (``sch`` unchanged) unless both axes have constant extents that
    divide the vector width. ``iters`` are the block iterators of its loops, in loop
    order (default: the block's own, one per loop).
    """
    loops = sch.get_loops(block)
    stmt = sch.get(block)
    if iters is None:
        iters = [iv.var for iv in stmt.iter_vars]
    lanes = vector_lanes(target, str(stmt.writes[0].source.dtype))
    last = len(loops) - 1
    inner_extent, last_extent = const_extent(sch, loops[inner]), const_extent(sch, loops[last])
    if inner_extent is None or last_extent is None:
        return False
    if inner_extent % lanes or last_extent % lanes or inner == last:
        return False
    dims = _written_dims(sch, block, [iters[inner], iters[last]])
    if dims is None or dims[1] != len(stmt.writes[0].region) - 1:
        return False
    width = next(w for w in (4 * lanes, 2 * lanes, lanes) if last_extent % w == 0)
    write_back = sch.cache_write(block, 0, "local")
    wl = sch.get_loops(write_back)  # one per output dimension
    if len(wl) != len(stmt.writes[0].region):
        raise s_tir.schedule.ScheduleError("the write-back does not follow the output")
    in_outer, in_lane = sch.split(wl[dims[0]], [None, lanes])
    out_outer, out_tile = sch.split(wl[dims[1]], [None, width])
    others = [loop for i, loop in enumerate(wl) if i not in dims]
    # consecutive tiles step along the input's contiguous axis: each thread reads
    # `width` sequential streams, which the hardware prefetchers follow
    sch.reorder(*others, out_outer, in_outer, in_lane, out_tile)
    tile = sch.fuse(*others, out_outer, in_outer)
    parallel(sch, tile)
    _, out_lane = sch.split(out_tile, [None, lanes])
    sch.vectorize(out_lane)
    sch.compute_at(block, tile)
    tile_loops = sch.get_loops(block)[1:]  # the tile's `inner` and last axes (unit ones go)
    if len(tile_loops) != 2:
        raise s_tir.schedule.ScheduleError("the tile is not two-dimensional")
    row, col = tile_loops
    sch.reorder(col, row)
    sch.vectorize(row)
    rank = len(stmt.writes[0].region)

    def swap(*index: tirx.PrimExpr) -> list[tirx.PrimExpr]:
        order = list(index)
        order[dims[0]], order[dims[1]] = order[dims[1]], order[dims[0]]
        return order

    sch.transform_layout(block, ("write", 0), tirx.IndexMap.from_func(swap, ndim=rank))
    return True

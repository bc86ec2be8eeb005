"""Integer histograms inside TE computations, as a scatter-add TIR kernel.

TE has no scatter: a histogram written as ``te.sum(select(index == b, 1, 0))`` compares
every element with every bin (``bins`` times the work). :func:`row_chunk_histogram`
instead embeds a TVMScript kernel (``te.extern_primfunc``) that walks the elements once
and increments ``counts[index]``, with one counter per bin and column lane so that
repeated indices (the common case: most elements in one bin) do not wait on each
other's stores. The kernel's chunk loop is serial in the compute definition; a CPU
schedule makes it parallel with :func:`parallelize_histogram`.
"""

from __future__ import annotations

from tvm import s_tir, te, tirx
from tvm.script import tirx as T

from tvmext.lowering.schedules.helpers import parallel

_LANES = 8
_BLOCK = "row_chunk_histogram"


def row_chunk_histogram(index: te.Tensor, bins: int, chunks: int) -> te.Tensor:
    """``partial[k, b]``: how many elements of row chunk ``k`` of the (N, C) integer
    tensor ``index`` equal ``b`` (float32). Indices must lie in ``[-1, bins)``; -1 marks
    an element that is not counted. Rows are split into ``chunks`` equal chunks; sum over
    ``k`` for the histogram."""
    dtype = str(index.dtype)
    if any(str(d.ty) != "int64" for d in index.shape):  # TE's default int32 dims
        wide = [
            tirx.IntImm("int64", d.value) if isinstance(d, tirx.IntImm) else d for d in index.shape
        ]
        index = te.compute(wide, lambda i, j: index[i, j], name="histogram_index")
    lanes = _LANES
    slots = (bins + 1) * lanes  # bin -1 (not counted) gets slots too: no branch

    @T.prim_func(s_tir=True)
    def kernel(a: T.handle, p: T.handle) -> None:
        n = T.int64()
        c = T.int64()
        index_buf = T.match_buffer(a, (n, c), dtype)
        partial = T.match_buffer(p, (chunks, bins), "float32")
        with T.sblock("row_chunk_histogram_root"):
            for k in range(T.int64(chunks)):
                with T.sblock(_BLOCK):
                    vk = T.axis.spatial(T.int64(chunks), k)
                    T.reads(index_buf[0:n, 0:c])
                    T.writes(partial[vk, 0:bins])
                    counter = T.alloc_buffer((slots,), "int32")
                    for s in range(slots):
                        counter[s] = 0
                    rows = (n + T.int64(chunks - 1)) // T.int64(chunks)
                    body = c // T.int64(lanes) * T.int64(lanes)
                    for i in range(rows):
                        if vk * rows + i < n:
                            for j0 in range(c // T.int64(lanes)):
                                for lane in T.unroll(lanes):
                                    col = j0 * T.int64(lanes) + T.int64(lane)
                                    value = T.Cast("int32", index_buf[vk * rows + i, col])
                                    slot = value * lanes + (lanes + lane)
                                    counter[slot] = counter[slot] + 1
                            for j in range(c - body):
                                value = T.Cast("int32", index_buf[vk * rows + i, body + j])
                                slot = value * lanes + lanes
                                counter[slot] = counter[slot] + 1
                    for b in range(bins):
                        partial[vk, b] = T.Cast("float32", counter[(b + 1) * lanes])
                        for lane in range(1, lanes):
                            partial[vk, b] = partial[vk, b] + T.Cast(
                                "float32", counter[(b + 1) * lanes + lane]
                            )

    shaped = kernel.specialize(
        {kernel.params[0]: tirx.decl_buffer(index.shape, dtype, name="index")}
    )
    return te.extern_primfunc([index], shaped)


def parallelize_histogram(sch: s_tir.Schedule) -> None:
    """Run the chunks of every :func:`row_chunk_histogram` in ``sch`` in parallel."""
    pending = list(sch.get_child_blocks(sch.get_sblock("root")))
    while pending:
        block = pending.pop()
        if sch.get(block).name_hint == _BLOCK:
            parallel(sch, sch.get_loops(block)[-1])
        else:
            pending.extend(sch.get_child_blocks(block))

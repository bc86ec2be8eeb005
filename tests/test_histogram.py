"""tvmext.lowering.schedules.histogram: the scatter-add histogram kernel against np.bincount."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import s_tir, te, tirx

import tvmext
from tvmext.lowering.schedules.histogram import parallelize_histogram, row_chunk_histogram


def _histogram_function(rows: tirx.PrimExpr, cols: int, dtype: str, bins: int, chunks: int):
    index = te.placeholder((rows, cols), dtype, name="index")
    partial = row_chunk_histogram(index, bins, chunks)
    k = te.reduce_axis((0, chunks), "k")
    counts = te.compute((bins,), lambda b: te.sum(partial[k, b], axis=k), name="counts")
    sch = s_tir.Schedule(te.create_prim_func([index, counts]))
    parallelize_histogram(sch)
    return tvm.compile(sch.mod, target=tvmext.parse_target("llvm").host)["main"]


@pytest.mark.parametrize(
    ("rows", "cols", "dtype", "bins"),
    [(1000, 83, "int8", 30), (5, 3, "int8", 10), (257, 16, "int32", 200)],
    ids=["ragged", "fewer-rows-than-chunks", "int32-bins"],
)
def test_counts_match_bincount(rng, rows, cols, dtype, bins):
    index = rng.integers(-1, bins, size=(rows, cols)).astype(dtype)  # -1: not counted
    index[rng.random(index.shape) < 0.5] = 0  # long runs of one bin, as in GHM-C
    run = _histogram_function(rows, cols, dtype, bins, chunks=64)
    counts = tvm.runtime.empty((bins,), "float32")
    run(tvm.runtime.tensor(index), counts)
    expected = np.bincount(index[index >= 0].astype(np.int64), minlength=bins)
    np.testing.assert_array_equal(counts.numpy(), expected)


def test_symbolic_rows(rng):
    run = _histogram_function(tirx.Var("n", "int64"), 12, "int8", 7, chunks=8)
    for rows in (1, 9, 100):
        index = rng.integers(-1, 7, size=(rows, 12)).astype(np.int8)
        counts = tvm.runtime.empty((7,), "float32")
        run(tvm.runtime.tensor(index), counts)
        expected = np.bincount(index[index >= 0].astype(np.int64), minlength=7)
        np.testing.assert_array_equal(counts.numpy(), expected)

"""Tuning: search the parameters tvmext's own schedules expose, keep the best in JSON.

MetaSchedule in TVM 0.27 segfaults on this machine (``../shared/notes/
metaschedule_crash``), so tvmext tunes its own schedule space: for every matmul-like
PrimFunc of a model it times the register-tile shapes (rows per tile, SIMD vectors
per tile, k unroll) with TVM's time evaluator and records the fastest that beats the
default. Records are keyed by the PrimFunc's structural hash (before scheduling),
so they apply to any model containing the same workload.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import tvm
from tvm import s_tir, tirx

from tvmext.lowering.schedules.cpu_matmul import MatmulTiles
from tvmext.lowering.schedules.default import try_matmul
from tvmext.lowering.tuning_records import TuningRecords, workload_key


def candidate_tiles(limit: int) -> list[MatmulTiles]:
    """The search space, most promising first (default first), at most ``limit``."""
    space = [MatmulTiles()] + [
        MatmulTiles(mr, vectors, kc)
        for mr, vectors, kc in itertools.product((4, 6, 8, 12, 16, 2), (1, 2, 3, 4), (1, 2, 4))
        if (mr, vectors, kc) != dataclasses.astuple(MatmulTiles())
    ]
    return space[: max(1, limit)]


def _random_args(func: tirx.PrimFunc, device: Any) -> list[Any] | None:
    rng = np.random.default_rng(0)
    args = []
    for buffer in func.params:
        shape = getattr(buffer, "shape", None)
        if shape is None or not all(isinstance(d, tirx.IntImm) for d in shape):
            return None  # scalar parameters or symbolic shapes: nothing fixed to time
        array = rng.standard_normal([int(d) for d in shape]).astype(buffer.dtype)
        args.append(tvm.runtime.tensor(array, device))
    return args


def _time(func: tirx.PrimFunc, target: tvm.target.Target, args: list[Any]) -> float:
    mod = tvm.IRModule({"main": func.with_attr("global_symbol", "main")})
    library = tvm.compile(mod, target=target)
    timer = library.mod.time_evaluator("main", tvm.cpu(), number=3, repeat=3, min_repeat_ms=20)
    return float(np.median(timer(*args).results))


def _schedule(
    func: tirx.PrimFunc, target: tvm.target.Target, tiles: MatmulTiles
) -> tirx.PrimFunc | None:
    sch = s_tir.Schedule(func)
    if not try_matmul(sch, target, tiles):
        return None
    return sch.mod["main"]


def tunable_funcs(fused: tvm.IRModule, target: tvm.target.Target) -> list[tirx.PrimFunc]:
    """The PrimFuncs of ``fused`` (a module after the pipeline's ``fuse`` stage) that
    tuning can improve."""
    return [
        f
        for _, f in fused.functions_items()
        if isinstance(f, tirx.PrimFunc) and _schedule(f, target, MatmulTiles()) is not None
    ]


def tune_module(
    fused: tvm.IRModule,
    target: tvm.target.Target,
    trials: int = 32,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
) -> TuningRecords:
    """Time ``trials`` tile shapes for every matmul-like PrimFunc of ``fused`` (a module
    after the pipeline's ``fuse`` stage)."""
    records = TuningRecords(str(target))
    # Workloads with fixed shapes only: symbolic ones have nothing to time.
    workloads = [
        (workload_key(f), f, args)
        for f in tunable_funcs(fused, target)
        if (args := _random_args(f, tvm.cpu())) is not None
    ]
    tasks = [(w, tiles) for w in workloads for tiles in candidate_tiles(trials)]
    steps: Iterable[Any] = progress(tasks, len(tasks)) if progress else tasks
    best: dict[str, tuple[float, MatmulTiles, float]] = {}
    for (key, func, args), tiles in steps:
        scheduled = _schedule(func, target, tiles)
        if scheduled is None:
            continue
        seconds = _time(scheduled, target, args)
        default = best[key][2] if key in best else seconds  # the default is timed first
        if key not in best or seconds < best[key][0]:
            best[key] = (seconds, tiles, default)
    for key, (seconds, tiles, default) in best.items():
        if seconds < default:
            records.entries[key] = {
                "tiles": dataclasses.asdict(tiles),
                "seconds": seconds,
                "default_seconds": default,
            }
    return records

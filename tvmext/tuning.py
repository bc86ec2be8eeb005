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
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tvm
import tvm_ffi
from tvm import s_tir, tirx

from .atomic_file import atomic_output
from .cpu_matmul_schedule import MatmulTiles
from .default_schedule import try_matmul
from .errors import CompileError
from .lowering import stages as lowering_stages

FORMAT_VERSION = 1


def workload_key(func: tirx.PrimFunc) -> str:
    """A stable key for an unscheduled PrimFunc (structural hash, hex)."""
    plain = func.without_attr("global_symbol") if func.attrs is not None else func
    return f"{tvm_ffi.structural_hash(plain) & 0xFFFFFFFFFFFFFFFF:016x}"


@dataclass
class TuningRecords:
    """Best tile shapes per workload, for one target."""

    target: str
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def lookup(self, func: tirx.PrimFunc) -> MatmulTiles | None:
        """The tuned tiles for ``func``, if it was tuned."""
        entry = self.entries.get(workload_key(func))
        return MatmulTiles(**entry["tiles"]) if entry else None

    def save(self, path: str) -> None:
        """Write the records as JSON, atomically."""
        data = {"format": FORMAT_VERSION, "target": self.target, "workloads": self.entries}
        with atomic_output(path) as tmp, open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)

    @classmethod
    def load(cls, path: str) -> TuningRecords:
        """Read records written by :meth:`save`; errors name the file."""
        try:
            with open(path) as f:
                data = json.load(f)
        except OSError as err:
            raise CompileError(f"tuning records {path!r} cannot be read: {err}") from err
        except json.JSONDecodeError as err:
            raise CompileError(f"tuning records {path!r} are not JSON: {err}") from err
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            raise CompileError(
                f"tuning records {path!r} are not tvmext records (format {FORMAT_VERSION})"
            )
        return cls(str(data["target"]), dict(data["workloads"]))


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


def tunable_funcs(mod: tvm.IRModule, target: tvm.target.Target) -> list[tirx.PrimFunc]:
    """The PrimFuncs of ``mod`` (after legalization and fusion) that tuning can improve."""
    lowered = mod
    with target:
        for stage in lowering_stages(target)[:3]:  # dispatch, legalize, fuse
            lowered = tvm.transform.Sequential(list(stage.passes))(lowered)
    return [
        f
        for _, f in lowered.functions_items()
        if isinstance(f, tirx.PrimFunc) and _schedule(f, target, MatmulTiles()) is not None
    ]


def tune_module(
    mod: tvm.IRModule,
    target: tvm.target.Target,
    trials: int = 32,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
) -> TuningRecords:
    """Time ``trials`` tile shapes for every matmul-like PrimFunc of ``mod``."""
    records = TuningRecords(str(target))
    # Workloads with fixed shapes only: symbolic ones have nothing to time.
    workloads = [
        (workload_key(f), f, args)
        for f in tunable_funcs(mod, target)
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

"""Tuning tasks: the PrimFuncs of a fused model that get tvmext's default schedule.

Functions of ops with their own schedule, functions already scheduled, and external
targets' partitions (Relax functions, not PrimFuncs) are left out; PrimFuncs with
symbolic shapes are too, since a candidate needs fixed shapes to be timed.
Structurally equal functions are one task, weighted by how often they are called.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import relax, tirx
from tvm.s_tir.analysis import estimate_tir_flops

from tvmext.lowering.pipeline import takes_default_schedule
from tvmext.lowering.tuning_records import workload_module


@dataclass(frozen=True)
class TuningTask:
    """One workload to tune: its name, its module, how often the model calls it, and
    its floating-point operations per call."""

    name: str
    mod: tvm.IRModule
    weight: int
    flops: float


def _static(func: tirx.PrimFunc) -> bool:
    """Whether every parameter is a buffer of constant shape (scalars are symbolic)."""
    shapes = [getattr(param, "shape", None) for param in func.params]
    return all(
        shape is not None and all(isinstance(d, tirx.IntImm) for d in shape) for shape in shapes
    )


def _call_counts(mod: tvm.IRModule) -> Counter[str]:
    """How often each function of ``mod`` is named by a call in its Relax functions."""
    counts: Counter[str] = Counter()

    @relax.expr_functor.visitor
    class Calls(relax.PyExprVisitor):
        def visit_call_(self, call: relax.Call) -> None:
            counts.update(a.name_hint for a in call.args if isinstance(a, relax.GlobalVar))
            for arg in call.args:
                self.visit_expr(arg)

    for _, func in mod.functions_items():
        if isinstance(func, relax.Function):
            Calls().visit_expr(func)
    return counts


def tuning_tasks(fused: tvm.IRModule, kind: str) -> list[TuningTask]:
    """The tasks of ``fused`` (a module after the pipeline's ``fuse`` stage) for
    targets of ``kind``, most floating-point work (FLOPs x calls) first."""
    calls = _call_counts(fused)
    found: dict[int, TuningTask] = {}
    for gv, func in fused.functions_items():
        if not isinstance(func, tirx.PrimFunc) or not takes_default_schedule(func, kind):
            continue
        if not _static(func):
            continue
        mod = workload_module(func)
        key = tvm_ffi.structural_hash(mod)
        task = found.get(key)
        weight = max(1, calls[gv.name_hint]) + (task.weight if task else 0)
        flops = task.flops if task else float(estimate_tir_flops(mod))
        found[key] = TuningTask(task.name if task else gv.name_hint, mod, weight, flops)
    # Tuning visits tasks in turn: the ones with the most work in the model come first,
    # so that a small budget goes to convolutions and matmuls, not reshapes.
    return sorted(found.values(), key=lambda t: -t.flops * t.weight)

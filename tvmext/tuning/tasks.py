"""Tuning tasks: the PrimFuncs of a fused model that get tvmext's default schedule.

Functions of ops with their own schedule, functions already scheduled, and external
targets' partitions (Relax functions, not PrimFuncs) are left out; PrimFuncs with
symbolic shapes are too, since a candidate needs fixed shapes to be timed.
Structurally equal functions are one task, weighted by how often they are called.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import relax, tirx
from tvm.s_tir.analysis import estimate_tir_flops

from tvmext.lowering.pipeline import takes_default_schedule
from tvmext.lowering.schedules.default import default_schedule
from tvmext.lowering.tuning_records import workload_module


@dataclass(frozen=True)
class TuningTask:
    """One workload to tune: its name, its module, how often the model calls it, its
    floating-point operations per call, and the module with tvmext's default schedule
    (what a record has to beat)."""

    name: str
    mod: tvm.IRModule
    weight: int
    flops: float
    baseline: tvm.IRModule


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


def tuning_tasks(fused: tvm.IRModule, target: tvm.target.Target) -> list[TuningTask]:
    """The tasks of ``fused`` (a module after the pipeline's ``fuse`` stage) for
    ``target``, most floating-point work (FLOPs x calls) first."""
    kind = str(target.kind.name)
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
        if task is not None:
            found[key] = dataclasses.replace(task, weight=weight)
            continue
        baseline = workload_module(default_schedule(func, target))
        found[key] = TuningTask(gv.name_hint, mod, weight, estimate_tir_flops(mod), baseline)
    # Tuning visits tasks in turn: the ones with the most work in the model come first,
    # so that a small budget goes to convolutions and matmuls, not reshapes.
    return sorted(found.values(), key=lambda t: -t.flops * t.weight)

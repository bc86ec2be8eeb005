"""The lowering stages: Relax after partitioning -> a VM executable, with schedules for
every PrimFunc.

They follow TVM's CPU/CUDA default pipelines and add two things: PrimFuncs of tvmext
ops that have a schedule for the target stay unfused (opaque), so the user's schedule
sees the function it was written for; and after fusion every PrimFunc gets a
schedule — the op's own, else dlight or tvmext's default rule (never naive loops).
The compiler (:mod:`tvmext.compiler`) appends these stages to its own list; ops run
eagerly and weight conversions use :func:`build`, which runs the same stages.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tvm
from tvm import relax, s_tir, tirx

from tvmext.errors import CompileError
from tvmext.lowering.schedules.default import default_schedule
from tvmext.lowering.schedules.helpers import serial_loops
from tvmext.lowering.serial_small_kernels import runs_serially
from tvmext.lowering.tuning_records import TuningRecords
from tvmext.lowering.verification import ScheduledFunc, verify_schedules
from tvmext.opdef.declaration import CustomOp, find_op
from tvmext.opdef.native_layer import native_libraries
from tvmext.opdef.primfunc_origin import func_origin
from tvmext.runtime.cpu_threads import configure_thread_pool

# TVM's op pattern kind for functions FuseOps must leave alone.
_OPAQUE = 8
_SCHEDULED = "tirx.is_scheduled"
# The first lowering stage: the compiler adds the signature function right before it.
FIRST_STAGE = "dispatch"


@dataclass(frozen=True)
class Stage:
    """A named step of the pipeline: a list of passes run in order."""

    name: str
    passes: tuple[tvm.transform.Pass, ...]


def _scheduled_op(func: tirx.PrimFunc, kind: str) -> tuple[CustomOp | None, dict[str, Any]]:
    name, attrs = func_origin(func)
    custom = None if name is None else find_op(name)
    if custom is None or kind not in custom.schedules:
        return None, {}
    return custom, attrs


def keep_scheduled_ops_opaque(kind: str) -> tvm.transform.Pass:
    """Mark PrimFuncs of ops with a ``kind`` schedule opaque, so FuseOps skips them."""

    @tvm.transform.module_pass(opt_level=0, name="tvmext.KeepScheduledOpsOpaque")
    def run(mod: tvm.IRModule, _ctx: Any) -> tvm.IRModule:
        for gv, func in list(mod.functions_items()):
            if isinstance(func, tirx.PrimFunc) and _scheduled_op(func, kind)[0] is not None:
                mod[gv] = func.with_attr("op_pattern", _OPAQUE)
        return mod

    return run


def apply_op_schedule(
    custom: CustomOp, target: tvm.target.Target, func: tirx.PrimFunc, attrs: dict[str, Any]
) -> tirx.PrimFunc:
    """Run ``custom``'s schedule for ``target`` on ``func``; errors name the op and target.

    The schedule function gets the op's attributes it names (all of them if it takes
    ``**kwargs``) and ``target`` if it has such a parameter.
    """
    kind = str(target.kind.name)
    fn = custom.schedules.get(kind)
    params = inspect.signature(fn).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in attrs.items() if takes_all or k in params}
    if "target" in params:
        kwargs["target"] = target
    sch = s_tir.Schedule(func)
    try:
        fn(sch, **kwargs)
    except Exception as err:
        raise CompileError(
            f"op {custom.name!r}: its {kind!r} schedule failed: {type(err).__name__}: {err}"
        ) from err
    return sch.mod["main"]


def takes_default_schedule(func: tirx.PrimFunc, kind: str) -> bool:
    """Whether the schedule stage gives ``func`` the default schedule (or its tuning
    record) for targets of ``kind``: not scheduled already, not an op with its own."""
    if func.attrs is not None and _SCHEDULED in func.attrs:
        return False
    return _scheduled_op(func, kind)[0] is None


def schedule_prim_funcs(
    target: tvm.target.Target, records: TuningRecords | None = None, *, verify: bool = False
) -> tvm.transform.Pass:
    """Give every unscheduled PrimFunc the op's schedule, else its MetaSchedule record
    from ``records``, else the default one. With ``verify``,
    each scheduled function is run against its unscheduled self
    (:mod:`tvmext.lowering.verification`)."""
    kind = str(target.kind.name)

    @tvm.transform.module_pass(opt_level=0, name="tvmext.SchedulePrimFuncs")
    def run(mod: tvm.IRModule, _ctx: Any) -> tvm.IRModule:
        changed = []
        for gv, func in list(mod.functions_items()):
            if not isinstance(func, tirx.PrimFunc):
                continue
            if func.attrs is not None and _SCHEDULED in func.attrs:
                continue
            custom, attrs = _scheduled_op(func, kind)
            if custom is not None:
                new, source = apply_op_schedule(custom, target, func, attrs), "the op's"
            else:
                tuned = records.lookup(func, target) if records is not None else None
                if tuned is not None:
                    new = tuned
                elif runs_serially(mod, func):
                    with serial_loops():
                        new = default_schedule(func, target)
                else:
                    new = default_schedule(func, target)
                source = "a tuned" if tuned is not None else "the default"
            mod[gv] = new.with_attr(_SCHEDULED, True)
            if verify and not new.same_as(func):
                changed.append(ScheduledFunc(gv.name_hint, func, new, source))
        if verify:
            verify_schedules(changed, target)
        return mod

    return run


def stages(
    target: tvm.target.Target,
    records: TuningRecords | None = None,
    *,
    schedule: bool = True,
    verify_schedules: bool = False,
) -> list[Stage]:
    """The pipeline for ``target`` as named stages (``--dump-ir`` writes one per stage).

    ``schedule=False`` is TVM's plain lowering: fusion as usual, no op schedules, no
    default schedules (naive loops), the baseline a training mode is compared against.
    ``verify_schedules`` checks every scheduled PrimFunc against its naive loops.
    """
    kind = str(target.kind.name)
    t = relax.transform
    finalize = [t.StaticPlanBlockMemory()]
    if kind == "cuda":
        finalize.append(t.RewriteCUDAGraph())
    finalize += [
        t.LowerAllocTensor(),
        t.KillAfterLastUse(),
        t.LowerRuntimeBuiltin(),
        t.ComputePrimValue(),
        t.VMShapeLower(),
        t.AttachGlobalSymbol(),
    ]
    opaque = (keep_scheduled_ops_opaque(kind),) if schedule else ()
    scheduling = (
        [Stage("schedule", (schedule_prim_funcs(target, records, verify=verify_schedules),))]
        if schedule
        else []
    )
    return [
        Stage(FIRST_STAGE, (relax.backend.DispatchSampling(), relax.backend.DispatchSortScan())),
        Stage("legalize", (t.LegalizeOps(), t.AnnotateTIROpPattern())),
        Stage("fuse", (*opaque, t.FoldConstant(), t.FuseOps(), t.FuseTIR())),
        *scheduling,
        Stage(
            "lower_dataflow",
            (
                t.RewriteDataflowReshape(),
                t.ToNonDataflow(),
                t.RemovePurityChecking(),
                t.CallTIRRewrite(),
            ),
        ),
        Stage("finalize", tuple(finalize)),
    ]


def run_stages(
    mod: tvm.IRModule,
    target: tvm.target.Target,
    stage_list: list[Stage],
    after_stage: Callable[[str, tvm.IRModule], None] | None = None,
) -> tvm.IRModule:
    """Run ``stage_list`` on ``mod`` for ``target``; ``after_stage(name, mod)`` sees each
    result."""
    with target:
        for stage in stage_list:
            mod = tvm.transform.Sequential(list(stage.passes))(mod)
            if after_stage is not None:
                after_stage(stage.name, mod)
    return mod


def codegen(mod: tvm.IRModule, target: tvm.target.Target) -> Any:
    """A VM executable from a module that went through every stage of :func:`stages`.

    Native layers used by ``mod`` are attached as static libraries, so that
    ``export_library`` links their objects into the artifact.
    """
    configure_thread_pool()  # before TVM's thread pool starts (tvmext.runtime.cpu_threads)
    lowered = tvm.transform.Sequential([], name="tvmext.AlreadyLowered")
    executable = tvm.compile(mod, target=target, relax_pipeline=lowered)
    for obj, symbols in native_libraries(mod):
        executable.mod.import_module(tvm.runtime.load_static_library(obj, symbols))
    return executable


def check_verifiable(target: tvm.target.Target) -> None:
    """Schedule verification runs PrimFuncs on the host CPU: an error for other targets."""
    if target.kind.name != "llvm":
        raise CompileError(
            f"verify_schedules runs PrimFuncs on the host CPU: it supports llvm targets, "
            f"got {target.kind.name!r}"
        )


def build(
    mod: tvm.IRModule,
    target: tvm.target.Target,
    *,
    after_stage: Callable[[str, tvm.IRModule], None] | None = None,
    records: TuningRecords | None = None,
    schedule: bool = True,
    verify_schedules: bool = False,
) -> Any:
    """Compile a Relax module with the lowering stages into a VM executable (see
    :func:`stages` for the options)."""
    if verify_schedules:
        check_verifiable(target)
    stage_list = stages(target, records, schedule=schedule, verify_schedules=verify_schedules)
    return codegen(run_stages(mod, target, stage_list, after_stage), target)

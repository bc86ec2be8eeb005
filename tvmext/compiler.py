"""``tvmext.compile``: model in, :class:`tvmext.Module` out, through one list of named
stages.

:func:`pipeline` is the list every caller runs (``compile``, ``tune``, training's
:class:`~tvmext.training.CompiledStep`): ``import`` (ONNX or Relax) -> ``lift_params``
(with ``keep_params_in_input``: computations on weights move into
``main_transform_params``, run once when weights are bound) -> ``extra_passes`` (a
caller's own, e.g. a training mode's) -> one stage per pass phase (``prepare``,
``optimize``, ``layout``: the registered passes for the target) -> ``partition`` (each
external target of a composite target string) -> the lowering stages of
:mod:`tvmext.lowering.pipeline` (``dispatch`` ... ``finalize``). ``codegen`` then makes
the executable. Stages and passes marked inference-only are skipped for training
steps; ``dump_ir`` writes the module after every stage.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import tvm
from tvm import relax, tirx

import tvmext.passes  # noqa: F401  (registers the target-independent passes)
from tvmext.atomic_file import check_folder
from tvmext.compile_options import CompileOptions, bounds_from, shapes_from
from tvmext.dims import dims
from tvmext.errors import CompileError, ModelError, NativeBuildError, ShapeError, TvmextError
from tvmext.lowering import pipeline as lowering
from tvmext.lowering.tuning_records import TuningRecords
from tvmext.onnx import importer as onnx_import
from tvmext.onnx.packed_types import boundary_dtypes
from tvmext.onnx.text import onnx_text
from tvmext.opdef.native_build import shared_library_link_options
from tvmext.opdef.native_layer import native_shared_libraries
from tvmext.pass_registry import PHASES, passes_for
from tvmext.plugins import load_plugins
from tvmext.runtime.accuracy import AccuracyReport, compare
from tvmext.runtime.module import (
    SIGNATURE_FUNCTION,
    InputSpec,
    Module,
    random_inputs,
    read_arrays,
    signature_function,
)
from tvmext.runtime.output_tree import OutputTree
from tvmext.runtime.tvm_log import filtered_tvm_log
from tvmext.target.external import PRECISION_ATTR, Partitioned, get_target, link_options
from tvmext.target.host_default import default_target
from tvmext.target.report import everything_on_tvm
from tvmext.target.spec import TargetSpec, parse_target
from tvmext.tuning.rpc import RpcTracker, remote_cpu, require_servers
from tvmext.tuning.session import (
    CANDIDATE_TIMEOUT_S,
    TuningProgress,
    TuningResult,
    tune_tasks,
)
from tvmext.tuning.tasks import tuning_tasks


@dataclass
class CompileState:
    """What flows through the stages: the model, then the IRModule and its inputs."""

    model: Any
    spec: TargetSpec
    options: CompileOptions
    mod: tvm.IRModule | None = None
    inputs: list[InputSpec] | None = None
    params: list[InputSpec] = dataclasses.field(default_factory=list)
    output_dtypes: list[str] = dataclasses.field(default_factory=list)
    param_values: list[np.ndarray] | None = None
    partitions: list[Partitioned] = dataclasses.field(default_factory=list)
    output_tree: OutputTree | None = None
    inference: bool = True
    extra_passes: tuple[tvm.transform.Pass, ...] = ()
    # Writes the IR after a stage (``dump_ir``); set by run_pipeline.
    dump: Callable[[str, tvm.IRModule | onnx.ModelProto], None] | None = None


@dataclass(frozen=True)
class Stage:
    """A named step of the pipeline; ``inference_only`` stages skip training steps."""

    name: str
    run: Callable[[CompileState], None]
    inference_only: bool = False


def _relax_inputs(mod: tvm.IRModule, names: list[str] | None = None) -> list[InputSpec]:
    """Specs of the parameters of ``main``, named by ``names`` as far as it goes."""
    if "main" not in [gv.name_hint for gv in mod.get_global_vars()]:
        raise ModelError("the Relax module has no 'main' function to compile")
    specs = []
    for i, param in enumerate(mod["main"].params):
        ty = param.ty
        if not isinstance(ty, relax.TensorType):
            raise ModelError(f"input {param.name!r} of 'main' must be a tensor, got {ty}")
        name = names[i] if names and i < len(names) else param.name
        shape = tuple(dims(ty.shape.values)) if isinstance(ty.shape, relax.ShapeExpr) else None
        dtype = "" if str(ty.dtype) in ("None", "void", "") else str(ty.dtype)
        specs.append(InputSpec(name, shape, dtype))
    return specs


def _model_source(model: Any) -> str:
    """How errors about the whole model name it: its file, or what it is."""
    if isinstance(model, str | os.PathLike):
        return f"model file {os.fspath(model)!r}"
    if isinstance(model, onnx.ModelProto):
        return "the ONNX model"
    if _is_torch_model(model):
        return f"the PyTorch {type(model).__name__}"
    return "the model"


def _is_torch_model(model: Any) -> bool:
    """Whether ``model`` comes from PyTorch (checked without importing it)."""
    if isinstance(model, str | os.PathLike):
        return os.fspath(model).endswith(".pt2")
    torch = sys.modules.get("torch")  # a PyTorch object means PyTorch is imported
    return torch is not None and isinstance(model, torch.nn.Module | torch.export.ExportedProgram)


def _import_torch(state: CompileState) -> None:
    options, source = state.options, _model_source(state.model)
    if options.input_shapes or options.input_dtypes:
        raise CompileError(
            "input_shapes and input_dtypes describe ONNX inputs; a PyTorch model's come from "
            "example_inputs and dynamic_shapes (torch.export.Dim)"
        )
    try:
        from tvmext.torch import program as torch_program
    except ImportError as err:
        raise CompileError(
            f"compiling {source} needs PyTorch: pip install 'tvmext[torch]' ({err})"
        ) from err
    exported = torch_program.exported_program(
        state.model, options.example_inputs, options.dynamic_shapes, source
    )
    imported = torch_program.import_program(
        exported,
        keep_params_in_input=options.keep_params_in_input,
        dynamic_shapes=options.dynamic_shapes,
        source=source,
    )
    bounds = {**imported.shape_bounds, **options.shape_bounds}
    state.options = dataclasses.replace(options, shape_bounds=bounds)
    state.mod = _with_shape_bounds(imported.mod, bounds)
    state.output_tree = imported.output_tree
    _split_params(state, imported.input_names)


def _import(state: CompileState) -> None:
    model, options = state.model, state.options
    if _is_torch_model(model):
        _import_torch(state)
        return
    if options.example_inputs is not None or options.dynamic_shapes is not None:
        raise CompileError(
            "example_inputs and dynamic_shapes export a PyTorch model; "
            f"{_model_source(model)} is not one"
        )
    if isinstance(model, tvm.IRModule):
        state.mod = _with_shape_bounds(model, options.shape_bounds)
        if state.inference:  # a training step has no single 'main' to describe
            _split_params(state, None)
        return
    if not isinstance(model, str | os.PathLike | onnx.ModelProto):
        raise ModelError(
            f"model must be an ONNX path, an onnx.ModelProto, a Relax IRModule or a PyTorch "
            f"model (nn.Module, ExportedProgram, .pt2 file), got {type(model).__name__}"
        )
    proto = onnx_import.load_model(model)
    source = _model_source(model)
    dump = state.dump
    state.mod = onnx_import.from_onnx(
        proto,
        options.input_shapes,
        options.input_dtypes,
        options.keep_params_in_input,
        source,
        on_rewrite=None if dump is None else lambda name, m: dump(f"import.{name}", m),
        # Where a target's int8 kernels are inexact, a quantized model's products stay
        # float (its definition) for the target's float kernels, not TVM's int32 loops.
        integer_products=all(get_target(n).int8_refusal() is None for n in state.spec.externals),
    )
    state.mod = _with_shape_bounds(state.mod, options.shape_bounds)
    _split_params(state, [i.name for i in onnx_import.graph_inputs(proto)])
    # Sub-byte inputs and outputs are carried in byte types; callers use the real ones.
    packed_inputs, state.output_dtypes = boundary_dtypes(proto)
    state.inputs = [
        dataclasses.replace(spec, dtype=packed_inputs.get(spec.name, spec.dtype))
        for spec in state.inputs or []
    ]


def _with_shape_bounds(mod: tvm.IRModule, bounds: Mapping[str, tuple[int, int]]) -> tvm.IRModule:
    """``main`` with ``bounds`` on its symbolic dims as Relax's ``tir_var_lower_bound`` /
    ``tir_var_upper_bound`` (memory is then planned once for the largest shapes)."""
    if not bounds:
        return mod
    main = mod["main"]
    names = sorted(
        {
            str(d)
            for p in main.params
            if isinstance(p.ty, relax.TensorType) and isinstance(p.ty.shape, relax.ShapeExpr)
            for d in p.ty.shape.values
            if isinstance(d, tirx.Var)
        }
    )
    unknown = [name for name in bounds if name not in names]
    if unknown:
        raise CompileError(
            f"shape bound(s) {', '.join(unknown)} name no symbolic dimension of the inputs; "
            f"they have {', '.join(names) if names else 'none'}"
        )
    main = main.with_attr("tir_var_lower_bound", {n: low for n, (low, _) in bounds.items()})
    main = main.with_attr("tir_var_upper_bound", {n: high for n, (_, high) in bounds.items()})
    mod = mod.clone()  # the caller's module stays as it was
    mod["main"] = main
    return mod


def _split_params(state: CompileState, names: list[str] | None) -> None:
    """Runtime inputs, and with ``keep_params_in_input`` the weights after them (the
    ``num_input`` attribute of ``main`` counts the inputs). The weights' values, when
    the model has them, leave the module: they are bound to the compiled module."""
    assert state.mod is not None
    state.inputs = _relax_inputs(state.mod, names)
    main = state.mod["main"]
    num_input = None if main.attrs is None else main.attrs.get("num_input")
    if not state.options.keep_params_in_input or num_input is None:
        return
    count = int(num_input)
    state.inputs, state.params = state.inputs[:count], state.inputs[count:]
    values = main.attrs.get("params")
    if values is not None:
        state.param_values = [v.numpy() for v in values]
        state.mod["main"] = main.without_attr("params")


def _lift_params(state: CompileState) -> None:
    assert state.mod is not None
    if state.options.keep_params_in_input and state.params:
        state.mod = relax.transform.LiftTransformParams()(state.mod)


def _extra_passes(state: CompileState) -> None:
    assert state.mod is not None
    if state.extra_passes:
        state.mod = tvm.transform.Sequential(list(state.extra_passes))(state.mod)


def _phase(phase: str) -> Callable[[CompileState], None]:
    def run(state: CompileState) -> None:
        assert state.mod is not None
        for name in state.spec.externals:
            get_target(name)  # an unknown name fails before any work
        targets = (state.spec.kind, *state.spec.externals)
        entries = passes_for(phase, *targets)
        passes = [e.factory() for e in entries if state.inference or not e.inference_only]
        with tvm.transform.PassContext(opt_level=state.options.opt_level):
            state.mod = tvm.transform.Sequential(passes)(state.mod)

    return run


def _partition(state: CompileState) -> None:
    assert state.mod is not None
    if state.options.precision != "fp32":
        state.mod = state.mod.with_attr(PRECISION_ATTR, state.options.precision)
    for name in state.spec.externals:
        try:
            partitioned = get_target(name).partition(state.mod, state.spec.host)
        except NativeBuildError as err:
            if not state.options.fallback_to_tvm:
                raise
            reason = f"{name} code failed to compile; fell back to TVM: {str(err).splitlines()[0]}"
            partitioned = Partitioned(state.mod, everything_on_tvm(state.mod, name, reason))
        state.mod = partitioned.mod
        state.partitions.append(partitioned)


def _lowering(stage: lowering.Stage) -> Callable[[CompileState], None]:
    def run(state: CompileState) -> None:
        assert state.mod is not None
        if stage.name == lowering.FIRST_STAGE and state.inputs is not None:
            signature = signature_function(
                state.inputs,
                state.params,
                state.output_dtypes,
                state.options.shape_bounds,
                state.output_tree,
            )
            state.mod[relax.GlobalVar(SIGNATURE_FUNCTION)] = signature
        try:
            with tvm.transform.PassContext(opt_level=state.options.opt_level):
                state.mod = lowering.run_stages(state.mod, state.spec.host, [stage])
        except TvmextError:
            raise
        except Exception as err:
            raise CompileError(
                f"compiling {_model_source(state.model)} for {state.spec.kind} failed in stage "
                f"{stage.name!r}: {type(err).__name__}: {err}"
            ) from err

    return run


def pipeline(spec: TargetSpec, options: CompileOptions) -> list[Stage]:
    """The stages that compile a model for ``spec`` with ``options``, in order."""
    if options.verify_schedules:
        lowering.check_verifiable(spec.host)
    _check_precision(spec, options.precision)
    records = None
    if options.tuning_records:
        records = TuningRecords.load(options.tuning_records)
        records.check_target(spec.host, options.tuning_records)
    lowering_stages = lowering.stages(
        spec.host, records, schedule=options.schedule, verify_schedules=options.verify_schedules
    )
    return [
        Stage("import", _import),
        Stage("lift_params", _lift_params, inference_only=True),
        Stage("extra_passes", _extra_passes),
        *(Stage(phase, _phase(phase)) for phase in PHASES),
        Stage("partition", _partition),
        *(Stage(s.name, _lowering(s)) for s in lowering_stages),
    ]


def _check_precision(spec: TargetSpec, precision: str) -> None:
    """A CompileError unless every external target of ``spec`` computes in ``precision``
    on this machine (TVM's own kernels stay fp32, so a reduced precision needs one)."""
    if precision == "fp32":
        return
    if not spec.externals:
        raise CompileError(
            f"precision {precision!r} is computed by an external target's kernels, and "
            f"target {spec.kind!r} has none (TVM's kernels compute in fp32): use e.g. "
            f'target "dnnl, llvm"'
        )
    for name in spec.externals:
        reason = get_target(name).precision_refusal(precision)
        if reason is not None:
            raise CompileError(f"precision {precision!r} on target {name!r}: {reason}")


def run_pipeline(state: CompileState, through: str | None = None) -> CompileState:
    """Run :func:`pipeline` on ``state`` up to and including stage ``through`` (all of
    it by default), writing the IR after each stage when ``dump_ir`` is set."""
    stage_list = pipeline(state.spec, state.options)
    names = [s.name for s in stage_list]
    if through is not None and through not in names:
        raise CompileError(f"unknown pipeline stage {through!r}; stages: {', '.join(names)}")
    state.dump = _dumper(state.options.dump_ir)
    for stage in stage_list:
        if state.inference or not stage.inference_only:
            stage.run(state)
            if state.dump is not None and state.mod is not None:
                state.dump(stage.name, state.mod)
        if stage.name == through:
            break
    return state


def codegen(state: CompileState) -> Any:
    """The VM executable of a state that went through the whole pipeline."""
    assert state.mod is not None
    try:
        return lowering.codegen(state.mod, state.spec.host)
    except TvmextError:
        raise
    except Exception as err:
        raise CompileError(
            f"compiling {_model_source(state.model)} for {state.spec.kind} failed in code "
            f"generation: {type(err).__name__}: {err}"
        ) from err


def artifact_link_options(state: CompileState) -> tuple[str, ...]:
    """What an artifact of a compiled ``state`` needs linked: the external targets'
    libraries, and the prebuilt shared libraries of the native ops it uses."""
    assert state.mod is not None
    shared = shared_library_link_options(native_shared_libraries(state.mod))
    return (*link_options(state.partitions), *shared)


def _dumper(folder: str | None) -> Callable[[str, tvm.IRModule | onnx.ModelProto], None] | None:
    """Writes each stage's module into ``folder`` as ``NN_<stage>.py`` (TVMScript), or
    ``NN_<stage>.onnx.txt`` for the importer's ONNX rewrites, numbered in order."""
    if folder is None:
        return None
    os.makedirs(folder, exist_ok=True)
    counter = iter(range(1000))

    def dump(name: str, mod: tvm.IRModule | onnx.ModelProto) -> None:
        if isinstance(mod, onnx.ModelProto):
            path, text = f"{name}.onnx.txt", onnx_text(mod)
        else:
            path, text = f"{name}.py", mod.script(show_meta=False)
        with open(os.path.join(folder, f"{next(counter):02d}_{path}"), "w") as f:
            f.write(text)

    return dump


def compile_state(
    model: Any,
    target: Any,
    *,
    plugins: Iterable[str] = (),
    options: CompileOptions | None = None,
    option_values: dict[str, Any] | None = None,
    inference: bool = True,
    extra_passes: Iterable[tvm.transform.Pass] = (),
) -> CompileState:
    """The state :func:`run_pipeline` starts from: plugins loaded, target parsed, options
    checked (given as ``options`` or as keyword ``option_values``, not both)."""
    load_plugins(plugins)
    option_values = dict(option_values or {})
    if options is None:
        if "input_shapes" in option_values:
            option_values["input_shapes"] = shapes_from(option_values["input_shapes"])
        if "shape_bounds" in option_values:
            option_values["shape_bounds"] = bounds_from(option_values["shape_bounds"])
        known = {f.name for f in dataclasses.fields(CompileOptions)}
        unknown = sorted(set(option_values) - known)
        if unknown:
            raise CompileError(
                f"unknown compile option(s) {', '.join(unknown)}; options: "
                f"{', '.join(sorted(known))}"
            )
        options = CompileOptions(**option_values)
    elif option_values:
        raise CompileError("give options either as options= or as keywords, not both")
    return CompileState(
        model,
        parse_target(target),
        options,
        inference=inference,
        extra_passes=tuple(extra_passes),
    )


def resolve_default_target(
    target: Any, options: CompileOptions | None, option_values: dict[str, Any]
) -> Any:
    """``target``, or when it is None the host's fastest (:mod:`tvmext.target.host_default`;
    ``"llvm"`` where tuning records are given), announced on stderr; a default with an
    external target falls back to TVM where its generated code fails to build, unless
    the caller chose ``fallback_to_tvm``."""
    if target is not None:
        return target
    records = options.tuning_records if options is not None else option_values.get("tuning_records")
    chosen = default_target(tuned=bool(records))
    print(chosen.announcement(), file=sys.stderr, flush=True)
    if chosen.target != "llvm" and options is None:
        option_values.setdefault("fallback_to_tvm", True)
    return chosen.target


def compile(
    model: Any,
    target: Any = None,
    *,
    plugins: Iterable[str] = (),
    options: CompileOptions | None = None,
    **option_values: Any,
) -> Module:
    """Compile ``model`` (ONNX path or ModelProto, or Relax IRModule) for ``target``.

    ``target`` is a tvmc-style string (``"llvm"``, ``"llvm -mcpu=znver4"``,
    ``"dnnl, llvm"``), a dict or a ``tvm.target.Target``; the host CPU's features are
    used unless ``-mcpu`` says otherwise. Without one, the host's fastest correct
    configuration (``"dnnl, llvm"`` on x86-64 with oneDNN, else ``"llvm"``), said on
    stderr. With external targets, the module's
    ``reports`` say where each op went and why. ``plugins`` are module names or ``.py`` files
    to import first. Options are :class:`CompileOptions` fields, given as ``options=``
    or as keywords (``input_shapes`` also as a tvmc string ``"x:[1,3,224,224]"``).
    """
    target = resolve_default_target(target, options, option_values)
    state = compile_state(
        model, target, plugins=plugins, options=options, option_values=option_values
    )
    with filtered_tvm_log():
        module = _module(state)
        if state.options.precision != "fp32":
            fp32 = compile_state(model, target, options=_fp32_reference(state.options))
            module.accuracy = _accuracy(module, _module(fp32), state.options)
            print(module.accuracy, file=sys.stderr, flush=True)
    if module.accuracy is not None:
        module.accuracy.check(state.options.max_rel_error)
    return module


def _fp32_reference(options: CompileOptions) -> CompileOptions:
    """The options of the fp32 artifact a reduced-precision one is measured against."""
    return dataclasses.replace(
        options, precision="fp32", calibration_inputs=None, max_rel_error=None, dump_ir=None
    )


def _accuracy(module: Module, reference: Module, options: CompileOptions) -> AccuracyReport:
    """``module``'s outputs against the fp32 ``reference``'s on the calibration inputs."""
    path = options.calibration_inputs
    if path is None:
        try:
            arrays = random_inputs(module.inputs)
        except ShapeError as err:
            raise CompileError(
                f"the {options.precision} accuracy report needs inputs: {err}; give them "
                f"as calibration_inputs (--calibration-inputs in.npz)"
            ) from err
        inputs = dict(zip(module.input_names, arrays, strict=True))
        source = "random inputs"
    else:
        inputs = read_arrays(path, module.input_names, "calibration input")
        source = os.path.basename(path)
    return compare(options.precision, source, reference.run(**inputs), module.run(**inputs))


def _module(state: CompileState) -> Module:
    """The module of ``state`` compiled through the whole pipeline, weights bound."""
    executable = codegen(run_pipeline(state))
    device = tvm.cuda(0) if state.spec.kind == "cuda" else tvm.cpu()
    module = Module(
        executable,
        device,
        link_options=artifact_link_options(state),
        reports=tuple(p.report for p in state.partitions),
    )
    if state.param_values is not None:
        module.set_params(*state.param_values)
    return module


def tune(
    model: Any,
    target: Any = "llvm",
    *,
    records: str,
    trials: int = 64,
    plugins: Iterable[str] = (),
    rpc: RpcTracker | None = None,
    progress: Callable[[TuningProgress], None] | None = None,
    timeout_s: float = CANDIDATE_TIMEOUT_S,
    options: CompileOptions | None = None,
    **option_values: Any,
) -> TuningResult:
    """Tune ``model``'s PrimFuncs for ``target`` with MetaSchedule: ``trials`` more
    candidates in all, kept in the records file ``records`` (tuning again with the same
    file resumes; pass it to ``compile(..., tuning_records=records)``). A candidate may
    take ``timeout_s`` seconds to build and as long to run (else it counts as failed);
    tuning stops with a :class:`TuningError` when a batch outlasts that bound.

    The model goes through the compile pipeline up to its ``fuse`` stage, so the tasks
    are the functions ``compile`` gives the default schedule (not custom ops' own
    schedules, not external targets' partitions). With ``rpc``, candidates run on the
    tracker's servers and a target without ``-mcpu`` is built for their CPU. Tuning
    runs in a child process (:mod:`tvmext.tuning.session`).
    """
    check_folder(records)
    if rpc is not None:
        require_servers(rpc)  # before anything waits for a server
    if rpc is not None and _names_no_cpu(target):
        flags = remote_cpu(rpc).items()
        target += "".join(f" -{key}={value}" for key, value in flags if key not in target)
    state = compile_state(
        model, target, plugins=plugins, options=options, option_values=option_values
    )
    if state.spec.kind != "llvm":
        raise CompileError(f"tuning supports CPU (llvm) targets, got {state.spec.kind!r}")
    fused = run_pipeline(state, through="fuse").mod
    assert fused is not None
    host = json.loads(str(state.spec.host))
    host.setdefault("num-cores", len(os.sched_getaffinity(0)))  # MetaSchedule's rules read it
    return tune_tasks(
        tuning_tasks(fused, state.spec.host),
        tvm.target.Target(host),
        trials,
        records,
        rpc=rpc,
        progress=progress,
        timeout_s=timeout_s,
    )


def _names_no_cpu(target: Any) -> bool:
    """Whether ``target`` is a plain llvm target string that leaves the CPU open."""
    return isinstance(target, str) and target.strip().startswith("llvm") and "mcpu" not in target

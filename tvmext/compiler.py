"""``tvmext.compile``: model in, :class:`tvmext.Module` out, through named stages.

The pipeline is one declarative list: ``import`` (ONNX or Relax) -> ``lift_params``
(with ``keep_params_in_input``: computations on weights move into
``main_transform_params``, run once when weights are bound) -> ``optimize``
(registered passes for the target) -> ``partition`` (each external target of a
composite target string) -> ``build`` (TVM lowering with tvmext's schedule stage,
whose own stages are named too). ``dump_ir`` writes the module after each of them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import tvm
from tvm import relax

from . import onnx_import
from .compile_options import CompileOptions, shapes_from
from .dims import dims
from .errors import CompileError, ModelError, NativeBuildError, TvmextError
from .external_target import Partitioned, get_target, link_options
from .lowering import build
from .module import InputSpec, Module, signature_function
from .pass_registry import PHASES, passes_for
from .plugins import load_plugins
from .target_spec import TargetSpec, parse_target
from .tuning import TuningRecords, tune_module


@dataclass
class CompileState:
    """What flows through the stages: the model, then the IRModule and its inputs."""

    model: Any
    spec: TargetSpec
    options: CompileOptions
    mod: tvm.IRModule | None = None
    inputs: list[InputSpec] | None = None
    params: list[InputSpec] = dataclasses.field(default_factory=list)
    param_values: list[np.ndarray] | None = None
    executable: Any = None
    partitions: list[Partitioned] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class Stage:
    """A named step of :func:`compile`."""

    name: str
    run: Callable[[CompileState], None]


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


def _import(state: CompileState) -> None:
    model, options = state.model, state.options
    if isinstance(model, tvm.IRModule):
        state.mod = model
        _split_params(state, None)
        return
    if not isinstance(model, str | os.PathLike | onnx.ModelProto):
        raise ModelError(
            f"model must be an ONNX path, an onnx.ModelProto or a Relax IRModule, "
            f"got {type(model).__name__}"
        )
    proto = onnx_import.load_model(model)
    state.mod = onnx_import.from_onnx(
        proto, options.input_shapes, options.input_dtypes, options.keep_params_in_input
    )
    _split_params(state, [i.name for i in onnx_import.graph_inputs(proto)])


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


def _optimize(state: CompileState) -> None:
    assert state.mod is not None
    for name in state.spec.externals:
        get_target(name)  # an unknown name fails before any work
    targets = (state.spec.kind, *state.spec.externals)
    passes = [e.factory() for phase in PHASES for e in passes_for(phase, *targets)]
    with tvm.transform.PassContext(opt_level=state.options.opt_level):
        state.mod = tvm.transform.Sequential(passes)(state.mod)


def _partition(state: CompileState) -> None:
    assert state.mod is not None
    for name in state.spec.externals:
        try:
            partitioned = get_target(name).partition(state.mod, state.spec.host)
        except NativeBuildError as err:
            if not state.options.fallback_to_tvm:
                raise
            from tvmext.passes.partition_report import everything_on_tvm

            reason = f"{name} code failed to compile; fell back to TVM: {str(err).splitlines()[0]}"
            partitioned = Partitioned(state.mod, everything_on_tvm(state.mod, name, reason))
        state.mod = partitioned.mod
        state.partitions.append(partitioned)


def _build(state: CompileState) -> None:
    assert state.mod is not None and state.inputs is not None
    mod = state.mod
    mod[relax.GlobalVar("tvmext_signature")] = signature_function(state.inputs, state.params)
    host = state.spec.host
    dump = _dumper(state.options.dump_ir, first_index=len(STAGES) - 1)
    try:
        with tvm.transform.PassContext(opt_level=state.options.opt_level):
            state.executable = build(
                mod,
                host,
                after_stage=dump,
                records=_records(state),
                verify_schedules=state.options.verify_schedules,
            )
    except TvmextError:
        raise
    except Exception as err:
        raise CompileError(
            f"compiling for {host.kind.name} failed: {type(err).__name__}: {err}"
        ) from err


def _records(state: CompileState) -> TuningRecords | None:
    if state.options.tuning_records is None:
        return None
    return TuningRecords.load(state.options.tuning_records)


STAGES: list[Stage] = [
    Stage("import", _import),
    Stage("lift_params", _lift_params),
    Stage("optimize", _optimize),
    Stage("partition", _partition),
    Stage("build", _build),
]


def _dumper(folder: str | None, first_index: int = 0) -> Callable[[str, tvm.IRModule], None] | None:
    if folder is None:
        return None
    os.makedirs(folder, exist_ok=True)
    counter = iter(range(first_index, 1000))

    def dump(name: str, mod: tvm.IRModule) -> None:
        path = os.path.join(folder, f"{next(counter):02d}_{name}.py")
        with open(path, "w") as f:
            f.write(mod.script(show_meta=False))

    return dump


def _front(
    model: Any,
    target: Any,
    plugins: Iterable[str],
    options: CompileOptions | None,
    option_values: dict[str, Any],
    stop_before: str,
) -> CompileState:
    load_plugins(plugins)
    if options is None:
        if "input_shapes" in option_values:
            option_values["input_shapes"] = shapes_from(option_values["input_shapes"])
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
    state = CompileState(model, parse_target(target), options)
    dump = _dumper(options.dump_ir)
    for stage in STAGES:
        if stage.name == stop_before:
            break
        stage.run(state)
        if dump is not None and state.mod is not None:
            dump(stage.name, state.mod)
    return state


def compile(
    model: Any,
    target: Any = "llvm",
    *,
    plugins: Iterable[str] = (),
    options: CompileOptions | None = None,
    **option_values: Any,
) -> Module:
    """Compile ``model`` (ONNX path or ModelProto, or Relax IRModule) for ``target``.

    ``target`` is a tvmc-style string (``"llvm"``, ``"llvm -mcpu=znver4"``,
    ``"dnnl, llvm"``), a dict or a ``tvm.target.Target``; the host CPU's features are
    used unless ``-mcpu`` says otherwise. With external targets, the module's
    ``reports`` say where each op went and why. ``plugins`` are module names or ``.py`` files
    to import first. Options are :class:`CompileOptions` fields, given as ``options=``
    or as keywords (``input_shapes`` also as a tvmc string ``"x:[1,3,224,224]"``).
    """
    state = _front(model, target, plugins, options, option_values, stop_before="build")
    _build(state)
    device = tvm.cuda(0) if state.spec.kind == "cuda" else tvm.cpu()
    module = Module(
        state.executable,
        device,
        link_options=link_options(state.partitions),
        reports=tuple(p.report for p in state.partitions),
    )
    if state.param_values is not None:
        module.set_params(*state.param_values)
    return module


def tune(
    model: Any,
    target: Any = "llvm",
    *,
    trials: int = 32,
    plugins: Iterable[str] = (),
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
    options: CompileOptions | None = None,
    **option_values: Any,
) -> TuningRecords:
    """Tune ``model``'s schedules for ``target``; pass the result's file to
    ``compile(..., tuning_records=path)`` (see :mod:`tvmext.tuning`)."""
    state = _front(model, target, plugins, options, option_values, stop_before="build")
    if state.spec.kind != "llvm":
        raise CompileError(f"tuning supports CPU (llvm) targets, got {state.spec.kind!r}")
    assert state.mod is not None
    return tune_module(state.mod, state.spec.host, trials, progress)

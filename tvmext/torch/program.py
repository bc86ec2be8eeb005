"""A PyTorch model in, a Relax IRModule out, through ``torch.export``.

An ``nn.Module`` is exported with ``torch.export.export`` (``strict=False``, PyTorch's
own default for most models); an ``ExportedProgram`` or a ``.pt2`` file (written by
``torch.export.save``) is taken as it is. The program is decomposed to core ATen and
imported by TVM's ``from_exported_program``, with every custom op it calls converted
to its tvmext op: tvmext's own ops (``torch.ops.mylib.scaled_tanh``) and ops mapped
with ``op.torch("vendor::name")``. Custom ops are matched by their full name
(``namespace::name.overload``): TVM's importer matches converters by short name, where
``mylib::relu`` would take ATen's ``relu`` converter or replace it. Every op nobody
converts is listed in one error, each with the source line PyTorch recorded.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import tvm
from torch import fx
from tvm import relax, tirx
from tvm.relax.frontend.torch import from_exported_program
from tvm.relax.frontend.torch.exported_program_translator import ExportedProgramImporter

from tvmext.dims import dim_analyzer
from tvmext.errors import ModelError, TvmextError
from tvmext.opdef.declaration import OPS, CustomOp
from tvmext.opdef.torch_mapping import TorchMapping, lookup, torch_qualname
from tvmext.runtime.output_tree import OutputTree
from tvmext.torch.library import BACKWARD_SUFFIX

# Namespaces whose ops only an explicit op.torch(...) mapping takes from TVM's importer.
_PYTORCH_NAMESPACES = ("aten", "prims")


@dataclass(frozen=True)
class ImportedProgram:
    """The Relax module of a PyTorch program, its user inputs' names in order, the
    structure of its outputs and the bounds its ``torch.export.Dim`` objects gave (a
    dim with a maximum: ``{"batch": (1, 64)}``)."""

    mod: tvm.IRModule
    input_names: list[str]
    output_tree: OutputTree
    shape_bounds: dict[str, tuple[int, int]]


def is_torch_model(model: Any) -> bool:
    """Whether ``model`` is an ``nn.Module``, an ``ExportedProgram`` or a ``.pt2`` path."""
    if isinstance(model, str | os.PathLike):
        return os.fspath(model).endswith(".pt2")
    return isinstance(model, torch.nn.Module | torch.export.ExportedProgram)


def exported_program(
    model: Any, example_inputs: Any, dynamic_shapes: Any, source: str
) -> torch.export.ExportedProgram:
    """``model`` as an ``ExportedProgram``: exported (an ``nn.Module``, with
    ``example_inputs``), loaded (a ``.pt2`` file) or as given."""
    if isinstance(model, torch.export.ExportedProgram):
        return model
    if isinstance(model, str | os.PathLike):
        try:
            return torch.export.load(os.fspath(model))
        except Exception as err:
            raise ModelError(
                f"{source} is not a program written by torch.export.save: {err}"
            ) from err
    if example_inputs is None:
        raise ModelError(
            f"{source} is a torch.nn.Module: give example_inputs=(...) (a tuple of tensors, "
            f"one per forward() argument) so that torch.export can trace it"
        )
    args = tuple(example_inputs) if isinstance(example_inputs, tuple | list) else (example_inputs,)
    try:
        with _quiet_pytree():
            return torch.export.export(
                model.eval(), args, dynamic_shapes=dynamic_shapes, strict=False
            )
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(
            f"torch.export could not export {source}: {type(err).__name__}: {first}"
        ) from err


def import_program(
    program: torch.export.ExportedProgram,
    *,
    keep_params_in_input: bool = False,
    dynamic_shapes: Any = None,
    source: str = "the PyTorch program",
) -> ImportedProgram:
    """``program`` as a Relax module whose ``main`` takes the user inputs (then the
    weights, with ``keep_params_in_input``). Symbolic dims are named after the
    ``torch.export.Dim`` objects of ``dynamic_shapes`` where they name them."""
    try:
        with _quiet_pytree():
            program = program.run_decompositions()
    except Exception as err:
        raise ModelError(f"PyTorch could not decompose {source} to core ATen ops: {err}") from err
    _promote_inputs(program)
    converters = _custom_converters(program)
    converters["slice.Tensor"] = _bounded_slice(_symbol_bounds(program))
    _check_supported(program, converters, source)
    try:
        mod = from_exported_program(
            program,
            keep_params_as_input=keep_params_in_input,
            custom_convert_map=converters,
            run_ep_decomposition=False,
        )
    except TvmextError:
        raise
    except Exception as err:
        raise ModelError(f"importing {source} failed: {type(err).__name__}: {err}") from err
    names = [
        spec.arg.name
        for spec in program.graph_signature.input_specs
        if spec.kind is torch.export.graph_signature.InputKind.USER_INPUT
    ]
    mod = _named_dims(mod, _dim_names(program, names, dynamic_shapes))
    tree = OutputTree.from_pytree(program.call_spec.out_spec)
    return ImportedProgram(mod, names, tree, _bounds(mod["main"]))


def _bounds(main: relax.Function) -> dict[str, tuple[int, int]]:
    """The (low, high) bounds of the dims ``main`` has an upper bound for: a dim exported
    without a maximum stays unbounded (PyTorch's default minimum, 2, says only that
    the export did not specialize it)."""
    attrs = main.attrs or {}
    lower = attrs.get("tir_var_lower_bound") or {}
    upper = attrs.get("tir_var_upper_bound") or {}
    return {str(k): (int(lower.get(k, 0)), int(v)) for k, v in upper.items()}


def parameter_values(path: str, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The parameters named ``names`` (as the imported module's inputs name them) of
    the program in ``.pt2`` file ``path``."""
    program = exported_program(path, None, None, f"model file {path!r}")
    kind = torch.export.graph_signature.InputKind.PARAMETER
    values = {
        spec.arg.name: program.state_dict[spec.target].detach().numpy()
        for spec in program.graph_signature.input_specs
        if spec.kind is kind
    }
    return {name: values[name] for name in names}


@contextlib.contextmanager
def _quiet_pytree() -> Iterator[None]:
    """PyTorch 2.13 warns about its own deprecated pytree class when it copies a
    program: nothing the user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        yield


class _Keyed:
    """A custom op's FX target under its full name: TVM's importer looks converters up
    by ``target.__name__``, which for a PyTorch op drops the namespace."""

    def __init__(self, op: torch._ops.OpOverload) -> None:
        self.op = op
        self.__name__ = f"{op.namespace}::{op._opname}.{op._overloadname}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.op(*args, **kwargs)

    def __repr__(self) -> str:
        return self.__name__


def _custom_converters(program: torch.export.ExportedProgram) -> dict[str, Callable[..., Any]]:
    """A converter per custom op the program calls (keyed by full name), its FX nodes'
    targets renamed to match."""
    own = {torch_qualname(e.key): e.value for e in OPS}
    converters: dict[str, Callable[..., Any]] = {}
    for node in program.graph.nodes:
        target = node.target
        if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
            continue
        qualname = f"{target.namespace}::{target._opname}"
        mapping = lookup(qualname)
        if mapping is None and target.namespace not in _PYTORCH_NAMESPACES and qualname in own:
            mapping = TorchMapping(qualname, own[qualname])
        primal = own.get(qualname.removesuffix(BACKWARD_SUFFIX))
        if mapping is not None:
            converter = _converter(mapping, target)
        elif qualname.endswith(BACKWARD_SUFFIX) and primal is not None:
            converter = _backward_converter(primal)  # a backward graph of torch.compile
        else:
            continue
        node.target = _Keyed(target)
        converters[node.target.__name__] = converter
    return converters


# Ops that accumulate in their output's dtype: PyTorch sums booleans as int64.
_ACCUMULATING = ("cumsum", "cumprod", "sum", "prod", "mean")


def _promote_inputs(program: torch.export.ExportedProgram) -> None:
    """Make PyTorch's type promotion explicit in the graph, where TVM's converters
    assume operands already have the result's dtype: a float pointwise op on an integer
    tensor (``log`` of counts) or an integer scalar (a float tensor ``// 2``) computes in
    its output's dtype; so does an accumulating op (``cumsum`` of a boolean mask is
    int64). Boolean operands of pointwise ops (conditions, masks) stay as they are."""
    graph = program.graph
    for node in list(graph.nodes):
        target = node.target
        value = node.meta.get("val")
        if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
            continue
        if not isinstance(value, torch.Tensor):
            continue
        pointwise = torch.Tag.pointwise in target.tags and value.dtype.is_floating_point
        accumulating = target.namespace == "aten" and target._opname in _ACCUMULATING
        if not (pointwise or accumulating):
            continue
        kinds = [str(a.type) for a in target._schema.arguments]
        args = list(node.args)
        for i, arg in enumerate(args):
            kind = kinds[i] if i < len(kinds) else ""
            if pointwise and isinstance(arg, int) and not isinstance(arg, bool):
                if kind in ("Scalar", "Tensor"):
                    args[i] = float(arg)
            elif isinstance(arg, fx.Node) and kind == "Tensor":
                given = arg.meta.get("val")
                keep = (value.dtype, torch.bool) if pointwise else (value.dtype,)
                if isinstance(given, torch.Tensor) and given.dtype not in keep:
                    with graph.inserting_before(node):
                        cast = graph.call_function(
                            torch.ops.aten._to_copy.default, (arg,), {"dtype": value.dtype}
                        )
                    cast.meta["val"] = given.to(value.dtype)
                    args[i] = cast
        node.args = tuple(args)


def _symbol_bounds(program: torch.export.ExportedProgram) -> dict[str, tuple[int, int | None]]:
    """``{symbol: (low, high)}``: the range PyTorch proved for each symbolic dim (high
    None: unbounded), by the names TVM's importer gives the dims."""
    bounds: dict[str, tuple[int, int | None]] = {}
    for symbol, limits in program.range_constraints.items():
        try:
            high = None if math.isinf(float(limits.upper)) else int(limits.upper)
            bounds[str(symbol)] = (int(limits.lower), high)
        except (TypeError, ValueError, OverflowError):  # a derived or unbacked symbol
            continue
    return bounds


def _bounded_slice(bounds: Mapping[str, tuple[int, int | None]]) -> Callable[..., Any]:
    """``aten.slice`` kept exact on symbolic bounds: ``x[:, :seq]`` of a 512-long
    constant is ``seq`` long where the dims' ranges prove ``seq <= 512`` (TVM's converter
    makes it ``min(seq, 512)``, which no later shape equals); anything else is TVM's."""

    def convert(node: fx.Node, importer: ExportedProgramImporter) -> relax.Expr:
        given: list[Any] = list(node.args)
        x = importer.env[given[0]]
        dim, start, end, step = (given[1:] + [0, 0, None, 1][len(given) - 1 :])[:4]
        end = importer.env[end] if isinstance(end, fx.Node) else end
        start = 0 if start is None else start
        shape = importer.shape_of(x)
        if (
            shape is not None
            and isinstance(start, int)
            and start >= 0
            and step == 1
            and tvm.ir.is_prim_expr(end)
        ):
            axis = dim % len(shape)
            analyzer = dim_analyzer(end, shape[axis], bounds=bounds)
            if analyzer.can_prove(tirx.all(end >= start, end <= shape[axis])):
                return importer.block_builder.emit(
                    relax.op.strided_slice(x, [axis], [start], [end], [1], assume_inbound=True)
                )
        return importer._slice(node)

    return convert


def _backward_converter(op: CustomOp) -> Callable[..., Any]:
    """The converter of ``op``'s backward op (:mod:`tvmext.torch.library`): the op's
    gradient in Relax."""

    def convert(node: fx.Node, importer: ExportedProgramImporter) -> relax.Expr:
        inputs, outputs, grads, wanted = cast(tuple[Any, ...], node.args)
        ins, outs, out_grads = (
            [importer.env[n] for n in group] for group in (inputs, outputs, grads)
        )
        partials = op.gradient_calls(
            ins,
            outs,
            out_grads,
            dict(node.kwargs),
            importer.block_builder,
            [bool(w) for w in wanted],
        )
        return importer.block_builder.emit(relax.Tuple(partials))

    return convert


def _converter(mapping: TorchMapping, target: torch._ops.OpOverload) -> Callable[..., Any]:
    def convert(node: fx.Node, importer: ExportedProgramImporter) -> relax.Expr:
        tensors: list[relax.Expr] = []
        attrs: dict[str, Any] = {}
        values = dict(zip((a.name for a in target._schema.arguments), node.args, strict=False))
        values.update(node.kwargs)
        for name, value in values.items():
            if isinstance(value, fx.Node):
                tensors.append(importer.env[value])
            elif isinstance(value, list | tuple) and any(isinstance(v, fx.Node) for v in value):
                raise ModelError(
                    f"node {node.name!r} ({target}): argument {name!r} is a list of tensors, "
                    f"which a tvmext op does not take{_where(node)}"
                )
            else:
                attrs[name] = value
        try:
            call = mapping.op.call_relax(*tensors, **mapping.op_attributes(attrs))
        except TvmextError as err:
            raise ModelError(f"node {node.name!r} ({target}){_where(node)}: {err}") from err
        return importer.block_builder.emit(call)

    return convert


def _check_supported(
    program: torch.export.ExportedProgram, converters: Mapping[str, Any], source: str
) -> None:
    """A ModelError listing every op of ``program`` nothing converts, where each is."""
    known = set(ExportedProgramImporter().convert_map) | set(converters)
    missing: dict[str, list[str]] = {}
    for node in program.graph.nodes:
        if node.op == "call_function" and node.target.__name__ not in known:
            missing.setdefault(_op_name(node.target), []).append(_where(node).strip() or node.name)
    if not missing:
        return
    lines = []
    for name, places in missing.items():
        hint = (
            "TVM has no converter for it: declare a tvmext op and map it with "
            f"op.torch({name.split('.')[0]!r})"
            if name.split("::")[0] in _PYTORCH_NAMESPACES
            else f"a custom op: map it to a tvmext op with op.torch({name.split('.')[0]!r})"
        )
        lines.append(f"  {name} ({hint}), called {'; '.join(places[:3])}")
    raise ModelError(
        f"{source} calls {len(missing)} op(s) tvmext cannot import:\n" + "\n".join(lines)
    )


def _op_name(target: Any) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}::{target._opname}.{target._overloadname}"
    return getattr(target, "__name__", str(target))


def _where(node: fx.Node) -> str:
    """`` at file:line (code)`` of the user's source line PyTorch recorded, or ""."""
    trace = node.meta.get("stack_trace") or ""
    lines = [line.strip() for line in trace.strip().splitlines()]
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("File "):
            where = lines[i].removeprefix("File ").replace('", line ', ":").replace('"', "")
            where = where.split(", in ")[0]
            code = lines[i + 1] if i + 1 < len(lines) else ""
            return f" at {where}" + (f" ({code})" if code else "")
    return ""


def _dim_names(
    program: torch.export.ExportedProgram, names: list[str], dynamic_shapes: Any
) -> dict[str, str]:
    """``{symbol: name}``: PyTorch's symbol of each input dim that ``dynamic_shapes``
    gives as a named ``torch.export.Dim``."""
    if dynamic_shapes is None:
        return {}
    if isinstance(dynamic_shapes, Mapping) and set(dynamic_shapes) <= set(names):
        per_input = [dynamic_shapes.get(n) for n in names]
    else:  # by position, nested as the inputs are (``{"args": (...)}`` for *args)
        per_input = _tensor_specs(dynamic_shapes)
    values = {n.name: n.meta.get("val") for n in program.graph.find_nodes(op="placeholder")}
    found: dict[str, str] = {}
    for name, spec in zip(names, per_input, strict=False):
        axes = spec.items() if isinstance(spec, Mapping) else enumerate(spec or ())
        value = values.get(name)
        for axis, dim in axes:
            label = getattr(dim, "__name__", None)
            if value is None or not isinstance(label, str) or axis >= value.dim():
                continue
            size = value.shape[axis]
            if isinstance(size, torch.SymInt) and size.node.expr.is_Symbol:
                found[str(size.node.expr)] = label
    return found


def _tensor_specs(spec: Any) -> list[Any]:
    """The per-tensor specs of a ``dynamic_shapes`` tree, in the inputs' order: a
    mapping of axes to dims, or a sequence of dims (or None) is one tensor's."""
    if isinstance(spec, Mapping) and all(isinstance(k, int) for k in spec):
        return [spec]
    if isinstance(spec, Mapping):
        return [s for value in spec.values() for s in _tensor_specs(value)]
    if isinstance(spec, list | tuple) and any(isinstance(v, list | tuple | Mapping) for v in spec):
        return [s for value in spec for s in _tensor_specs(value)]
    return [spec]


def _named_dims(mod: tvm.IRModule, names: Mapping[str, str]) -> tvm.IRModule:
    """``mod`` with the symbolic dims of ``main`` renamed (``s0`` -> ``batch``), bound
    attributes included."""
    if not names:
        return mod
    main = mod["main"]
    main = main.bind_symbolic_vars({old: tirx.Var(new, "int64") for old, new in names.items()})
    for key in ("tir_var_lower_bound", "tir_var_upper_bound"):
        bounds = None if main.attrs is None else main.attrs.get(key)
        if bounds is not None:
            main = main.with_attr(
                key, {names.get(str(k), str(k)): int(v) for k, v in bounds.items()}
            )
    mod = mod.clone()
    mod["main"] = main
    return mod

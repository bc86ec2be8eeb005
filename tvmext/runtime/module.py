"""``tvmext.Module``: a compiled model you can run, time and export; ``tvmext.load``.

The artifact is one ``.so`` (``export_library``) holding the Relax VM executable and
a ``tvmext_signature`` function that returns the inputs' names, shapes and dtypes as
JSON, so a loaded module checks its inputs without any plugin or source model.

A model compiled with ``keep_params_in_input`` takes its weights apart from its
inputs: the signature lists them too, and the executable holds
``main_transform_params`` (the weight conversions, lifted out of ``main``).
:meth:`Module.set_params` checks the weights, runs that function once and keeps its
results, which every later call passes to ``main``.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import tvm
from tvm import relax

from tvmext.atomic_file import atomic_output, check_folder
from tvmext.errors import CompileError, NativeBuildError, ShapeError
from tvmext.opdef.native_build import BuildFlags, compile_object, cxx_compiler
from tvmext.runtime.accuracy import ARTIFACT_SYMBOL, AccuracyReport
from tvmext.runtime.cpu_threads import configure_thread_pool
from tvmext.runtime.output_tree import OutputTree
from tvmext.runtime.packed_dtypes import from_carrier, numpy_dtype, to_carrier
from tvmext.runtime.profiling import Profile, profile_vm
from tvmext.runtime.tvm_log import filtered_tvm_log
from tvmext.runtime.zero_copy import to_tensor

if TYPE_CHECKING:
    from tvmext.target.report import PartitionReport

SIGNATURE_FUNCTION = "tvmext_signature"
TRANSFORM_FUNCTION = "main_transform_params"
_RPATH = "-Wl,-rpath,"


@dataclass(frozen=True)
class InputSpec:
    """One input: name, shape (ints; strings for symbolic dims; None when even the rank
    is unknown) and dtype (empty when unknown)."""

    name: str
    shape: tuple[int | str, ...] | None
    dtype: str

    def __str__(self) -> str:
        shape = "?" if self.shape is None else str(list(self.shape))
        return f"{self.name}: {shape} {self.dtype or '?'}"


@dataclass(frozen=True)
class BenchmarkResult:
    """Seconds per run over ``repeat`` measurements of ``number`` runs each."""

    median: float
    mean: float
    min: float
    max: float
    std: float
    repeat: int
    number: int

    def __str__(self) -> str:
        return (
            f"median {self.median * 1e3:.3f} ms, min {self.min * 1e3:.3f} ms, "
            f"max {self.max * 1e3:.3f} ms, std {self.std * 1e3:.3f} ms "
            f"({self.repeat} x {self.number} runs)"
        )


def _spec_json(spec: InputSpec) -> dict[str, Any]:
    shape = None if spec.shape is None else list(spec.shape)
    return {"name": spec.name, "shape": shape, "dtype": spec.dtype}


def _spec(data: dict[str, Any]) -> InputSpec:
    shape = None if data["shape"] is None else tuple(data["shape"])
    return InputSpec(data["name"], shape, data["dtype"])


def signature_function(
    inputs: Sequence[InputSpec],
    params: Sequence[InputSpec] = (),
    output_dtypes: Sequence[str] = (),
    shape_bounds: Mapping[str, tuple[int, int]] | None = None,
    output_tree: OutputTree | None = None,
) -> relax.Function:
    """A Relax function returning the inputs (and runtime weights) as JSON, to embed in
    the artifact; ``output_dtypes`` name the outputs' sub-byte types ("" for others),
    which the outputs' byte carriers become on the way out; ``shape_bounds`` the
    (low, high) bound of each bounded symbolic dimension; ``output_tree`` the structure
    of the outputs (a model from PyTorch)."""
    text = json.dumps(
        {
            "inputs": [_spec_json(i) for i in inputs],
            "params": [_spec_json(p) for p in params],
            "output_dtypes": list(output_dtypes),
            "shape_bounds": {k: list(v) for k, v in (shape_bounds or {}).items()},
            # null is a tree too (one output): a model without a tree has no key
            **({} if output_tree is None else {"output_tree": output_tree.tree}),
        }
    )
    func = relax.Function([], tvm.ir.StringImm(text), tvm.ir.StringType())
    return func.with_attr("global_symbol", SIGNATURE_FUNCTION)


@dataclass(frozen=True)
class Signature:
    """What an artifact says of its inputs: see :func:`signature_function`."""

    inputs: list[InputSpec]
    params: list[InputSpec]
    output_dtypes: list[str]
    shape_bounds: dict[str, tuple[int, int]]
    output_tree: OutputTree | None


def _read_signature(vm: relax.VirtualMachine) -> Signature:
    data = json.loads(str(vm[SIGNATURE_FUNCTION]()))
    return Signature(
        [_spec(i) for i in data["inputs"]],
        [_spec(p) for p in data.get("params", [])],
        list(data.get("output_dtypes", [])),
        {k: (int(v[0]), int(v[1])) for k, v in data.get("shape_bounds", {}).items()},
        OutputTree(data["output_tree"]) if "output_tree" in data else None,
    )


class Module:
    """A compiled model: ``run`` / ``__call__``, ``benchmark``, ``export``;
    ``set_params`` for a model compiled with ``keep_params_in_input``.

    ``reports`` holds one partition report per external target (where each op went
    and why); ``link_options`` are what the external targets' code needs linked;
    ``accuracy`` is the report of a reduced-precision artifact against fp32 (None for
    fp32), kept in the exported artifact.
    """

    def __init__(
        self,
        executable: Any,
        device: Any = None,
        *,
        link_options: Sequence[str] = (),
        reports: Sequence[PartitionReport] = (),
    ) -> None:
        self._executable = executable
        self.device = device if device is not None else tvm.cpu()
        self.link_options = tuple(link_options)
        self.reports: tuple[PartitionReport, ...] = tuple(reports)
        self.accuracy: AccuracyReport | None = None
        if self.link_options:
            executable.jit(options=list(self.link_options))  # the VM then uses this library
        self._vm = relax.VirtualMachine(executable, self.device)
        signature = _read_signature(self._vm)
        self.inputs, self.params = signature.inputs, signature.params
        self._output_dtypes = signature.output_dtypes
        # Bounds of symbolic dims the artifact was compiled for: {"batch": (1, 64)}.
        self.shape_bounds = signature.shape_bounds
        # The structure of the outputs of a model from PyTorch (None: a flat list).
        self.output_tree = signature.output_tree
        self._bound_params: list[Any] | None = None if self.params else []

    @property
    def param_names(self) -> list[str]:
        """Names of the weights :meth:`set_params` takes (empty unless compiled with
        ``keep_params_in_input``)."""
        return [p.name for p in self.params]

    def set_params(self, *arrays: Any, **named: Any) -> None:
        """Bind the weights (positional, or by name), in the model's own format. The
        weight conversions lifted out of ``main`` run here, once; calls reuse the
        result."""
        if not self.params:
            raise ShapeError(
                "the model takes no runtime weights (it was compiled without keep_params_in_input)"
            )
        bound = _check_arrays(self.params, arrays, named, "weight")
        tensors = [tvm.runtime.tensor(a, self.device) for a in bound]
        self._bound_params = list(self._vm[TRANSFORM_FUNCTION](tensors))

    @property
    def input_names(self) -> list[str]:
        """Input names in positional order."""
        return [i.name for i in self.inputs]

    def _bind(self, arrays: Sequence[Any], named: dict[str, Any]) -> list[Any]:
        """Input tensors followed by the bound (converted) weights."""
        if self._bound_params is None:
            raise ShapeError(
                f"the model's weights are runtime parameters ({', '.join(self.param_names)}): "
                f"bind them with set_params(...) before running it"
            )
        bound = _check_arrays(self.inputs, arrays, named, "input", self.shape_bounds)
        return [to_tensor(to_carrier(a), self.device) for a in bound] + self._bound_params

    def run(self, *arrays: Any, **named: Any) -> list[np.ndarray]:
        """Run the model on NumPy arrays (positional or by input name); list of outputs."""
        outputs = flatten_outputs(self._vm["main"](*self._bind(arrays, named)))
        if len(self._output_dtypes) == len(outputs):
            pairs = zip(outputs, self._output_dtypes, strict=True)
            outputs = [from_carrier(a, dtype) for a, dtype in pairs]
        return outputs

    def __call__(self, *arrays: Any, **named: Any) -> Any:
        """:meth:`run`, with the outputs in the model's own structure where it has one
        (a model from PyTorch returns its tensor, tuple or dict; ONNX models a list)."""
        outputs = self.run(*arrays, **named)
        if self.output_tree is None or self.output_tree.leaves != len(outputs):
            return outputs
        return self.output_tree.unflatten(outputs)

    def benchmark(
        self, *arrays: Any, repeat: int = 10, number: int = 5, **named: Any
    ) -> BenchmarkResult:
        """Time ``main`` with TVM's time evaluator (random inputs when none are given)."""
        if not arrays and not named:
            arrays = tuple(random_inputs(self.inputs))
        inputs = self._bind(arrays, named)
        timer = self._vm.time_evaluator("main", self.device, number=number, repeat=repeat)
        results = list(timer(*inputs).results)
        return BenchmarkResult(
            median=statistics.median(results),
            mean=statistics.fmean(results),
            min=min(results),
            max=max(results),
            std=statistics.pstdev(results),
            repeat=repeat,
            number=number,
        )

    def profile(self, *arrays: Any, repeat: int = 10, **named: Any) -> Profile:
        """Time every kernel and external call of ``main`` (random inputs when none are
        given): mean per run over ``repeat`` runs, slowest first, with its share."""
        if not arrays and not named:
            arrays = tuple(random_inputs(self.inputs))
        inputs = self._bind(arrays, named)
        return profile_vm(self._vm, lambda: self._vm["main"](*inputs), repeat)

    def export(self, path: str | os.PathLike[str], *, rpath: Sequence[str] | None = None) -> str:
        """Write one ``.so`` atomically (temporary file, then rename).

        Libraries the artifact loads but cannot embed (oneDNN's ``libdnnl.so``, a native
        op's ``shared_library``) are found through an RPATH to the folder each was found
        in, or ``$ORIGIN``-relative when the artifact is written into that folder (or one
        above it), so that the two move together. ``rpath`` replaces those folders
        (``["$ORIGIN/lib"]`` for an artifact shipped with copies of its libraries).
        """
        path = os.fspath(path)
        folder = check_folder(path)
        compiler = cxx_compiler()
        if shutil.which(compiler) is None:  # TVM would fail on it with a bare OSError
            raise NativeBuildError(
                f"exporting {path!r} links it with the C++ compiler {compiler!r} ($CXX), "
                f"which is not installed: install g++ or point CXX at a C++ compiler"
            )
        options = _artifact_options(self.link_options, folder, rpath)
        addons = [_accuracy_object(self.accuracy)] if self.accuracy is not None else None
        with atomic_output(path, executable=True) as tmp, filtered_tvm_log():
            try:
                if options:
                    self._executable.export_library(tmp, options=options, addons=addons)
                else:
                    self._executable.export_library(tmp, addons=addons)
            except Exception as err:
                raise CompileError(
                    f"exporting {path!r} failed: {type(err).__name__}: {err}"
                ) from err
        return path

    def export_app(
        self,
        folder: str | os.PathLike[str],
        *,
        params: Mapping[str, Any] | None = None,
    ) -> str:
        """Write a standalone inference application into ``folder``: ``run`` (a native
        program, built now with the system's C++ compiler), ``model.so``, ``lib/`` (the
        runtime libraries it needs, copied), ``src/`` (the program's source and a
        Makefile that rebuilds it against ``lib/``) and ``README.md`` (how to run it and
        which glibc it needs). It runs without Python: ``folder/run --help``.

        ``params`` (weights by name, for a model compiled with ``keep_params_in_input``)
        are written to ``folder/params.npz``, which ``run`` binds unless given
        ``--params``. Written atomically: on any failure no folder is left; an existing
        application folder is replaced. See :mod:`tvmext.deploy`.
        """
        from tvmext.deploy.app import write_app

        if self.device.dlpack_device_type() != tvm.cpu().dlpack_device_type():
            raise CompileError(
                f"the application runs models on the CPU; this one was compiled for "
                f"{self.device}: compile it for an llvm target to deploy it"
            )
        weights = None
        if params is not None:
            if not self.params:
                raise ShapeError(
                    "params given, but the model takes no runtime weights (it was compiled "
                    "without keep_params_in_input)"
                )
            arrays = _check_arrays(self.params, (), dict(params), "weight")
            weights = dict(zip(self.param_names, arrays, strict=True))
        return write_app(
            os.fspath(folder),
            lambda path: self.export(path, rpath=["$ORIGIN/lib"]),
            library_dirs=_rpath_folders(self.link_options),
            description=[f"input  {i}" for i in self.inputs] + [f"weight {p}" for p in self.params],
            params=weights,
        )

    def __repr__(self) -> str:
        inputs = ", ".join(map(str, self.inputs))
        weights = f"; weights {', '.join(map(str, self.params))}" if self.params else ""
        return f"<tvmext.Module ({inputs}{weights}) on {self.device}>"


def _check_arrays(
    specs: Sequence[InputSpec],
    arrays: Sequence[Any],
    named: dict[str, Any],
    what: str,
    bounds: Mapping[str, tuple[int, int]] | None = None,
) -> list[np.ndarray]:
    """``arrays`` (positional) or ``named`` checked against ``specs`` (``what`` says
    input or weight in errors) and symbolic dims against ``bounds``; C-contiguous
    arrays in ``specs`` order."""
    names = [s.name for s in specs]
    if arrays and named:
        raise ShapeError(f"pass {what}s either positionally or by name, not both")
    if named:
        unknown = sorted(set(named) - set(names))
        if unknown:
            raise ShapeError(
                f"unknown {what}(s) {', '.join(unknown)}; {what}s are {', '.join(names)}"
            )
        missing = [n for n in names if n not in named]
        if missing:
            raise ShapeError(f"missing {what}(s) {', '.join(missing)}")
        arrays = [named[n] for n in names]
    if len(arrays) != len(specs):
        raise ShapeError(
            f"the model takes {len(specs)} {what}(s) ({', '.join(names)}), got {len(arrays)}"
        )
    bound: list[np.ndarray] = []
    symbols: dict[str, int] = {}
    for spec, value in zip(specs, arrays, strict=True):
        array = np.asarray(value)
        fits = str(array.dtype) == spec.dtype or not spec.dtype
        if fits and spec.shape is not None:
            fits = array.ndim == len(spec.shape)
        if fits and spec.shape is not None:
            for want, got in zip(spec.shape, array.shape, strict=True):
                if isinstance(want, str):
                    fits = fits and symbols.setdefault(want, got) == got
                else:
                    fits = fits and want == got
        if not fits:
            shape = "any shape" if spec.shape is None else f"shape {list(spec.shape)}"
            expected = f"{spec.dtype or 'any dtype'} of {shape}"
            given = f"{array.dtype} of shape {list(array.shape)}"
            raise ShapeError(f"{what} {spec.name!r}: expected {expected}, got {given}")
        for axis, (want, got) in enumerate(zip(spec.shape or (), array.shape, strict=False)):
            low, high = (bounds or {}).get(str(want), (got, got))
            if isinstance(want, str) and not low <= got <= high:
                raise ShapeError(
                    f"{what} {spec.name!r}: dim {axis} ({want}) is {got}, outside the bound "
                    f"{want}={low}..{high} the model was compiled for"
                )
        bound.append(array if array.flags.c_contiguous else array.copy(order="C"))
    return bound


def _origin_relative(library_folder: str, artifact_folder: str) -> str:
    relative = os.path.relpath(library_folder, artifact_folder)
    if relative == ".":
        return "$ORIGIN"
    return library_folder if relative.startswith("..") else f"$ORIGIN/{relative}"


def _artifact_options(
    options: Sequence[str], folder: str, rpath: Sequence[str] | None
) -> list[str]:
    """``options`` for an artifact written into ``folder``: each RPATH folder at or below
    ``folder`` becomes ``$ORIGIN``-relative; ``rpath``, when given, replaces them all."""
    kept = []
    for option in options:
        if not option.startswith(_RPATH):
            kept.append(option)
        elif rpath is None:
            folders = option.removeprefix(_RPATH).split(":")
            kept.append(_RPATH + ":".join(_origin_relative(f, folder) for f in folders))
    if rpath is not None:  # DT_RPATH, which also serves the libraries' own dependencies
        kept += ["-Wl,--disable-new-dtags", *(_RPATH + r for r in rpath)]
    return kept


def _rpath_folders(options: Sequence[str]) -> list[str]:
    """The folders that ``options`` record as RPATH: where the libraries were found."""
    found = (f for o in options if o.startswith(_RPATH) for f in o.removeprefix(_RPATH).split(":"))
    return list(dict.fromkeys(found))


def flatten_outputs(value: Any) -> list[np.ndarray]:
    """A VM result (tensor, shape or nested tuple of them) or NumPy values, as a flat
    list of NumPy arrays; shapes become int64 arrays, as ONNX's Shape returns them."""
    if isinstance(value, tvm.runtime.Tensor):
        return [value.numpy()]
    if isinstance(value, tvm.runtime.ShapeTuple):
        return [np.array(list(value), dtype=np.int64)]
    if isinstance(value, np.ndarray | np.generic):
        return [np.asarray(value)]
    return [a for v in value for a in flatten_outputs(v)]


def random_inputs(inputs: Sequence[InputSpec], seed: int = 0) -> list[np.ndarray]:
    """Random arrays for ``inputs`` (as tvmc's ``run`` without ``--inputs``)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in inputs:
        if spec.shape is None or not spec.dtype or any(isinstance(d, str) for d in spec.shape):
            raise ShapeError(
                f"input {spec} is not fully known (symbolic or unknown shape or dtype): give "
                f"inputs explicitly (or compile with fixed input shapes)"
            )
        shape = tuple(int(d) for d in spec.shape)
        dtype = numpy_dtype(spec.dtype)
        if np.issubdtype(dtype, np.floating):
            arrays.append(rng.standard_normal(shape).astype(dtype))
        elif dtype == np.bool_:
            arrays.append(rng.integers(0, 2, shape).astype(dtype))
        else:
            arrays.append(rng.integers(0, 10, shape).astype(dtype))
    return arrays


def read_arrays(path: str, names: Sequence[str], what: str = "input") -> dict[str, np.ndarray]:
    """Arrays ``names`` from an .npz file; ``what`` (input or weight) words the errors."""
    if not os.path.isfile(path):
        raise CompileError(f"{what}s file {path!r} does not exist")
    try:
        data = np.load(path)
    except Exception as err:
        raise CompileError(f"{what}s file {path!r} is not an .npz archive: {err}") from err
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise CompileError(
            f"{what}s file {path!r} holds one array; expected an .npz archive with one "
            f"array per {what} name ({', '.join(names)})"
        )
    with data:
        missing = [n for n in names if n not in data.files]
        if missing:
            raise CompileError(
                f"{what}s file {path!r} lacks {what}(s) {', '.join(missing)}; it holds "
                f"{', '.join(data.files) or 'nothing'}"
            )
        return {n: data[n] for n in names}


def load(
    path: str | os.PathLike[str], device: str = "cpu", params: Mapping[str, Any] | None = None
) -> Module:
    """Load an artifact written by :meth:`Module.export` to run on ``device``
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``); imports no plugin. ``params`` (weights by
    name) binds the weights of a model compiled with ``keep_params_in_input``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CompileError(f"artifact {path!r} does not exist")
    configure_thread_pool()  # before TVM's thread pool starts
    kind, _, index = device.partition(":")
    try:
        dev = tvm.device(kind, int(index or 0))
    except Exception as err:
        raise CompileError(f"unknown device {device!r}; expected e.g. 'cpu' or 'cuda:0'") from err
    if not dev.exist:
        raise CompileError(f"device {device!r} is not available on this machine")
    try:
        with filtered_tvm_log():
            module = Module(tvm.runtime.load_module(path), dev)
    except Exception as err:
        missing = re.search(r"(\S+): cannot open shared object file", str(err))
        if missing and os.path.basename(missing.group(1)) != os.path.basename(path):
            raise CompileError(
                f"artifact {path!r} needs the shared library {missing.group(1)!r}, which is "
                f"not found in the folders it was linked with (its RPATH) nor on "
                f"LD_LIBRARY_PATH: put it back, or export the artifact beside it"
            ) from err
        raise CompileError(
            f"{path!r} is not a tvmext artifact: {type(err).__name__}: {err}"
        ) from err
    module.accuracy = _embedded_accuracy(path)
    if params is not None:
        module.set_params(**params)
    return module


def _accuracy_object(report: AccuracyReport) -> str:
    """An object file defining the artifact's accuracy symbol: the report as JSON."""
    data = report.to_json().encode() + b"\0"
    source = f'extern "C" const char {ARTIFACT_SYMBOL}[] = {{{",".join(map(str, data))}}};\n'
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "accuracy_report.cc")
        with open(path, "w") as f:
            f.write(source)
        return compile_object(path, BuildFlags())


def _embedded_accuracy(path: str) -> AccuracyReport | None:
    """The accuracy report an artifact holds, or None (an fp32 artifact)."""
    library = ctypes.CDLL(os.path.abspath(path))
    try:
        text = ctypes.string_at(ctypes.addressof(ctypes.c_char.in_dll(library, ARTIFACT_SYMBOL)))
    except ValueError:
        return None
    return AccuracyReport.from_json(text.decode())

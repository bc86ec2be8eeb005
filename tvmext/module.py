"""``tvmext.Module``: a compiled model you can run, time and export; ``tvmext.load``.

The artifact is one ``.so`` (``export_library``) holding the Relax VM executable and
a ``tvmext_signature`` function that returns the inputs' names, shapes and dtypes as
JSON, so a loaded module checks its inputs without any plugin or source model.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import tvm
from tvm import relax

from .atomic_file import atomic_output
from .errors import CompileError, ShapeError

if TYPE_CHECKING:
    from tvmext.passes.partition_report import PartitionReport

SIGNATURE_FUNCTION = "tvmext_signature"


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


def signature_function(inputs: Sequence[InputSpec]) -> relax.Function:
    """A Relax function returning the inputs as JSON, to embed in the artifact."""
    text = json.dumps(
        {
            "inputs": [
                {
                    "name": i.name,
                    "shape": None if i.shape is None else list(i.shape),
                    "dtype": i.dtype,
                }
                for i in inputs
            ]
        }
    )
    func = relax.Function([], tvm.ir.StringImm(text), tvm.ir.StringType())
    return func.with_attr("global_symbol", SIGNATURE_FUNCTION)


def _read_signature(vm: relax.VirtualMachine) -> list[InputSpec]:
    data = json.loads(str(vm[SIGNATURE_FUNCTION]()))
    return [
        InputSpec(i["name"], None if i["shape"] is None else tuple(i["shape"]), i["dtype"])
        for i in data["inputs"]
    ]


class Module:
    """A compiled model: ``run`` / ``__call__``, ``benchmark``, ``export``.

    ``reports`` holds one partition report per external target (where each op went
    and why); ``link_options`` are what the external targets' code needs linked.
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
        if self.link_options:
            executable.jit(options=list(self.link_options))  # the VM then uses this library
        self._vm = relax.VirtualMachine(executable, self.device)
        self.inputs: list[InputSpec] = _read_signature(self._vm)

    @property
    def input_names(self) -> list[str]:
        """Input names in positional order."""
        return [i.name for i in self.inputs]

    def _bind(self, arrays: Sequence[Any], named: dict[str, Any]) -> list[np.ndarray]:
        if arrays and named:
            raise ShapeError("pass inputs either positionally or by name, not both")
        if named:
            unknown = sorted(set(named) - set(self.input_names))
            if unknown:
                raise ShapeError(
                    f"unknown input(s) {', '.join(unknown)}; inputs are "
                    f"{', '.join(self.input_names)}"
                )
            missing = [n for n in self.input_names if n not in named]
            if missing:
                raise ShapeError(f"missing input(s) {', '.join(missing)}")
            arrays = [named[n] for n in self.input_names]
        if len(arrays) != len(self.inputs):
            raise ShapeError(
                f"the model takes {len(self.inputs)} input(s) ({', '.join(self.input_names)}), "
                f"got {len(arrays)}"
            )
        bound: list[np.ndarray] = []
        symbols: dict[str, int] = {}
        for spec, value in zip(self.inputs, arrays, strict=True):
            array = np.asarray(value)
            shape = "any shape" if spec.shape is None else f"shape {list(spec.shape)}"
            expected = f"{spec.dtype or 'any dtype'} of {shape}"
            given = f"{array.dtype} of shape {list(array.shape)}"
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
                raise ShapeError(f"input {spec.name!r}: expected {expected}, got {given}")
            bound.append(array if array.flags.c_contiguous else array.copy(order="C"))
        return bound

    def run(self, *arrays: Any, **named: Any) -> list[np.ndarray]:
        """Run the model on NumPy arrays (positional or by input name); list of outputs."""
        inputs = [tvm.runtime.tensor(a, self.device) for a in self._bind(arrays, named)]
        return flatten_outputs(self._vm["main"](*inputs))

    __call__ = run

    def benchmark(
        self, *arrays: Any, repeat: int = 10, number: int = 5, **named: Any
    ) -> BenchmarkResult:
        """Time ``main`` with TVM's time evaluator (random inputs when none are given)."""
        if not arrays and not named:
            arrays = tuple(random_inputs(self.inputs))
        inputs = [tvm.runtime.tensor(a, self.device) for a in self._bind(arrays, named)]
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

    def export(self, path: str | os.PathLike[str]) -> str:
        """Write one self-contained ``.so`` atomically (temporary file, then rename)."""
        path = os.fspath(path)
        with atomic_output(path, executable=True) as tmp:
            try:
                if self.link_options:
                    self._executable.export_library(tmp, options=list(self.link_options))
                else:
                    self._executable.export_library(tmp)
            except Exception as err:
                raise CompileError(
                    f"exporting {path!r} failed: {type(err).__name__}: {err}"
                ) from err
        return path

    def __repr__(self) -> str:
        inputs = ", ".join(map(str, self.inputs))
        return f"<tvmext.Module ({inputs}) on {self.device}>"


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
        dtype = np.dtype(spec.dtype)
        if np.issubdtype(dtype, np.floating):
            arrays.append(rng.standard_normal(shape).astype(dtype))
        elif dtype == np.bool_:
            arrays.append(rng.integers(0, 2, shape).astype(dtype))
        else:
            arrays.append(rng.integers(0, 10, shape).astype(dtype))
    return arrays


def load(path: str | os.PathLike[str], device: str = "cpu") -> Module:
    """Load an artifact written by :meth:`Module.export` to run on ``device``
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``); imports no plugin."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CompileError(f"artifact {path!r} does not exist")
    kind, _, index = device.partition(":")
    try:
        dev = tvm.device(kind, int(index or 0))
    except Exception as err:
        raise CompileError(f"unknown device {device!r}; expected e.g. 'cpu' or 'cuda:0'") from err
    if not dev.exist:
        raise CompileError(f"device {device!r} is not available on this machine")
    try:
        library = tvm.runtime.load_module(path)
        return Module(library, dev)
    except Exception as err:
        raise CompileError(
            f"{path!r} is not a tvmext artifact: {type(err).__name__}: {err}"
        ) from err

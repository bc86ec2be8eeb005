"""Schedule verification: every scheduled PrimFunc against itself unscheduled.

A schedule may reorder, tile, inline and vectorize, but never change a result. This
builds each PrimFunc twice (as scheduled, and as TVM's naive loops), runs both on
the same random inputs of its shapes and compares every buffer afterwards. Symbolic
dims are given a small concrete value; integer inputs (indices, masks) stay below
the smallest dim of the function, so that a gather reads within bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import tirx
from tvm.sym.analyzer import Analyzer
from tvm.tirx.buffer import BufferType

from tvmext.errors import ScheduleVerificationError

# Scheduled reductions add in another order (SIMD partial sums): they differ from the
# naive loops by rounding, far below this bound relative to the output's magnitude.
RELATIVE_TOLERANCE = 1e-4
SYMBOLIC_DIM = 5


@dataclass(frozen=True)
class ScheduledFunc:
    """A PrimFunc before and after a tvmext schedule; ``source`` says whose schedule
    (``the default``, ``a tuned``, ``the op's``), as error messages word it."""

    name: str
    before: tirx.PrimFunc
    after: tirx.PrimFunc
    source: str


def _is_buffer(param: tirx.Var) -> bool:
    return isinstance(param.ty, BufferType)


def _scalar_dtype(var: tirx.Var) -> str:
    return str(var.ty.dtype)


def _buffer_shape(buf: tirx.Buffer, analyzer: Analyzer) -> tuple[int, ...] | None:
    shape = []
    for dim in buf.shape:
        expr = analyzer.simplify(dim)
        if not isinstance(expr, tirx.IntImm):
            return None
        shape.append(int(expr))
    return tuple(shape)


def _symbolic_values(func: tirx.PrimFunc) -> dict[tirx.Var, int]:
    """A value for every shape variable that a buffer dim names directly."""
    values: dict[tirx.Var, int] = {}
    for param in func.params:
        if _is_buffer(param):
            for dim in param.shape:
                if isinstance(dim, tirx.Var):
                    values.setdefault(dim, SYMBOLIC_DIM)
        elif _scalar_dtype(param).startswith("int"):
            values.setdefault(param, SYMBOLIC_DIM)
    return values


def _random_array(shape: tuple[int, ...], dtype: str, high: int, rng: np.random.Generator):
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.startswith(("int", "uint")):
        return rng.integers(0, max(1, high), shape).astype(dtype)
    if dtype.startswith("float"):
        return rng.standard_normal(shape).astype(dtype)
    raise TypeError(f"dtype {dtype}")


def _arguments(func: tirx.PrimFunc, rng: np.random.Generator) -> list[object] | str:
    """NumPy arrays and ints for ``func``'s parameters, or why there can be none."""
    values = _symbolic_values(func)
    analyzer = Analyzer()
    for var, value in values.items():
        analyzer.bind(var, tirx.const(value, _scalar_dtype(var)))
    shapes = {}
    for param in func.params:
        if _is_buffer(param):
            shape = _buffer_shape(param, analyzer)
            if shape is None:
                return f"buffer {param.name} has shape {list(param.shape)}, not fixed by its inputs"
            shapes[param.name] = shape
    dims = [d for shape in shapes.values() for d in shape if d > 0]
    high = min(dims, default=1)
    args: list[object] = []
    for param in func.params:
        if _is_buffer(param):
            try:
                args.append(_random_array(shapes[param.name], str(param.dtype), high, rng))
            except TypeError:
                return f"buffer {param.name} has dtype {param.dtype}"
        elif param in values:
            args.append(values[param])
        else:
            return f"parameter {param.name} has type {_scalar_dtype(param)}"
    return args


def _describe(func: tirx.PrimFunc, args: Sequence[object]) -> str:
    parts = []
    for param, arg in zip(func.params, args, strict=True):
        if isinstance(arg, np.ndarray):
            parts.append(f"{param.name}: {list(arg.shape)} {arg.dtype}")
        else:
            parts.append(f"{param.name} = {arg}")
    return ", ".join(parts)


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    if got.dtype == bool or not np.issubdtype(got.dtype, np.floating):
        return float(np.mean(got != want))
    same = (np.isnan(got) & np.isnan(want)) | (got == want)
    finite = np.isfinite(want)
    scale = float(np.max(np.abs(want[finite]), initial=0.0)) or 1.0
    diff = np.where(same, 0.0, np.abs(got.astype(np.float64) - want))
    if np.any(np.isnan(diff)):
        return float("inf")
    return float(np.max(diff, initial=0.0)) / scale


def _build(funcs: Sequence[tirx.PrimFunc], target: tvm.target.Target) -> tvm.runtime.Module:
    mod = tvm.IRModule(
        {f"f{i}": f.with_attr("global_symbol", f"f{i}") for i, f in enumerate(funcs)}
    )
    return tvm.tirx.build(mod, target=target)


def verify_schedules(
    funcs: Sequence[ScheduledFunc], target: tvm.target.Target, seed: int = 0
) -> int:
    """Run every function of ``funcs`` scheduled and unscheduled on the same random
    inputs; raise :class:`ScheduleVerificationError` naming the first that differs.

    Returns how many functions were compared (those whose inputs cannot be made, such
    as dims computed from values at run time, are skipped).
    """
    if not funcs:
        return 0
    rng = np.random.default_rng(seed)
    plain = [f.before.without_attr("tirx.is_scheduled") for f in funcs]
    naive = _build(plain, target)
    scheduled = _build([f.after for f in funcs], target)
    device = tvm.cpu()
    compared = 0
    for i, f in enumerate(funcs):
        args = _arguments(f.before, rng)
        if isinstance(args, str):
            continue
        results = []
        for lib in (naive, scheduled):
            tensors = [
                tvm.runtime.tensor(a.copy(), device) if isinstance(a, np.ndarray) else a
                for a in args
            ]
            try:
                lib[f"f{i}"](*tensors)
            except Exception as err:
                which = "unscheduled" if lib is naive else "scheduled"
                raise ScheduleVerificationError(
                    f"PrimFunc {f.name!r} ({which}) failed on random inputs "
                    f"{_describe(f.before, args)}: {type(err).__name__}: {err}"
                ) from err
            results.append([t.numpy() for t in tensors if isinstance(t, tvm.runtime.Tensor)])
        compared += 1
        buffers = [p.name for p in f.before.params if _is_buffer(p)]
        for name, want, got in zip(buffers, *results, strict=True):
            error = _relative_error(got, want)
            if not error <= RELATIVE_TOLERANCE:
                raise ScheduleVerificationError(
                    f"PrimFunc {f.name!r} ({f.source} schedule, target {target.kind.name}) "
                    f"computes buffer {name!r} wrong: relative error {error:.3g} against its "
                    f"unscheduled loops (tolerance {RELATIVE_TOLERANCE:g}); arguments "
                    f"{_describe(f.before, args)}"
                )
    return compared

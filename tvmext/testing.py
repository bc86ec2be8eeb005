"""``check_op``: one call that proves an op declaration right, or says what is wrong."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tvm
from tvm import relax

from tvmext.lowering.pipeline import build
from tvmext.opdef.declaration import CustomOp
from tvmext.opdef.native_build import shared_library_link_options
from tvmext.opdef.native_layer import native_shared_libraries
from tvmext.runtime.module import flatten_outputs
from tvmext.target.spec import parse_target

# (rtol, atol) for comparing compiled results with the NumPy reference.
TOLERANCES = {
    "float16": (1e-2, 1e-3),
    "bfloat16": (2e-2, 1e-2),
    "float32": (1e-5, 1e-6),
    "float64": (1e-10, 1e-12),
}
# (rtol, atol relative to the gradient's magnitude) for gradients vs finite differences.
GRAD_TOLERANCES = {"float16": (5e-2, 5e-2), "float32": (2e-3, 1e-4), "float64": (1e-6, 1e-8)}
_FD_SAMPLES = 24


def _tolerance(dtype: str, table: dict[str, tuple[float, float]]) -> tuple[float, float]:
    return table.get(dtype, (0.0, 0.0))


def _params(arrays: Sequence[np.ndarray]) -> list[relax.Var]:
    return [
        relax.Var(f"x{i}", relax.TensorType(a.shape, str(a.dtype))) for i, a in enumerate(arrays)
    ]


def _forward_module(
    op: CustomOp, arrays: Sequence[np.ndarray], attrs: dict[str, Any]
) -> tuple[tvm.IRModule, relax.Type]:
    bb = relax.BlockBuilder()
    params = _params(arrays)
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(op.call_relax(*params, **attrs))
        bb.emit_func_output(out)
    return bb.get(), out.ty


def _loss_module(
    op: CustomOp,
    arrays: Sequence[np.ndarray],
    attrs: dict[str, Any],
    cotangents: Sequence[np.ndarray],
    wrt: Sequence[int],
) -> tvm.IRModule:
    """``loss = sum_k sum(y_k * c_k)``, differentiated by ``relax.transform.Gradient``."""
    bb = relax.BlockBuilder()
    params = _params(arrays)
    with bb.function("main", params):
        with bb.dataflow():
            y = bb.emit(op.call_relax(*params, **attrs))
            outs = (
                [bb.emit(relax.TupleGetItem(y, k)) for k in range(len(cotangents))]
                if isinstance(y.ty, relax.TupleType)
                else [y]
            )
            terms = [
                bb.emit(relax.op.sum(relax.op.multiply(o, relax.const(c, str(c.dtype)))))
                for o, c in zip(outs, cotangents, strict=True)
            ]
            loss = terms[0]
            for t in terms[1:]:
                loss = bb.emit(relax.op.add(loss, t))
            out = bb.emit_output(loss)
        bb.emit_func_output(out)
    mod = bb.get()
    return relax.transform.Gradient("main", require_grads=[params[i] for i in wrt])(mod)


def _compare(
    what: str,
    got: np.ndarray,
    expected: np.ndarray,
    rtol: float,
    atol: float,
    positions: Sequence[tuple[Any, ...]] | None = None,
) -> str | None:
    """Describe where ``got`` and ``expected`` differ, or return None.

    ``positions`` maps indices of sampled values back to the tensor they came from.
    """
    if got.shape != expected.shape:
        return f"{what}: shape {got.shape}, expected {expected.shape}"
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    bad = ~(diff <= atol + rtol * np.abs(expected.astype(np.float64)))
    bad |= np.isnan(got) != np.isnan(expected)
    if not bad.any():
        return None
    worst = np.unravel_index(int(np.argmax(np.where(bad, diff, -1.0))), diff.shape)
    where = positions[int(worst[0])] if positions is not None else worst
    return (
        f"{what}: {int(bad.sum())} of {bad.size} elements differ beyond rtol={rtol:g}, "
        f"atol={atol:g}; worst at index {tuple(int(i) for i in where)}: got "
        f"{float(got[worst]):.7g}, expected {float(expected[worst]):.7g} "
        f"(abs diff {float(diff[worst]):.3g})"
    )


def _run(executable: Any, fn: str, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    vm = relax.VirtualMachine(executable, tvm.cpu())
    return flatten_outputs(vm[fn](*[tvm.runtime.tensor(a) for a in arrays]))


def _numeric_gradient(
    loss: Any, arrays: list[np.ndarray], i: int, coords: np.ndarray, eps: float
) -> np.ndarray:
    grads = []
    for flat in coords:
        plus = [a.copy() for a in arrays]
        minus = [a.copy() for a in arrays]
        idx = np.unravel_index(int(flat), arrays[i].shape)
        h = eps * max(1.0, abs(float(arrays[i][idx])))
        plus[i][idx] += h
        minus[i][idx] -= h
        grads.append((loss(plus) - loss(minus)) / (2 * h))
    return np.array(grads)


def check_op(
    op: CustomOp,
    *inputs: Any,
    targets: Iterable[str] | None = None,
    check_gradient: bool = True,
    seed: int = 0,
    **attrs: Any,
) -> None:
    """Check ``op`` on ``inputs`` and raise ``AssertionError`` listing every problem.

    Checks: the inferred type matches the computed outputs; the compiled compute
    matches ``@op.reference`` (tolerances by dtype); the compiled gradient of each
    input the op differentiates, taken by ``relax.transform.Gradient``, matches central
    finite differences (of the reference in float64 when there is one, else of the
    compiled op); the op compiles for every target it has a schedule for (and
    ``targets``); an exported ``.so`` loads and gives the same results. With PyTorch
    installed, also the op as ``torch.ops.<ns>.<name>`` (:mod:`tvmext.torch.op_check`).
    """
    arrays = [np.asarray(a) for a in inputs]
    arrays = [a if a.flags.c_contiguous else a.copy(order="C") for a in arrays]
    bound = op.attr_spec.bind(attrs)
    problems: list[str] = []
    host = parse_target("llvm").host

    mod, inferred = _forward_module(op, arrays, bound)
    executable = build(mod, host)
    outputs = flatten_outputs(
        relax.VirtualMachine(executable, tvm.cpu())["main"](
            *[tvm.runtime.tensor(a) for a in arrays]
        )
    )
    inferred_types = list(inferred.fields) if isinstance(inferred, relax.TupleType) else [inferred]
    if len(inferred_types) != len(outputs):
        problems.append(
            f"inferred type has {len(inferred_types)} output(s), compute gave {len(outputs)}"
        )
    for k, (ty, out) in enumerate(zip(inferred_types, outputs, strict=False)):
        shape = tuple(int(d) for d in ty.shape.values)
        if shape != out.shape or str(ty.dtype) != str(out.dtype):
            problems.append(
                f"output {k}: inferred {shape} {ty.dtype}, computed {out.shape} {out.dtype}"
            )

    if op.reference_fn is not None:
        expected = flatten_outputs(op.reference_fn(*arrays, **bound))
        if len(expected) != len(outputs):
            problems.append(f"reference returned {len(expected)} output(s), the op {len(outputs)}")
        for k, (got, exp) in enumerate(zip(outputs, expected, strict=False)):
            rtol, atol = _tolerance(str(got.dtype), TOLERANCES)
            problem = _compare(f"output {k} vs reference", got, exp, rtol, atol)
            if problem:
                problems.append(problem)

    if check_gradient and op.has_gradient:
        problems += _check_gradient(op, arrays, bound, outputs, executable, host, seed)

    claimed = set(op.schedules.keys()) | set(targets or ()) | {"llvm"}
    for kind in sorted(claimed - {"llvm"}):
        try:
            build(mod, parse_target(_compile_only_target(kind)).host)
        except Exception as err:
            problems.append(f"compiling for {kind!r} failed: {type(err).__name__}: {err}")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "op.so")
        needed = shared_library_link_options(native_shared_libraries(mod))
        executable.export_library(path, options=list(needed))
        loaded = _run(tvm.runtime.load_module(path), "main", arrays)
        for k, (got, exp) in enumerate(zip(loaded, outputs, strict=False)):
            problem = _compare(f"output {k} after export/load", got, exp, 0.0, 0.0)
            if problem:
                problems.append(problem)

    if importlib.util.find_spec("torch") is not None:
        from tvmext.torch.op_check import torch_problems

        problems += torch_problems(op, arrays, bound, outputs)

    if problems:
        shapes = ", ".join(f"{a.shape} {a.dtype}" for a in arrays)
        raise AssertionError(
            f"check_op({op.name!r}) on inputs ({shapes}) with attributes {bound}:\n  - "
            + "\n  - ".join(problems)
        )


def _compile_only_target(kind: str) -> dict[str, Any] | str:
    if kind == "cuda":
        return {"kind": "cuda", "arch": "sm_90"}
    return kind


def _differentiable_inputs(
    op: CustomOp, arrays: list[np.ndarray], attrs: dict[str, Any], outputs: list[np.ndarray]
) -> list[int]:
    """Float inputs whose gradient the op declares (a TE gradient may return None)."""
    floats = [i for i, a in enumerate(arrays) if np.issubdtype(a.dtype, np.floating)]
    if op.gradient_fn is None:  # native ops: the backward writes every input gradient
        return floats
    shapes = [(a.shape, str(a.dtype)) for a in [*arrays, *outputs, *outputs]]
    differentiated = op.differentiated_inputs(shapes, len(arrays), attrs)
    return [i for i in floats if i in differentiated]


def _check_gradient(
    op: CustomOp,
    arrays: list[np.ndarray],
    attrs: dict[str, Any],
    outputs: list[np.ndarray],
    forward: Any,
    host: tvm.target.Target,
    seed: int,
) -> list[str]:
    """Gradient problems; ``forward`` is the op's compiled forward (for finite
    differences when there is no reference)."""
    rng = np.random.default_rng(seed)
    wrt = _differentiable_inputs(op, arrays, attrs, outputs)
    if not wrt:
        return []
    cotangents = [rng.standard_normal(o.shape).astype(o.dtype) for o in outputs]
    grad_mod = _loss_module(op, arrays, attrs, cotangents, wrt)
    analytic = _run(build(grad_mod, host), "main_adjoint", arrays)[1:]

    if op.reference_fn is not None:
        ref = op.reference_fn

        def loss(xs: list[np.ndarray]) -> float:
            ys = flatten_outputs(ref(*[x.astype(np.float64) for x in xs], **attrs))
            return float(sum((y * c).sum() for y, c in zip(ys, cotangents, strict=True)))

        eps, source = 1e-6, "reference"
    else:

        def loss(xs: list[np.ndarray]) -> float:
            casts = [x.astype(a.dtype) for x, a in zip(xs, arrays, strict=True)]
            ys = _run(forward, "main", casts)
            return float(
                sum((y.astype(np.float64) * c).sum() for y, c in zip(ys, cotangents, strict=True))
            )

        eps, source = 1e-3, "compiled op"
    base = [a.astype(np.float64) for a in arrays]

    problems = []
    for grad, i in zip(analytic, wrt, strict=True):
        size = arrays[i].size
        coords = rng.choice(size, size=min(size, _FD_SAMPLES), replace=False)
        numeric = _numeric_gradient(loss, base, i, coords, eps)
        got = grad.reshape(-1)[coords]
        rtol, atol = _tolerance(str(arrays[i].dtype), GRAD_TOLERANCES)
        if source == "compiled op":
            rtol, atol = max(rtol, 5e-2), max(atol, 1e-2)
        scale = max(1.0, float(np.abs(numeric).max()))
        problem = _compare(
            f"gradient of input {op.input_name(i)!r} vs finite differences of the {source}",
            got,
            numeric,
            rtol,
            atol * scale,
            positions=[np.unravel_index(int(c), arrays[i].shape) for c in coords],
        )
        if problem:
            problems.append(problem)
    return problems

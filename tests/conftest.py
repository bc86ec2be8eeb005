"""Shared test helpers (a seeded generator, small Relax modules, checks against the ONNX
reference) and the tiers: tests marked native, onednn or device skip where this machine
lacks what they need."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

# pytest-xdist runs several workers at once: they share the cores between their TVM
# thread pools (and the notebooks' kernels, which inherit this) instead of each taking
# all of them. Set before tvmext is imported, which otherwise picks every core.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("TVM_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // workers)))
    # OpenMP threads (oneDNN's, PyTorch's) spin after each parallel region by default,
    # taking the core another worker is computing on: passive waiting ran the zoo tests
    # 14% faster on 2 cores. Set before any OpenMP runtime loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest
import tvm
from tvm import relax

import tvmext
from tvmext.lowering.pipeline import build
from tvmext.target.spec import parse_target


def _missing(need: str) -> str | None:
    """Why this machine cannot run tests marked ``need`` (None: it can)."""
    import platform
    import shutil

    from tvmext.errors import CompileError
    from tvmext.opdef.native_build import cxx_compiler

    compiler = cxx_compiler()
    if need in ("native", "onednn") and shutil.which(compiler) is None:
        return f"needs a C++ compiler; {compiler!r} is not installed"
    if need == "onednn":
        if platform.machine().lower() not in ("x86_64", "amd64"):
            return "needs oneDNN's target, which is x86-64"
        from tvmext.target.dnnl.library import find_onednn

        try:
            find_onednn()
        except CompileError as err:
            return str(err)
    if need == "device" and shutil.which("nvidia-smi") is None:
        return "needs an NVIDIA GPU"
    return None


_MISSING: dict[str, str | None] = {}


# The files that take minutes on 2 cores, longest first. xdist hands whole files to its
# workers in collection order (dev.sh: --dist loadfile --no-loadscope-reorder), so these
# start first and the short files fill in around them; by default xdist would order
# files by their number of tests, which put these few-test files last, one worker
# finishing them alone.
_LONGEST_FIRST = (
    "test_model_zoo.py",
    "test_cli.py",
    "test_docs.py",
    "test_tuning.py",
    "test_wheel.py",
    "test_tuning_rpc.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test run on the ``"dnnl, llvm"`` target (a parameter) is a oneDNN test; the
    longest files are collected first."""
    for item in items:
        params = getattr(item, "callspec", None)
        if params is not None and any("dnnl" in str(v) for v in params.params.values()):
            item.add_marker(pytest.mark.onednn)
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test marked ``native``, ``onednn`` or ``device`` where this machine lacks
    what it needs, saying what is missing (the tiers are in pyproject.toml)."""
    for need in ("native", "onednn", "device"):
        if item.get_closest_marker(need) is not None:
            if need not in _MISSING:
                _MISSING[need] = _missing(need)
            if _MISSING[need] is not None:
                pytest.skip(_MISSING[need])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


def single_op_module(op: tvmext.CustomOp, *types: relax.TensorType, **attrs: object):
    """``main(x0, x1, ...) = op(x0, x1, ..., **attrs)`` as an IRModule."""
    bb = relax.BlockBuilder()
    params = [relax.Var(f"x{i}", t) for i, t in enumerate(types)]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(op(*params, **attrs))
        bb.emit_func_output(out)
    return bb.get()


def main_module(shapes: Sequence[Sequence[Any]], build: Callable, dtype: str = "float32"):
    """``main(x0, x1, ...) = build(bb, [x0, x1, ...])`` as an IRModule, ``x_i`` a tensor
    of ``shapes[i]`` (ints and symbolic ``tirx.Var`` dims)."""
    bb = relax.BlockBuilder()
    params = [relax.Var(f"x{i}", relax.TensorType(s, dtype)) for i, s in enumerate(shapes)]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(build(bb, params))
        bb.emit_func_output(out)
    return bb.get()


def run_module(mod: tvm.IRModule, *arrays: np.ndarray, fn: str = "main"):
    """Compile ``mod`` for the host CPU with tvmext's pipeline and run ``fn``."""
    vm = relax.VirtualMachine(build(mod, parse_target("llvm").host), tvm.cpu())
    return vm[fn](*[tvm.runtime.tensor(a) for a in arrays])


def check_onnx_reference(
    model: Any, feeds: dict[str, np.ndarray], rtol: float = 1e-5, atol: float = 1e-6
) -> list[np.ndarray]:
    """Compile ``model`` for the default target, run it on ``feeds`` (name -> array, in
    input order) and compare each output with ONNX's reference evaluator: the same dtype
    and shape, values within ``rtol``/``atol`` (0 and 0: equal). Returns tvmext's outputs."""
    from onnx.reference import ReferenceEvaluator

    expected = ReferenceEvaluator(model).run(None, feeds)
    got = [np.asarray(g) for g in tvmext.compile(model)(*feeds.values())]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape, (g.dtype, g.shape, e.dtype, e.shape)
        np.testing.assert_allclose(g.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol)
    return got


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """The largest absolute difference over the largest magnitude of ``want``."""
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-6))


def python_with_onednn_isa(script: str, isa: str) -> subprocess.CompletedProcess[str]:
    """``script`` run by this Python beside the tests, with oneDNN's instruction set capped
    at ``isa`` (``ONEDNN_MAX_CPU_ISA``, read once per process: hence a process)."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa}
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(__file__), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )

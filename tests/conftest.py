"""Shared fixtures: a seeded generator and helpers to build small Relax modules."""

from __future__ import annotations

import os

# pytest-xdist runs several workers at once: they share the cores between their TVM
# thread pools (and the notebooks' kernels, which inherit this) instead of each taking
# all of them. Set before tvmext is imported, which otherwise picks every core.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("TVM_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // workers)))

import numpy as np
import pytest
import tvm
from tvm import relax

import tvmext
from tvmext.lowering.pipeline import build
from tvmext.target.spec import parse_target


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


def run_module(mod: tvm.IRModule, *arrays: np.ndarray, fn: str = "main"):
    """Compile ``mod`` for the host CPU with tvmext's pipeline and run ``fn``."""
    vm = relax.VirtualMachine(build(mod, parse_target("llvm").host), tvm.cpu())
    return vm[fn](*[tvm.runtime.tensor(a) for a in arrays])


# The files that take longest, slowest first (seconds on 2 cores). Each file runs on one
# worker (--dist loadfile), handed out in collection order (--no-loadscope-reorder in
# dev.sh): started first, they run beside the many short files instead of after them,
# and both workers end together.
_SLOW_FILES = (
    "test_onnx_conformance.py",  # ~250 s: 1,279 models compiled and run
    "test_docs.py",  # ~105 s: the site built, tutorials executed
    "test_tuning_rpc.py",  # ~120 s: MetaSchedule over RPC servers
    "test_model_zoo.py",
    "test_tuning.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Collect the slowest files first (see ``_SLOW_FILES``)."""
    rank = {name: i for i, name in enumerate(_SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))

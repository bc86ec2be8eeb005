"""Shared fixtures: a seeded generator and helpers to build small Relax modules."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

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

"""Eager execution of an op on NumPy arrays: compile once per signature, then call.

The cache key is (input shapes, dtypes, attributes) per op object, so redefining an
op with ``replace=True`` starts a fresh cache. Inputs are passed to the compiled
function without copying (DLPack) when they are C-contiguous and 64-byte aligned,
else copied into staging buffers owned by the cache entry; outputs come back as
NumPy views of TVM's buffers (no copy). Not thread-safe per op. Importing this module
installs :func:`run_eager` as the op layer's eager runner
(:mod:`tvmext.opdef.eager_runner`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tvm
from tvm import relax

from tvmext.errors import OpCallError
from tvmext.lowering.pipeline import build
from tvmext.opdef.declaration import CustomOp
from tvmext.opdef.eager_runner import install_eager_runner
from tvmext.runtime.zero_copy import usable_in_place
from tvmext.target.spec import parse_target


def _as_input(op_name: str, index: int, name: str, value: Any) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as err:
        raise OpCallError(
            f"op {op_name!r}: input {name!r} (#{index}) is not array-like: {err}"
        ) from err
    if array.dtype == object:
        raise OpCallError(f"op {op_name!r}: input {name!r} (#{index}) has dtype object")
    return array


class _Compiled:
    """A compiled signature plus aligned staging buffers for unaligned inputs."""

    def __init__(self, fn: Callable[..., Any], shapes_dtypes: Sequence[tuple[Any, str]]) -> None:
        self.fn = fn
        self.staging = [tvm.runtime.empty(shape, dtype) for shape, dtype in shapes_dtypes]
        self.views = [np.from_dlpack(t) for t in self.staging]

    def __call__(self, arrays: Sequence[np.ndarray]) -> Any:
        inputs = []
        for array, staged, view in zip(arrays, self.staging, self.views, strict=True):
            if usable_in_place(array):
                inputs.append(tvm.runtime.from_dlpack(array))
            else:  # TVM's kernels assume 64-byte aligned buffers
                np.copyto(view, array)
                inputs.append(staged)
        return _to_numpy(self.fn(*inputs))


def compile_signature(
    custom: CustomOp, shapes_dtypes: Sequence[tuple[tuple[int, ...], str]], attrs: dict[str, Any]
) -> Callable[..., Any]:
    """Compile ``custom`` for one input signature on the host CPU; return the VM function."""
    bb = relax.BlockBuilder()
    params = [
        relax.Var(custom.input_name(i).lstrip("#") or f"x{i}", relax.TensorType(shape, dtype))
        for i, (shape, dtype) in enumerate(shapes_dtypes)
    ]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(custom.call_relax(*params, **attrs))
        bb.emit_func_output(out)
    executable = build(bb.get(), parse_target("llvm").host)
    vm = relax.VirtualMachine(executable, tvm.cpu())
    return vm["main"]


def _to_numpy(value: Any) -> Any:
    if isinstance(value, tvm.runtime.Tensor):
        return np.from_dlpack(value)
    return tuple(_to_numpy(v) for v in value)


def run_eager(custom: CustomOp, args: Sequence[Any], attrs: dict[str, Any]) -> Any:
    """Run ``custom`` on NumPy inputs, compiling on the first call per signature."""
    custom.check_arity(len(args))
    bound = custom.attr_spec.bind(attrs)
    arrays = [_as_input(custom.name, i, custom.input_name(i), a) for i, a in enumerate(args)]
    key = (
        tuple((a.shape, a.dtype.str) for a in arrays),
        tuple(bound.items()),
    )
    compiled = custom.eager_cache.get(key)
    if compiled is None:
        signature = [(a.shape, str(a.dtype)) for a in arrays]
        compiled = _Compiled(compile_signature(custom, signature, bound), signature)
        custom.eager_cache[key] = compiled
    return compiled(arrays)


install_eager_runner(run_eager)

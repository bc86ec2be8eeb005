"""Small TVM kernels of an artifact that calls an external library run on one thread.

An artifact that calls oneDNN lets TVM's idle workers sleep
(``TVM_THREAD_POOL_SPIN_COUNT=0``, set by the oneDNN runtime: spinning workers took
the cores oneDNN's next primitive needs). A parallel TVM kernel then first wakes its
workers, and runs beside oneDNN's OpenMP threads that still spin after the primitive
before it: on 2 cores a 0.8 MB split (GPT-2's query/key/value) took 0.24 ms parallel
and 0.14 ms on one thread, and GPT-2's TVM kernels all ran faster on one thread
(6.7 -> 6.0 ms for the model, ``tvmext run --profile``). A kernel whose buffers hold
at most :data:`MAX_SERIAL_BYTES` in all therefore gets its default schedule without
parallel loops in such an artifact; larger ones, and every kernel of an artifact
without external code (whose workers spin, so that waking them costs nothing), stay
parallel. Op schedules and tuned records are kept as they are.
"""

from __future__ import annotations

import tvm
from tvm import tirx

# Buffers (inputs and outputs) of at most this many bytes: a kernel runs on one thread.
MAX_SERIAL_BYTES = 2 << 20


def _bytes(func: tirx.PrimFunc) -> int | None:
    """The bytes of ``func``'s buffer parameters, or None when a shape is symbolic."""
    total = 0
    for param in func.params:
        shape = getattr(param, "shape", None)  # buffers; scalar parameters have none
        if shape is None:
            continue
        if not all(isinstance(d, tirx.IntImm) for d in shape):
            return None
        count = 1
        for d in shape:
            count *= int(d)
        total += count * tvm.runtime.DataType(str(param.dtype)).bits // 8
    return total


def runs_serially(mod: tvm.IRModule, func: tirx.PrimFunc) -> bool:
    """Whether ``func`` of ``mod`` gets a schedule without parallel loops: a small kernel
    in a module with external code."""
    if mod.attrs is None or "external_mods" not in mod.attrs:
        return False
    size = _bytes(func)
    return size is not None and size <= MAX_SERIAL_BYTES

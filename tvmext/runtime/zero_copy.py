"""Handing NumPy arrays to TVM in place (DLPack) instead of copying them.

TVM's CPU kernels assume 64-byte aligned buffers, so TVM takes an array without a copy
only when it is C-contiguous, 64-byte aligned and writeable; NumPy's own allocations
are usually only 16-byte aligned. Arrays made by :func:`aligned` qualify: keep inputs
that are fed repeatedly (benchmark data, a serving loop's buffers) in them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tvm

ALIGN = 64
_DLPACK_DTYPES = "?bBhHiIlLqQefd"  # NumPy's own bool, integer and float types
_CPU = tvm.cpu().dlpack_device_type()


def aligned(array: Any) -> np.ndarray:
    """A C-contiguous, 64-byte aligned copy of ``array`` that TVM can use in place."""
    array = np.asarray(array)
    buffer = np.empty(array.nbytes + ALIGN, dtype=np.uint8)
    offset = (-buffer.ctypes.data) % ALIGN
    out = buffer[offset : offset + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def usable_in_place(array: np.ndarray) -> bool:
    """Whether TVM can take ``array`` without a copy (DLPack refuses read-only arrays)."""
    return array.flags.c_contiguous and array.flags.writeable and array.ctypes.data % ALIGN == 0


def to_tensor(array: np.ndarray, device: Any) -> Any:
    """``array`` as a TVM tensor on ``device``. On the CPU, in place when possible, else
    through an aligned NumPy copy (cheaper than TVM's own allocation and copy); dtypes
    NumPy cannot export through DLPack (ml_dtypes' bfloat16, float8, int4) go through
    TVM's copy, as do empty arrays."""
    if (
        device.dlpack_device_type() != _CPU
        or array.dtype.char not in _DLPACK_DTYPES
        or array.size == 0
    ):
        return tvm.runtime.tensor(array, device)
    return tvm.runtime.from_dlpack(array if usable_in_place(array) else aligned(array))

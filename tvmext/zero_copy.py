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
    """``array`` as a TVM tensor on ``device``: in place on the CPU when possible."""
    if device.dlpack_device_type() == tvm.cpu().dlpack_device_type() and usable_in_place(array):
        return tvm.runtime.from_dlpack(array)
    return tvm.runtime.tensor(array, device)

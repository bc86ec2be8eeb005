"""Element types narrower than a byte (int4, uint4, int2, uint2, float4_e2m1fn).

TVM packs these types two or four to a byte, and 0.27 can neither copy a NumPy array
of them into a tensor ("TensorCopyFromBytes: size mismatch": NumPy, through
``ml_dtypes``, stores one element a byte) nor allocate one inside a function
("dtype.bits % 8 == 0"). A compiled model therefore carries each such tensor in a
byte type: the integer types as their values in int8 or uint8, float4 as its 4-bit
code in uint8. This module converts at the boundary, between the ``ml_dtypes`` arrays
a user passes or gets back and those carriers.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

# Logical type (its NumPy name) -> the byte type that carries it.
CARRIER = {
    "int4": "int8",
    "int2": "int8",
    "uint4": "uint8",
    "uint2": "uint8",
    "float4_e2m1fn": "uint8",
}
# Types whose carrier holds a code (bit pattern), not the value.
CODED = {"float4_e2m1fn"}


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype named ``name``, including the ``ml_dtypes`` types (NumPy itself
    reads "int4" as a 4-byte int32)."""
    if name in CARRIER or (not hasattr(np, name) and hasattr(ml_dtypes, name)):
        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)


def to_carrier(array: np.ndarray) -> np.ndarray:
    """``array`` of a packed type in its carrier (other arrays as they are)."""
    name = array.dtype.name
    if name not in CARRIER:
        return array
    if name in CODED:
        return array.view(np.uint8)  # ml_dtypes keeps the code in the low bits
    return array.astype(CARRIER[name])


def from_carrier(array: Any, logical: str) -> np.ndarray:
    """The carrier ``array`` back as the packed type ``logical`` (an empty name, or a
    type that is not packed: as it is)."""
    if logical not in CARRIER:
        return array
    dtype = numpy_dtype(logical)
    return array.view(dtype) if logical in CODED else array.astype(dtype)

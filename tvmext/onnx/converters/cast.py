"""ONNX Cast and CastLike: bit-exact where TVM's casts are not.

TVM's own cast serves the byte-sized types it handles right; float8 (wrong values in
TVM 0.27, see :mod:`.float8`) and the sub-byte types (which TVM cannot hold, see
:mod:`.sub_byte`) are cast here. A sub-byte value arrives in its carrier, so its
logical type comes from the importer (``_input_dtypes``), not from the Relax type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tvm
from onnx.helper import tensor_dtype_to_np_dtype
from tvm import relax

from tvmext.onnx.converters.float8 import FLOAT8, cast_float8
from tvmext.onnx.converters.sub_byte import cast_sub_byte
from tvmext.onnx.registry import register_converter
from tvmext.runtime.packed_dtypes import CARRIER


def _logical(inputs: list[relax.Expr], attrs: dict[str, Any], index: int) -> str | None:
    """The ONNX type of input ``index`` (None: not a tensor of known type)."""
    known = attrs.get("_input_dtypes") or ()
    if index < len(known) and known[index]:
        return str(known[index])
    ty = getattr(inputs[index], "ty", None)
    return str(ty.dtype) if isinstance(ty, relax.TensorType) else None


def _cast(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    to: str,
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    source = _logical(inputs, attrs, 0)
    saturate, round_mode = bool(attrs.get("saturate", 1)), attrs.get("round_mode", "up")
    if source in CARRIER or to in CARRIER:
        return cast_sub_byte(bb, inputs[0], str(source), to, saturate, round_mode)
    if (source in FLOAT8 or to in FLOAT8) and not isinstance(inputs[0], tvm.ir.GenericConst):
        return cast_float8(bb, inputs[0], to, saturate, round_mode)
    return fallback()


@register_converter("", "Cast", 19)
def cast(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Cast; float8 and sub-byte sources or targets bit-exact."""
    return _cast(bb, inputs, attrs, tensor_dtype_to_np_dtype(attrs["to"]).name, fallback)


@register_converter("", "CastLike", 19)
def cast_like(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """CastLike; float8 and sub-byte sources or targets bit-exact."""
    to = _logical(inputs, attrs, 1)
    if to is None:
        return fallback()
    return _cast(bb, inputs, attrs, to, fallback)

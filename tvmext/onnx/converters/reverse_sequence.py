"""ONNX ``ReverseSequence`` (TVM 0.27's importer has no converter): per batch entry,
the first ``sequence_lens[i]`` steps along the time axis reversed, the rest copied."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tvm import relax, te, tirx

from tvmext.dims import static_shape
from tvmext.errors import ModelError
from tvmext.onnx.registry import register_converter


@register_converter("", "ReverseSequence", 10)
def reverse_sequence(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """Each output element reads the input at the mirrored time step where that step is
    below its batch entry's length (lengths beyond the time axis are clamped to it)."""
    data, lengths = inputs[0], inputs[1]
    shape = static_shape(data)
    if shape is None or len(shape) < 2:
        raise ModelError("input 0 (input) needs a static shape of rank >= 2")
    time_axis, batch_axis = attrs.get("time_axis", 0), attrs.get("batch_axis", 1)
    if {time_axis, batch_axis} != {0, 1}:
        raise ModelError(
            f"time_axis {time_axis} and batch_axis {batch_axis}: expected 0 and 1 in some order"
        )
    if static_shape(lengths) not in (None, [shape[batch_axis]]):
        raise ModelError(
            f"input 1 (sequence_lens) has shape {static_shape(lengths)}; expected "
            f"[{shape[batch_axis]}] (the batch axis of input 0)"
        )

    def compute(x: te.Tensor, lens: te.Tensor) -> te.Tensor:
        steps = shape[time_axis]

        def element(*idx: tirx.Var) -> tirx.PrimExpr:
            t = idx[time_axis]
            n = tirx.min(tirx.Cast("int64", lens[idx[batch_axis]]), tirx.const(steps, "int64"))
            source = list(idx)
            source[time_axis] = tirx.Select(t < n, n - 1 - t, t)
            return x(*source)

        return te.compute(x.shape, element, name="reverse_sequence")

    return bb.emit_te(compute, data, lengths)

"""ONNX AveragePool whose one window covers the whole input: a mean over H, W.

PyTorch models write a global pool as ``AvgPool2d(kernel, ceil_mode=True)`` with a
kernel far larger than the feature map (the ``transformers`` EfficientNet pools its
7x7 map with a 1280x1280 kernel). TVM lowers that literally: it pads the input to
the kernel's size (8 GB for EfficientNet-B0) before averaging the 49 real values.
With no explicit padding and a single window, the result is the mean over the input,
whatever ``ceil_mode`` and ``count_include_pad`` say (ONNX counts neither the
ceil-mode overhang nor, without explicit pads, any padding).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tvm import relax

from tvmext.onnx.converters.helpers import static_shape
from tvmext.onnx.registry import register_converter


def _covers_input(shape: list[int] | None, attrs: dict[str, Any]) -> bool:
    if shape is None or len(shape) < 3:
        return False
    spatial = shape[2:]
    kernel = list(attrs.get("kernel_shape", []))
    if len(kernel) != len(spatial) or attrs.get("auto_pad", "NOTSET") not in (
        "NOTSET",
        "VALID",
    ):
        return False
    if any(p != 0 for p in attrs.get("pads", [])) or any(
        d != 1 for d in attrs.get("dilations", [])
    ):
        return False
    return all(k >= n for k, n in zip(kernel, spatial, strict=True))


@register_converter("", "AveragePool", 7)
def average_pool(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ONNX AveragePool; one window over the whole input becomes a mean over H, W."""
    shape = static_shape(inputs[0])
    if not _covers_input(shape, attrs):
        return fallback()
    assert shape is not None
    return relax.op.mean(inputs[0], list(range(2, len(shape))), keepdims=True)

"""ONNX Conv with ``auto_pad`` SAME_UPPER / SAME_LOWER: explicit padding.

TVM 0.27's importer implements ``auto_pad`` SAME by padding the input in a separate
kernel before the convolution, even where the padding is zero (the 1x1 convolutions of
``transformers``' EfficientNet declare ``padding="same"``: 76 copies of an activation
per inference). With a static input shape the SAME padding is known at import:
``total = max(0, (ceil(n / s) - 1) * s + (k - 1) * d + 1 - n)`` per spatial axis,
the odd element at the end (SAME_UPPER) or the start (SAME_LOWER). It becomes the
convolution's own ``pads``, and TVM's converter does the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tvm import relax

from tvmext.dims import static_shape
from tvmext.onnx.registry import register_converter


def same_pads(
    spatial: list[int], kernel: list[int], strides: list[int], dilations: list[int], upper: bool
) -> list[int]:
    """ONNX's explicit ``pads`` (all begins, then all ends) for ``auto_pad`` SAME."""
    begins, ends = [], []
    for n, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
        total = max(0, (math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n)
        small, large = total // 2, total - total // 2
        begins.append(small if upper else large)
        ends.append(large if upper else small)
    return begins + ends


@register_converter("", "Conv", 1)
def conv(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[..., relax.Expr],
) -> relax.Expr:
    """ONNX Conv; ``auto_pad`` SAME on a static shape becomes explicit ``pads``."""
    mode = attrs.get("auto_pad", "NOTSET")
    shape, weight = static_shape(inputs[0]), static_shape(inputs[1])
    if mode not in ("SAME_UPPER", "SAME_LOWER") or shape is None or weight is None:
        return fallback()
    spatial = shape[2:]
    ones = [1] * len(spatial)
    pads = same_pads(
        spatial,
        list(attrs.get("kernel_shape", weight[2:])),
        list(attrs.get("strides", ones)),
        list(attrs.get("dilations", ones)),
        upper=mode == "SAME_UPPER",
    )
    return fallback(auto_pad=b"NOTSET", pads=pads)

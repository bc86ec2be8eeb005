"""ONNX ``ConvTranspose`` with ``output_shape``, which TVM 0.27's converter ignores.

The spec derives the pads from the requested size (``pads`` are then ignored):
``total = stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - out``,
split as ``auto_pad`` says (``SAME_UPPER`` puts the larger half at the end, anything
else at the start). A pad may be negative: the output then extends past the
transposed convolution's natural extent, where nothing is accumulated (only the
bias). Computed as the unpadded transposed convolution, cropped or zero-extended per
side, plus the bias.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tvm import relax

from tvmext.dims import static_shape
from tvmext.errors import ModelError
from tvmext.onnx.registry import register_converter

_LAYOUTS = {
    1: (relax.op.nn.conv1d_transpose, "NCW", "IOW"),
    2: (relax.op.nn.conv2d_transpose, "NCHW", "IOHW"),
    3: (relax.op.nn.conv3d_transpose, "NCDHW", "IODHW"),
}


@register_converter("", "ConvTranspose", 1)
def conv_transpose(
    bb: relax.BlockBuilder,
    inputs: list[relax.Expr],
    attrs: dict[str, Any],
    fallback: Callable[[], relax.Expr],
) -> relax.Expr:
    """ConvTranspose to an explicit ``output_shape``; without one, TVM's converter."""
    if "output_shape" not in attrs:
        return fallback()
    data, weight = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    shape, kernel = static_shape(data), static_shape(weight)
    if shape is None or kernel is None or len(shape) - 2 not in _LAYOUTS:
        raise ModelError(
            f"inputs 0 (X) and 1 (W) have shapes {shape} and {kernel}; expected static "
            "shapes of rank 3 to 5"
        )
    n = len(shape) - 2
    requested = list(attrs["output_shape"])
    if len(requested) == n + 2:  # given with the batch and channel dimensions
        requested = requested[2:]
    if len(requested) != n:
        raise ModelError(f"output_shape {attrs['output_shape']}: expected {n} spatial sizes")
    strides = list(attrs.get("strides", [1] * n))
    dilations = list(attrs.get("dilations", [1] * n))
    output_padding = list(attrs.get("output_padding", [0] * n))
    kernel_shape = list(attrs.get("kernel_shape", kernel[2:]))
    if kernel_shape != kernel[2:]:
        raise ModelError(
            f"kernel_shape {kernel_shape}: expected the spatial shape {kernel[2:]} of input 1 (W)"
        )
    upper = attrs.get("auto_pad", "NOTSET") == "SAME_UPPER"
    op = relax.op
    conv, data_layout, kernel_layout = _LAYOUTS[n]
    out = conv(
        data,
        weight,
        strides=strides,
        padding=[0] * (2 * n),
        dilation=dilations,
        groups=attrs.get("group", 1),
        data_layout=data_layout,
        kernel_layout=kernel_layout,
    )
    extend, begins, ends = [0, 0, 0, 0], [], []
    for i in range(n):
        natural = strides[i] * (shape[i + 2] - 1) + (kernel[i + 2] - 1) * dilations[i] + 1
        total = natural + output_padding[i] - requested[i]
        small, large = total // 2, total - total // 2
        begin = small if upper else large
        # Output position o reads the natural one at o + begin, zero outside it.
        before, after = max(-begin, 0), max(requested[i] + begin - natural, 0)
        extend += [before, after]
        begins.append(begin + before)
        ends.append(begin + before + requested[i])
    if any(extend):
        out = op.nn.pad(out, extend, "constant", 0.0)
    out = op.strided_slice(out, list(range(2, n + 2)), begins, ends)
    if bias is not None:
        out = op.add(out, op.reshape(bias, [1, -1] + [1] * n))
    return out

"""Fold an explicit zero pad into the convolution that reads it.

Models exported from TensorFlow-style code (``transformers``' MobileNetV2 and
EfficientNet pad with TensorFlow's asymmetric "same" rule) write
``conv2d(pad(x, widths, 0), W)``. The pad is a separate kernel that materializes a
padded copy of the activation (and, on oneDNN, a layout transpose before and after it).
Zero padding composes by addition, so this equals ``conv2d(x, W)`` with the pad's
spatial widths added to the convolution's own (top, left, bottom, right) padding,
which every backend implements without a copy, asymmetric widths included.

Precondition: the pad is ``nn.pad`` (tvmext's ONNX importer emits it for constant-mode
Pad nodes) with mode ``constant`` and value 0, and pads only the convolution's spatial
axes (per its ``data_layout``); otherwise the expression is left as it is. Runs in the
``prepare`` phase, before layouts are chosen.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, is_op, wildcard

from tvmext.pass_registry import function_pass, register_pass


def _patterns() -> tuple[dict[str, DFPattern], DFPattern]:
    parts = {"pad": is_op("relax.nn.pad")(wildcard())}
    parts["conv"] = is_op("relax.nn.conv2d")(parts["pad"], wildcard())
    return parts, parts["conv"]


def _fold(expr: relax.Expr, matches: dict[DFPattern, relax.Expr], parts: dict[str, Any]) -> Any:
    pad, conv = matches[parts["pad"]], matches[parts["conv"]]
    widths = [int(w) for w in pad.attrs.pad_width]
    layout = str(conv.attrs.data_layout)
    if str(pad.attrs.pad_mode) != "constant" or float(pad.attrs.pad_value) != 0.0:
        return expr
    if len(widths) != 2 * len(layout) or not set("HW") <= set(layout):
        return expr
    h, w = layout.index("H"), layout.index("W")
    if any(
        widths[2 * axis : 2 * axis + 2] != [0, 0]
        for axis in range(len(layout))
        if axis not in (h, w)
    ):
        return expr
    top, left, bottom, right = (int(p) for p in conv.attrs.padding)
    padding = (
        top + widths[2 * h],
        left + widths[2 * w],
        bottom + widths[2 * h + 1],
        right + widths[2 * w + 1],
    )
    a = conv.attrs
    return relax.op.nn.conv2d(
        pad.args[0],
        conv.args[1],
        strides=[int(s) for s in a.strides],
        padding=padding,
        dilation=[int(d) for d in a.dilation],
        groups=int(a.groups),
        data_layout=layout,
        kernel_layout=str(a.kernel_layout),
        out_layout=str(a.out_layout),
        out_dtype=a.out_dtype,
    )


@register_pass("tvmext.fold_pad_into_conv", targets=("*",))
def fold_pad_into_conv() -> tvm.transform.Pass:
    """Rewrite ``conv2d(nn.pad(x, spatial widths, 0), W)`` to ``conv2d(x, W)`` with the
    widths added to the convolution's padding."""
    parts, pattern = _patterns()

    return function_pass(
        "tvmext.FoldPadIntoConv",
        lambda func: relax.dpl.rewrite_call(pattern, lambda e, m: _fold(e, m, parts), func),
    )

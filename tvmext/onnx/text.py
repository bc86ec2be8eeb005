"""An ONNX model in ONNX's own text syntax (``onnx.printer``), as ``--dump-ir`` writes
the model after each of the importer's ONNX rewrites. Weights print by type and shape
only: their values would bury the graph."""

from __future__ import annotations

import math

import onnx

_SHOWN_ELEMENTS = 16  # smaller initializers (scales, zero points, shapes) keep values


def _elided(tensor: onnx.TensorProto) -> onnx.TensorProto:
    short = onnx.TensorProto()
    short.name, short.data_type = tensor.name, tensor.data_type
    short.dims.extend(tensor.dims)
    short.data_location = onnx.TensorProto.EXTERNAL
    note = short.external_data.add()
    note.key, note.value = "values", "not shown"
    return short


def onnx_text(model: onnx.ModelProto) -> str:
    """``model`` as ONNX text, initializers of more than 16 elements without values."""
    shown = onnx.ModelProto()
    shown.CopyFrom(model)
    for index, tensor in enumerate(shown.graph.initializer):
        if math.prod(tensor.dims) > _SHOWN_ELEMENTS:
            shown.graph.initializer[index].CopyFrom(_elided(tensor))
    return str(onnx.printer.to_text(shown))

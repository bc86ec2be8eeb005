"""ONNX tensors of sub-byte types, rewritten into their byte carriers for TVM.

See :mod:`tvmext.runtime.packed_dtypes` for why: TVM 0.27 can hold no int4, uint4,
int2, uint2 or float4e2m1 tensor. Before import, every graph input, output, value
info, initializer and Constant of those types is given its carrier type (the
initializers' values converted), and the logical type of every value is kept: the
converters that give the types meaning (Cast, CastLike) read it, the rest (Identity,
Reshape, Transpose, ...) move carrier bytes as they move any other.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, numpy_helper

from tvmext.runtime.packed_dtypes import CARRIER, to_carrier

_PACKED = {
    getattr(TensorProto, name)
    for name in ("INT4", "UINT4", "INT2", "UINT2", "FLOAT4E2M1")
    if hasattr(TensorProto, name)
}


def _name(elem_type: int) -> str:
    return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name


def _carrier_type(elem_type: int) -> int:
    return TensorProto.INT8 if CARRIER[_name(elem_type)] == "int8" else TensorProto.UINT8


def _values(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    return [*graph.input, *graph.output, *graph.value_info]


def _uses_packed(model: onnx.ModelProto) -> bool:
    graph = model.graph
    if any(v.type.tensor_type.elem_type in _PACKED for v in _values(graph)):
        return True
    if any(i.data_type in _PACKED for i in graph.initializer):
        return True
    return any(
        (a.name == "to" and a.i in _PACKED) or a.t.data_type in _PACKED
        for node in graph.node
        for a in node.attribute
    )


def _carried_tensor(tensor: onnx.TensorProto) -> onnx.TensorProto:
    return numpy_helper.from_array(to_carrier(numpy_helper.to_array(tensor)), tensor.name)


def logical_types(model: onnx.ModelProto) -> dict[str, str]:
    """The NumPy dtype name of each typed value of ``model`` (inputs, initializers,
    outputs and, by ONNX shape inference, intermediate values)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is a help: the declared types still count
        inferred = model
    graph = inferred.graph
    types = {
        v.name: _name(v.type.tensor_type.elem_type)
        for v in _values(graph)
        if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type
    }
    types.update({i.name: _name(i.data_type) for i in model.graph.initializer})
    return types


def carry_packed_types(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, str]]:
    """``model`` with sub-byte tensors in their carriers, and the logical type of each
    value (empty, and the model itself, when it has none)."""
    if not _uses_packed(model):
        return model, {}
    types = logical_types(model)
    carried = onnx.ModelProto()
    carried.CopyFrom(model)
    graph = carried.graph
    for value in _values(graph):
        tensor = value.type.tensor_type
        if tensor.elem_type in _PACKED:
            tensor.elem_type = _carrier_type(tensor.elem_type)
    for index, init in enumerate(graph.initializer):
        if init.data_type in _PACKED:
            graph.initializer[index].CopyFrom(_carried_tensor(init))
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type in _PACKED:
                attr.t.CopyFrom(_carried_tensor(attr.t))
    return carried, types


def boundary_dtypes(model: onnx.ModelProto) -> tuple[dict[str, str], list[str]]:
    """The sub-byte graph inputs (name -> logical type) and the logical type of each
    graph output ("" where it is not sub-byte): what a compiled model's caller passes
    and gets back in place of the carriers."""
    inputs = {
        v.name: _name(v.type.tensor_type.elem_type)
        for v in model.graph.input
        if v.type.tensor_type.elem_type in _PACKED
    }
    outputs = [
        _name(v.type.tensor_type.elem_type) if v.type.tensor_type.elem_type in _PACKED else ""
        for v in model.graph.output
    ]
    return inputs, outputs if any(outputs) else []

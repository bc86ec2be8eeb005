"""Checks of an ONNX model before TVM's importer sees it.

TVM trusts its input: an initializer whose bytes do not fit its dims fails deep in
numpy with no name, a dim of -1 or 2**31 turns into nonsense shapes or an int32
overflow at scheduling time, and an unknown element type is a bare KeyError. These
checks catch such models first, and re-word the ONNX checker's findings, so that every
error names the node (op type and name or index), the input or initializer at fault
and what was expected, or the model file for whole-model problems.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
from onnx import numpy_helper

from tvmext.errors import ModelError

# TVM indexes tensors with int32 unless told otherwise: a larger static tensor
# overflows while scheduling, so it is refused here with the input named.
MAX_ELEMENTS = 2**31 - 1


def node_label(node: onnx.NodeProto, index: int) -> str:
    """``node 'name' (domain::OpType)``, or ``node '#index' ...`` for an unnamed node."""
    return f"node {node.name or f'#{index}'!r} ({node.domain or 'ai.onnx'}::{node.op_type})"


def _np_dtype(elem_type: int) -> np.dtype | None:
    """The numpy dtype of an ONNX element type (None: not a known tensor type)."""
    if elem_type == onnx.TensorProto.UNDEFINED:
        return None
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type)
    except KeyError:
        return None


def _error(model: onnx.ModelProto, kind: str, name: str, problem: str) -> ModelError:
    """``input 'x' (input 1 of node 'fc' (ai.onnx::Gemm)): problem``. Built only when
    raising, since finding the first user scans every node."""
    for index, node in enumerate(model.graph.node):
        if name in node.input:
            used = f" (input {list(node.input).index(name)} of {node_label(node, index)})"
            return ModelError(f"{kind} {name!r}{used}: {problem}")
    return ModelError(f"{kind} {name!r}: {problem}")


def _check_inputs(model: onnx.ModelProto) -> None:
    initializers = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        tensor = value.type.tensor_type
        if _np_dtype(tensor.elem_type) is None:
            raise _error(
                model,
                "input",
                value.name,
                f"element type {tensor.elem_type} is not a known ONNX tensor type",
            )
        elements = 1
        for axis, dim in enumerate(tensor.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value < 0:
                raise _error(
                    model,
                    "input",
                    value.name,
                    f"dim {axis} is {dim.dim_value}; expected a size >= 0 or a symbolic name",
                )
            elements *= dim.dim_value if dim.HasField("dim_value") else 1
        if elements > MAX_ELEMENTS:
            shape = [
                d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor.shape.dim
            ]
            raise _error(
                model,
                "input",
                value.name,
                f"shape {shape} has {elements} elements; at most {MAX_ELEMENTS} are supported",
            )


# Ops whose window attributes TVM takes as given: a kernel, stride or dilation below 1
# compiles into a wrong (or divide-by-zero) loop nest rather than an error.
_WINDOW_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "ConvInteger"}
_POSITIVE = ("kernel_shape", "strides", "dilations", "group")
_INDEX_LIMIT = 2**31


def _check_attributes(model: onnx.ModelProto) -> None:
    """Window ops' sizes are positive, pads not negative, all below TVM's int32 index
    limit; a convolution's ``kernel_shape`` matches its weight initializer."""
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    for index, node in enumerate(model.graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in _WINDOW_OPS:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        for name, value in attrs.items():
            if name not in (*_POSITIVE, "pads") or not isinstance(value, int | list):
                continue
            values = value if isinstance(value, list) else [value]
            low = 1 if name in _POSITIVE else 0
            if not all(isinstance(v, int) and low <= v < _INDEX_LIMIT for v in values):
                raise ModelError(
                    f"{node_label(node, index)}: attribute {name} is {value}; expected "
                    f"integers from {low} to {_INDEX_LIMIT - 1}"
                )
        kernel = attrs.get("kernel_shape")
        weight = weights.get(node.input[1]) if len(node.input) > 1 else None
        if node.op_type == "Conv" and kernel is not None and weight and kernel != weight[2:]:
            raise ModelError(
                f"{node_label(node, index)}: attribute kernel_shape is {kernel}, but weight "
                f"{node.input[1]!r} has dims {weight}; expected kernel_shape {weight[2:]}"
            )


# Sub-byte types pack several elements a byte in raw_data.
_SUB_BYTE_BITS = {
    getattr(onnx.TensorProto, name): bits
    for name, bits in (
        ("INT4", 4),
        ("UINT4", 4),
        ("FLOAT4E2M1", 4),
        ("INT2", 2),
        ("UINT2", 2),
        ("FLOAT6E2M3", 6),
        ("FLOAT6E3M2", 6),
    )
    if hasattr(onnx.TensorProto, name)
}


def _check_initializers(model: onnx.ModelProto) -> None:
    for init in model.graph.initializer:
        dtype = _np_dtype(init.data_type)
        if dtype is None:
            raise _error(
                model,
                "initializer",
                init.name,
                f"data type {init.data_type} is not a known ONNX tensor type",
            )
        if any(d < 0 for d in init.dims):
            raise _error(
                model, "initializer", init.name, f"dims {list(init.dims)} must not be negative"
            )
        if init.data_location == onnx.TensorProto.EXTERNAL:
            continue  # the bytes live in another file, checked when loaded
        elements = int(np.prod(init.dims, dtype=np.int64))
        if (
            init.HasField("raw_data")
            and dtype.itemsize
            and init.data_type != onnx.TensorProto.STRING
        ):
            bits = _SUB_BYTE_BITS.get(init.data_type, dtype.itemsize * 8)
            expected = (elements * bits + 7) // 8
            if len(init.raw_data) != expected:
                raise _error(
                    model,
                    "initializer",
                    init.name,
                    f"raw_data holds {len(init.raw_data)} bytes; dims "
                    f"{list(init.dims)} of {onnx.TensorProto.DataType.Name(init.data_type)} "
                    f"need {expected}",
                )
            continue
        try:
            numpy_helper.to_array(init)
        except Exception as err:
            raise _error(
                model,
                "initializer",
                init.name,
                f"its values do not fit dims {list(init.dims)} of "
                f"{onnx.TensorProto.DataType.Name(init.data_type)}: {err}",
            ) from err


# Where the ONNX checker names the node it found at fault.
_CHECKER_NODE = [
    re.compile(r"[Nn]ame: (?P<name>\S+) OpType:"),
    re.compile(r"Node\((?P<name>[^)]+)\)"),
    re.compile(r"in '(?P<name>[^'\s]+) : "),
]
# The checker's words for an input nothing produces before the node that reads it.
_UNSORTED = re.compile(r"input '(?P<input>[^']*)' of node")
# ... and for an output written twice (the second writer is at fault).
_REWRITTEN = re.compile(r"however '(?P<output>[^']*)' has been used as output")


def _checker_error(model: onnx.ModelProto, err: Exception, source: str) -> ModelError:
    """The ONNX checker's error, led by the node it is about (or the model file)."""
    text = str(err)
    first = " ".join(text.strip().splitlines()[0].split()) if text.strip() else type(err).__name__
    unsorted = _UNSORTED.search(text)
    if unsorted:
        first = (
            f"input {unsorted['input']!r} is neither a graph input, an initializer nor "
            f"the output of an earlier node"
        )
    names = [m["name"] for p in _CHECKER_NODE if (m := p.search(text))]
    rewritten = _REWRITTEN.search(text)
    if rewritten:
        writers = [
            (i, n) for i, n in enumerate(model.graph.node) if rewritten["output"] in n.output
        ]
        if len(writers) > 1:
            index, node = writers[1]
            return ModelError(
                f"{node_label(node, index)}: output {rewritten['output']!r} is already written "
                f"by {node_label(writers[0][1], writers[0][0])}; expected each name written once"
            )
    for index, node in enumerate(model.graph.node):
        if node.name in names or (unsorted and not names and unsorted["input"] in node.input):
            return ModelError(f"{node_label(node, index)}: {first}")
    return ModelError(f"{source} is invalid: {first}")


def validate(model: onnx.ModelProto, source: str) -> None:
    """Raise a :class:`ModelError` naming what is wrong with ``model``; ``source`` (the
    model file, or a description) words whole-model problems."""
    _check_inputs(model)
    _check_initializers(model)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        raise _checker_error(model, err, source) from err
    # After the checker, which has checked the attributes' types.
    _check_attributes(model)

"""The wording of the importer's model checks: each error names the node, input or
initializer at fault and what was expected."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tvmext
from tvmext.onnx.validation import validate


def _conv_model(kernel_shape: list[int]) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=kernel_shape)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "h", "w"])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _relu_model(elem_type: int = TensorProto.FLOAT) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="act")],
        "g",
        [helper.make_tensor_value_info("x", elem_type, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_truncated_raw_data_names_initializer_node_and_byte_counts():
    model = _conv_model([3, 3])
    model.graph.initializer[0].raw_data = model.graph.initializer[0].raw_data[:-4]
    with pytest.raises(
        tvmext.ModelError,
        match=r"^initializer 'w' \(input 1 of node 'conv' \(ai.onnx::Conv\)\): raw_data holds "
        r"428 bytes; dims \[4, 3, 3, 3\] of FLOAT need 432$",
    ):
        validate(model, "m.onnx")


def test_kernel_shape_that_does_not_match_the_weight():
    with pytest.raises(
        tvmext.ModelError,
        match=r"^node 'conv' \(ai.onnx::Conv\): attribute kernel_shape is \[5, 5\], but weight "
        r"'w' has dims \[4, 3, 3, 3\]; expected kernel_shape \[3, 3\]$",
    ):
        validate(_conv_model([5, 5]), "m.onnx")


def test_negative_kernel_shape_names_the_range():
    with pytest.raises(
        tvmext.ModelError,
        match=r"^node 'conv' \(ai.onnx::Conv\): attribute kernel_shape is \[-1, 3\]; expected "
        r"integers from 1 to 2147483647$",
    ):
        validate(_conv_model([-1, 3]), "m.onnx")


def test_unknown_element_type_names_input_and_node():
    with pytest.raises(
        tvmext.ModelError,
        match=r"^input 'x' \(input 0 of node 'act' \(ai.onnx::Relu\)\): element type 1000 is "
        r"not a known ONNX tensor type$",
    ):
        validate(_relu_model(elem_type=1000), "m.onnx")


def test_valid_model_passes():
    validate(_conv_model([3, 3]), "m.onnx")
    validate(_relu_model(), "m.onnx")


def test_constant_gather_index_out_of_range_is_a_compile_error():
    indices = numpy_helper.from_array(np.array([0, 7], np.int64), "idx")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["x", "idx"], ["y"], name="pick", axis=0)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
        [indices],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(
        tvmext.ModelError,
        match=r"node 'pick' \(ai.onnx::Gather\).*input 1 \(indices\) holds 7, out of range for "
        r"axis 0 of input 0 \(size 5\); expected indices in \[-5, 5\)",
    ):
        tvmext.compile(model)


@pytest.mark.parametrize(
    ("node", "shapes", "expected"),
    [
        # A converter's own check: the message is the node's, not a Python exception's.
        (
            helper.make_node("LpNormalization", ["x"], ["y"], p=3, name="lpn"),
            ([2, 3], [2, 3]),
            "node 'lpn' (ai.onnx::LpNormalization): attribute p is 3; expected 1 or 2",
        ),
        (
            helper.make_node("Resize", ["x", "", "s"], ["y"], mode="bogus", name="up"),
            ([1, 1, 2, 3], [1, 1, 4, 6]),
            "node 'up' (ai.onnx::Resize): mode 'bogus' is not one of",
        ),
    ],
)
def test_converter_errors_name_the_node(node, shapes, expected):
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shapes[0])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shapes[1])],
        initializer=[scales] if node.op_type == "Resize" else [],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(tvmext.ModelError) as caught:
        tvmext.compile(model, "llvm")
    assert str(caught.value).startswith(expected), str(caught.value)

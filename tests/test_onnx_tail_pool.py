"""tvmext's ConvTranspose (output_shape), MaxUnpool (output_shape) and MaxPool
(Indices) converters on small models, checked against the ONNX reference
implementation or NumPy where the reference is wrong."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import check_onnx_reference
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import tvmext
from tvmext.errors import ModelError


def _model(node, inputs, outputs, opset=18):
    graph = helper.make_graph([node], "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _info(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _conv_transpose_model(x_shape, w_shape, out_shape, with_bias=False, **attrs):
    names = ["x", "w", "b"] if with_bias else ["x", "w"]
    node = helper.make_node("ConvTranspose", names, ["y"], **attrs)
    inputs = [_info("x", TensorProto.FLOAT, x_shape), _info("w", TensorProto.FLOAT, w_shape)]
    if with_bias:
        inputs.append(_info("b", TensorProto.FLOAT, [w_shape[1] * attrs.get("group", 1)]))
    return _model(node, inputs, [_info("y", TensorProto.FLOAT, out_shape)])


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "output_shape", "attrs", "pads"),
    [
        # Negative pads (the output extends past the natural extent): the reference
        # takes output_shape itself.
        ([1, 1, 3, 3], [1, 2, 3, 3], [10, 8], {"strides": [3, 2]}, None),
        ([1, 1, 3, 3], [1, 2, 3, 3], [10, 8], {"strides": [3, 2], "auto_pad": "SAME_UPPER"}, None),
        ([1, 1, 2, 2, 2], [1, 1, 2, 2, 2], [5, 4, 3], {"strides": [2, 2, 1]}, None),
        # Cropping: the reference fails on output_shape; the same node with the pads the
        # spec derives (the larger half at the start, at the end for SAME_UPPER).
        ([2, 2, 4, 3], [2, 1, 3, 2], [7, 5], {"strides": [2, 2], "group": 2}, [1, 1, 1, 0]),
        ([1, 2, 5], [2, 3, 3], [12], {"strides": [2], "dilations": [2]}, [1, 0]),
        (
            [1, 2, 5],
            [2, 3, 3],
            [12],
            {"strides": [2], "dilations": [2], "auto_pad": "SAME_UPPER"},
            [0, 1],
        ),
        ([1, 2, 5], [2, 3, 3], [1, 3, 8], {"strides": [2], "pads": [5, 5]}, [2, 1]),
    ],
)
def test_conv_transpose_output_shape(x_shape, w_shape, output_shape, attrs, pads, rng):
    channels = w_shape[1] * attrs.get("group", 1)
    out_shape = [x_shape[0], channels, *output_shape[-len(x_shape) + 2 :]]
    # The reference adds the first group's biases to every group: no bias with groups.
    bias = "group" not in attrs
    model = _conv_transpose_model(
        x_shape, w_shape, out_shape, bias, output_shape=output_shape, **attrs
    )
    feeds = {
        "x": rng.standard_normal(x_shape).astype(np.float32),
        "w": rng.standard_normal(w_shape).astype(np.float32),
    }
    if bias:
        feeds["b"] = rng.standard_normal([channels]).astype(np.float32)
    if pads is None:
        check_onnx_reference(model, feeds, rtol=1e-4, atol=1e-5)
        return
    explicit = {k: v for k, v in attrs.items() if k not in ("pads", "auto_pad")}
    reference = _conv_transpose_model(x_shape, w_shape, out_shape, bias, pads=pads, **explicit)
    (expected,) = ReferenceEvaluator(reference).run(None, feeds)
    (y,) = tvmext.compile(model)(*feeds.values())
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_conv_transpose_output_shape_of_wrong_length():
    model = _conv_transpose_model([1, 1, 3, 3], [1, 1, 3, 3], [1, 1, 5, 5], output_shape=[5, 5, 5])
    with pytest.raises(ModelError, match="output_shape"):
        tvmext.compile(model)


def _max_unpool_model(x_shape, shape_input, out_rank, **attrs):
    node = helper.make_node("MaxUnpool", ["x", "i", "shape"], ["y"], **attrs)
    inputs = [
        _info("x", TensorProto.FLOAT, x_shape),
        _info("i", TensorProto.INT64, x_shape),
        _info("shape", TensorProto.INT64, [out_rank]),
    ]
    return _model(node, inputs, [_info("y", TensorProto.FLOAT, ["d"] * out_rank)], opset=11)


@pytest.mark.parametrize(
    ("x_shape", "output_shape", "attrs"),
    [
        ([1, 1, 2, 2], [1, 1, 5, 5], {"kernel_shape": [2, 2], "strides": [2, 2]}),
        ([2, 3, 2, 3], [2, 3, 5, 7], {"kernel_shape": [2, 2], "strides": [2, 2]}),
        ([1, 2, 3], [1, 2, 9], {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
    ],
)
def test_max_unpool_to_runtime_output_shape(x_shape, output_shape, attrs, rng):
    model = _max_unpool_model(x_shape, output_shape, len(output_shape), **attrs)
    n = len(attrs["kernel_shape"])
    strides, pads = attrs["strides"], attrs.get("pads", [0] * (2 * n))
    implied = x_shape[:2] + [
        (x_shape[i + 2] - 1) * strides[i] - pads[i] - pads[n + i] + attrs["kernel_shape"][i]
        for i in range(n)
    ]
    total = int(np.prod(implied))
    feeds = {
        "x": rng.standard_normal(x_shape).astype(np.float32),
        "i": rng.choice(total, size=x_shape, replace=False).astype(np.int64),
        "shape": np.array(output_shape, np.int64),
    }
    check_onnx_reference(model, feeds)


def _max_pool_model(x_shape, out_shape, dtype=TensorProto.FLOAT, **attrs):
    node = helper.make_node("MaxPool", ["x"], ["y", "i"], **attrs)
    outputs = [_info("y", dtype, out_shape), _info("i", TensorProto.INT64, out_shape)]
    return _model(node, [_info("x", dtype, x_shape)], outputs, opset=12)


@pytest.mark.parametrize(
    ("x_shape", "out_shape", "attrs"),
    [
        (
            [1, 2, 7, 7],
            [1, 2, 3, 3],
            {"kernel_shape": [3, 3], "strides": [2, 2], "dilations": [2, 2], "storage_order": 1},
        ),
        (
            [1, 2, 5, 6],
            [1, 2, 3, 3],
            {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "storage_order": 1},
        ),
        ([2, 3, 5, 5], [2, 3, 3, 2], {"kernel_shape": [2, 3], "strides": [2, 2], "ceil_mode": 1}),
        ([1, 2, 9], [1, 2, 4], {"kernel_shape": [3], "strides": [2]}),
        (
            [1, 1, 4, 5, 6],
            [1, 1, 2, 2, 3],
            {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2], "storage_order": 1},
        ),
    ],
)
def test_max_pool_with_indices(x_shape, out_shape, attrs, rng):
    model = _max_pool_model(x_shape, out_shape, **attrs)
    check_onnx_reference(model, {"x": rng.standard_normal(x_shape).astype(np.float32)})


def test_max_pool_indices_of_ties_and_integers():
    # Every window is constant: the first position of each window is reported.
    model = _max_pool_model(
        [1, 2, 4, 4], [1, 2, 2, 2], TensorProto.UINT8, kernel_shape=[2, 2], strides=[2, 2]
    )
    x = np.ones([1, 2, 4, 4], np.uint8)
    y, i = tvmext.compile(model)(x)
    np.testing.assert_array_equal(y, np.ones([1, 2, 2, 2], np.uint8))
    np.testing.assert_array_equal(i.reshape(2, 4), [[0, 2, 8, 10], [16, 18, 24, 26]])


def test_max_pool_indices_same_lower(rng):
    # The reference's SAME_LOWER puts the larger pad at the end; the spec at the start.
    model = _max_pool_model([1, 1, 4, 4], [1, 1, 4, 4], kernel_shape=[2, 2], auto_pad="SAME_LOWER")
    x = rng.standard_normal([1, 1, 4, 4]).astype(np.float32)
    y, i = tvmext.compile(model)(x)
    padded = np.pad(x[0, 0], ((1, 0), (1, 0)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (2, 2))
    np.testing.assert_array_equal(y[0, 0], windows.max(axis=(2, 3)))
    np.testing.assert_array_equal(x.reshape(-1)[i.reshape(-1)], y.reshape(-1))

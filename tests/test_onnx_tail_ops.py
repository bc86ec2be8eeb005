"""tvmext's converters for ReverseSequence, TensorScatter, Expand, SpaceToDepth,
Softplus and BatchNormalization (training mode), on small models checked against the
ONNX reference implementation, with attribute values and shapes beyond the conformance
data."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import check_onnx_reference
from onnx import TensorProto, helper

import tvmext
from tvmext.errors import ModelError, ShapeError


def _model(node, inputs, outputs, opset=18):
    graph = helper.make_graph([node], "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _info(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


@pytest.mark.parametrize("time_axis", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_reverse_sequence(time_axis, dtype, rng):
    batch_axis = 1 - time_axis
    shape = [5, 3, 2] if time_axis == 0 else [3, 5, 2]
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    node = helper.make_node(
        "ReverseSequence", ["x", "lens"], ["y"], time_axis=time_axis, batch_axis=batch_axis
    )
    model = _model(
        node,
        [_info("x", elem, shape), _info("lens", TensorProto.INT64, [3])],
        [_info("y", elem, shape)],
    )
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    check_onnx_reference(model, {"x": x, "lens": np.array([5, 0, 2], np.int64)})


def test_reverse_sequence_rejects_other_axes():
    node = helper.make_node("ReverseSequence", ["x", "lens"], ["y"], time_axis=2, batch_axis=0)
    model = _model(
        node,
        [_info("x", TensorProto.FLOAT, [2, 3, 4]), _info("lens", TensorProto.INT64, [2])],
        [_info("y", TensorProto.FLOAT, [2, 3, 4])],
    )
    with pytest.raises(ModelError, match="time_axis 2"):
        tvmext.compile(model)


@pytest.mark.parametrize("mode", ["linear", "circular"])
@pytest.mark.parametrize("axis", [1, 2, -1])
def test_tensor_scatter(mode, axis, rng):
    cache_shape = [2, 6, 5, 4]
    update_shape = list(cache_shape)
    update_shape[axis] = 3
    node = helper.make_node(
        "TensorScatter", ["cache", "update", "idx"], ["y"], mode=mode, axis=axis
    )
    model = _model(
        node,
        [
            _info("cache", TensorProto.FLOAT, cache_shape),
            _info("update", TensorProto.FLOAT, update_shape),
            _info("idx", TensorProto.INT64, [2]),
        ],
        [_info("y", TensorProto.FLOAT, cache_shape)],
        opset=24,
    )
    length = cache_shape[axis]
    # Linear writes stay inside the cache; circular ones wrap around its end.
    idx = np.array([0, length - 3] if mode == "linear" else [length - 1, 2], np.int64)
    feeds = {
        "cache": rng.standard_normal(cache_shape).astype(np.float32),
        "update": rng.standard_normal(update_shape).astype(np.float32),
        "idx": idx,
    }
    check_onnx_reference(model, feeds)


def test_tensor_scatter_without_write_indices(rng):
    node = helper.make_node("TensorScatter", ["cache", "update"], ["y"], axis=1)
    model = _model(
        node,
        [
            _info("cache", TensorProto.FLOAT16, [2, 4, 3]),
            _info("update", TensorProto.FLOAT16, [2, 2, 3]),
        ],
        [_info("y", TensorProto.FLOAT16, [2, 4, 3])],
        opset=24,
    )
    feeds = {
        "cache": rng.standard_normal([2, 4, 3]).astype(np.float16),
        "update": rng.standard_normal([2, 2, 3]).astype(np.float16),
    }
    check_onnx_reference(model, feeds)


@pytest.mark.parametrize(
    ("axis", "update_shape", "match"),
    [(0, [2, 4, 3], "axis 0"), (1, [2, 5, 3], "input 1 \\(update\\)"), (1, [2, 2, 2], "update")],
)
def test_tensor_scatter_errors(axis, update_shape, match):
    node = helper.make_node("TensorScatter", ["cache", "update"], ["y"], axis=axis)
    model = _model(
        node,
        [
            _info("cache", TensorProto.FLOAT, [2, 4, 3]),
            _info("update", TensorProto.FLOAT, update_shape),
        ],
        [_info("y", TensorProto.FLOAT, [2, 4, 3])],
        opset=24,
    )
    with pytest.raises(ModelError, match=match):
        tvmext.compile(model)


def _expand_model(data_shape, target_length):
    node = helper.make_node("Expand", ["x", "shape"], ["y"])
    rank = max(len(data_shape), target_length)
    return _model(
        node,
        [
            _info("x", TensorProto.FLOAT, data_shape),
            _info("shape", TensorProto.INT64, [target_length]),
        ],
        [_info("y", TensorProto.FLOAT, [f"d{i}" for i in range(rank)])],
        opset=13,
    )


@pytest.mark.parametrize(
    ("data_shape", "target"),
    [([3, 1], [2, 1, 6]), ([3, 1], [4]), ([2, 1, 4], [3, 1]), ([1, 3], [1, 1]), ([3], [2, 3])],
)
def test_expand_to_runtime_shape(data_shape, target, rng):
    model = _expand_model(data_shape, len(target))
    x = rng.standard_normal(data_shape).astype(np.float32)
    check_onnx_reference(model, {"x": x, "shape": np.array(target, np.int64)})


def test_expand_to_incompatible_shape_fails_at_run_time(rng):
    module = tvmext.compile(_expand_model([3, 1], 2))
    x = rng.standard_normal([3, 1]).astype(np.float32)
    with pytest.raises(RuntimeError, match="match_cast"):
        module(x, np.array([4, 5], np.int64))


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("block", [2, 3])
def test_space_to_depth(mode, block, rng):
    shape = [2, 3, 2 * block, 3 * block]
    out = [2, 3 * block * block, 2, 3]
    node = helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=block, mode=mode)
    model = _model(
        node, [_info("x", TensorProto.FLOAT, shape)], [_info("y", TensorProto.FLOAT, out)], opset=28
    )
    check_onnx_reference(model, {"x": rng.standard_normal(shape).astype(np.float32)})


def test_space_to_depth_rejects_indivisible_height():
    node = helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2, mode="CRD")
    model = _model(
        node,
        [_info("x", TensorProto.FLOAT, [1, 1, 3, 4])],
        [_info("y", TensorProto.FLOAT, [1, 4, 1, 2])],
        opset=28,
    )
    with pytest.raises((ShapeError, ModelError), match="H = 3"):
        tvmext.compile(model)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_softplus_keeps_relative_precision(dtype):
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    node = helper.make_node("Softplus", ["x"], ["y"])
    model = _model(node, [_info("x", elem, [201])], [_info("y", elem, [201])])
    x = np.linspace(-8 if dtype == np.float16 else -80, 40, 201).astype(dtype)
    (y,) = tvmext.compile(model)(x)
    wide = x.astype(np.float64)
    expected = np.maximum(wide, 0) + np.log1p(np.exp(-np.abs(wide)))
    assert y.dtype == dtype
    np.testing.assert_allclose(y, expected, rtol=1e-3 if dtype == np.float16 else 1e-6)


@pytest.mark.parametrize(
    ("shape", "momentum"), [([2, 3, 4, 5], 0.9), ([4, 2], 0.3), ([2, 3, 7], 0.0)]
)
def test_batch_normalization_training_mode(shape, momentum, rng):
    channels = [shape[1]]
    node = helper.make_node(
        "BatchNormalization",
        ["x", "s", "b", "m", "v"],
        ["y", "rm", "rv"],
        training_mode=1,
        momentum=momentum,
        epsilon=1e-3,
    )
    model = _model(
        node,
        [_info("x", TensorProto.FLOAT, shape)]
        + [_info(n, TensorProto.FLOAT, channels) for n in "sbmv"],
        [
            _info("y", TensorProto.FLOAT, shape),
            _info("rm", TensorProto.FLOAT, channels),
            _info("rv", TensorProto.FLOAT, channels),
        ],
        opset=15,
    )
    feeds = {"x": rng.standard_normal(shape).astype(np.float32) * 3 + 1}
    for name in "sbm":
        feeds[name] = rng.standard_normal(channels).astype(np.float32)
    feeds["v"] = rng.uniform(0.5, 2, channels).astype(np.float32)
    check_onnx_reference(model, feeds, rtol=1e-4, atol=1e-5)


def test_batch_normalization_training_mode_y_only(rng):
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], training_mode=1)
    model = _model(
        node,
        [_info("x", TensorProto.FLOAT, [3, 2, 4])]
        + [_info(n, TensorProto.FLOAT, [2]) for n in "sbmv"],
        [_info("y", TensorProto.FLOAT, [3, 2, 4])],
        opset=15,
    )
    x = rng.standard_normal([3, 2, 4]).astype(np.float32)
    s, b = np.array([1.5, -2], np.float32), np.array([0.5, 1], np.float32)
    (y,) = tvmext.compile(model)(x, s, b, np.zeros(2, np.float32), np.ones(2, np.float32))
    mean, var = x.mean(axis=(0, 2), keepdims=True), x.var(axis=(0, 2), keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-5) * s[:, None] + b[:, None]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)

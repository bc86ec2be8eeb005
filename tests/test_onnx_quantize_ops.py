"""QuantizeLinear, DequantizeLinear and QLinearConv against ONNX's reference, for every
quantized type, per tensor, per axis and blocked, with the errors a model can hit."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.helper import np_dtype_to_tensor_dtype
from onnx.reference import ReferenceEvaluator

import tvmext

_INTEGER = [np.uint8, np.int8, np.uint16, np.int16]
_SUB_BYTE = [ml_dtypes.int4, ml_dtypes.uint4, ml_dtypes.int2, ml_dtypes.uint2]
_FLOAT8 = [
    ml_dtypes.float8_e4m3fn,
    ml_dtypes.float8_e4m3fnuz,
    ml_dtypes.float8_e5m2,
    ml_dtypes.float8_e5m2fnuz,
]
_ALL = [*_INTEGER, *_SUB_BYTE, *_FLOAT8, ml_dtypes.float4_e2m1fn]


def _onnx_type(dtype) -> int:
    return np_dtype_to_tensor_dtype(np.dtype(dtype))


def _model(node, arrays: dict[str, np.ndarray], out_type: int, out_shape, opset: int = 25):
    inputs = [
        helper.make_tensor_value_info(name, _onnx_type(a.dtype), list(a.shape))
        for name, a in arrays.items()
    ]
    outputs = [helper.make_tensor_value_info("y", out_type, list(out_shape))]
    graph = helper.make_graph([node], "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _check(node, arrays: dict[str, np.ndarray], out_type: int, out_shape, opset: int = 25):
    """Compile the one-node model and compare with ONNX's reference, value for value."""
    model = _model(node, arrays, out_type, out_shape, opset)
    (expected,) = ReferenceEvaluator(model).run(None, arrays)
    (got,) = tvmext.compile(model).run(*arrays.values())
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got.astype(np.float64), expected.astype(np.float64))


def _zero_point(dtype, size: int, rng) -> np.ndarray:
    """Zero points of ``dtype``: float8 ones must be 0 (the reference refuses others)."""
    if dtype in _FLOAT8:
        return np.zeros(size, dtype)
    if dtype is ml_dtypes.float4_e2m1fn:
        return np.array(rng.choice([-1.0, 0.0, 0.5], size), dtype)
    info = ml_dtypes.iinfo(dtype)
    return rng.integers(int(info.min), int(info.max) + 1, size).astype(dtype)


def _values(rng, shape, spread: float) -> np.ndarray:
    """Random values with ties (halves) and values far out of range."""
    x = rng.standard_normal(shape) * spread
    x.flat[::7] = np.round(x.flat[::7]) + 0.5
    x.flat[::11] *= 1000
    return x.astype(np.float32)


@pytest.mark.parametrize("dtype", _ALL, ids=lambda d: np.dtype(d).name)
def test_quantize_per_axis_matches_reference(dtype, rng):
    x = _values(rng, (3, 5, 4), 20)
    scale = np.array([0.5, 2.0, 3.0, 0.25, 1.5], np.float32)
    arrays = {"x": x, "scale": scale, "zp": _zero_point(dtype, 5, rng)}
    node = helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["y"], axis=1)
    _check(node, arrays, _onnx_type(dtype), x.shape)


@pytest.mark.parametrize("dtype", _ALL, ids=lambda d: np.dtype(d).name)
def test_dequantize_per_axis_matches_reference(dtype, rng):
    if dtype in _FLOAT8 or dtype is ml_dtypes.float4_e2m1fn:
        x = rng.standard_normal((4, 3)).astype(np.float32).astype(dtype)
    else:
        info = ml_dtypes.iinfo(dtype)
        x = rng.integers(int(info.min), int(info.max) + 1, (4, 3)).astype(dtype)
    zp = _zero_point(dtype, 4, rng)
    if dtype is ml_dtypes.float4_e2m1fn:
        zp = np.zeros(4, dtype)  # the reference ignores a float4 zero point
    arrays = {"x": x, "scale": np.array([0.5, 2.0, 3.0, 0.1], np.float32), "zp": zp}
    node = helper.make_node("DequantizeLinear", ["x", "scale", "zp"], ["y"], axis=0)
    _check(node, arrays, TensorProto.FLOAT, x.shape)


@pytest.mark.parametrize("dtype", [np.uint8, ml_dtypes.int4, ml_dtypes.float8_e4m3fn])
def test_quantize_blocked_with_a_partial_last_block(dtype, rng):
    """Blocks of 2 along an axis of 5: the last block has one element."""
    x = _values(rng, (2, 5, 3), 8)
    scale = (np.abs(rng.standard_normal((2, 3, 3))) + 0.5).astype(np.float32)
    zp = _zero_point(dtype, 18, rng).reshape(2, 3, 3)
    node = helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["y"], axis=-2, block_size=2)
    _check(node, {"x": x, "scale": scale, "zp": zp}, _onnx_type(dtype), x.shape)


def test_dequantize_blocked_to_float16(rng):
    x = rng.integers(-128, 128, (4, 6)).astype(np.int8)
    scale = (np.abs(rng.standard_normal((4, 2))) + 0.5).astype(np.float32)
    zp = rng.integers(-5, 5, (4, 2)).astype(np.int8)
    node = helper.make_node(
        "DequantizeLinear",
        ["x", "scale", "zp"],
        ["y"],
        axis=1,
        block_size=3,
        output_dtype=TensorProto.FLOAT16,
    )
    _check(node, {"x": x, "scale": scale, "zp": zp}, TensorProto.FLOAT16, x.shape)


def test_quantize_float16_input_divides_in_float16(rng):
    x = (rng.standard_normal(64) * 100).astype(np.float16)
    scale = np.array(0.37, np.float16)
    node = helper.make_node("QuantizeLinear", ["x", "scale"], ["y"])
    _check(node, {"x": x, "scale": scale}, TensorProto.UINT8, x.shape)


@pytest.mark.parametrize("dtype", [ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2])
def test_quantize_float8_without_saturation_overflows(dtype, rng):
    """saturate=0: out of range becomes infinity (e5m2) or NaN (e4m3fn)."""
    x = np.array([1.0, -3.5, 1e6, -1e6, 0.01, 300.0], np.float32)
    node = helper.make_node(
        "QuantizeLinear",
        ["x", "scale"],
        ["y"],
        saturate=0,
        output_dtype=_onnx_type(dtype),
    )
    model = _model(node, {"x": x, "scale": np.array(2.0, np.float32)}, _onnx_type(dtype), [6])
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x, "scale": np.float32(2.0)})
    (got,) = tvmext.compile(model).run(x, np.array(2.0, np.float32))
    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.int8, ml_dtypes.uint2, ml_dtypes.float4_e2m1fn])
def test_quantize_output_dtype_without_zero_point(dtype, rng):
    x = _values(rng, (6, 2), 4)
    node = helper.make_node("QuantizeLinear", ["x", "scale"], ["y"], output_dtype=_onnx_type(dtype))
    _check(node, {"x": x, "scale": np.array(0.5, np.float32)}, _onnx_type(dtype), x.shape)


def test_quantize_round_trip_at_opset_19(rng):
    """An opset-19 QDQ pair (no block_size or output_dtype attributes)."""
    x = _values(rng, (2, 3), 3)
    scale, zp = np.array([0.1, 0.2, 0.3], np.float32), np.array([3, 0, 250], np.uint8)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zp"], ["y"]),
    ]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
        helper.make_tensor_value_info("scale", TensorProto.FLOAT, [3]),
        helper.make_tensor_value_info("zp", TensorProto.UINT8, [3]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])]
    model = helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs),
        opset_imports=[helper.make_opsetid("", 19)],
    )
    feeds = {"x": x, "scale": scale, "zp": zp}
    (expected,) = ReferenceEvaluator(model).run(None, feeds)
    (got,) = tvmext.compile(model).run(x, scale, zp)
    np.testing.assert_array_equal(got, expected)


def test_quantize_zero_point_of_the_wrong_length_is_refused():
    x = np.zeros((2, 3), np.float32)
    arrays = {"x": x, "scale": np.ones(3, np.float32), "zp": np.zeros(2, np.uint8)}
    node = helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["y"], name="q")
    model = _model(node, arrays, TensorProto.UINT8, [2, 3])
    with pytest.raises(tvmext.ModelError, match=r"'q'.*y_zero_point has shape \[2\]"):
        tvmext.compile(model)


def test_quantize_blocked_scale_of_the_wrong_shape_is_refused():
    x = np.zeros((2, 6), np.float32)
    arrays = {"x": x, "scale": np.ones((2, 2), np.float32)}
    node = helper.make_node("QuantizeLinear", ["x", "scale"], ["y"], block_size=2)
    model = _model(node, arrays, TensorProto.UINT8, [2, 6])
    with pytest.raises(tvmext.ModelError, match=r"y_scale has shape \[2, 2\]; expected \[2, 3\]"):
        tvmext.compile(model)


def test_quantize_output_dtype_differing_from_the_zero_point_is_refused():
    arrays = {"x": np.zeros(3, np.float32), "scale": np.ones((), np.float32)}
    arrays["zp"] = np.zeros((), np.int8)
    node = helper.make_node(
        "QuantizeLinear", ["x", "scale", "zp"], ["y"], output_dtype=TensorProto.UINT8
    )
    model = _model(node, arrays, TensorProto.INT8, [3])
    with pytest.raises(tvmext.ModelError, match="output_dtype uint8 differs"):
        tvmext.compile(model)

"""Converters of ops whose output shape is an input's value (Split, TopK, OneHot, Range,
ConstantOfShape) and EyeLike, on small models checked against ONNX's reference."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import tvmext


def _model(nodes, inputs, outputs, opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _tensor(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _dims(rank):
    return [f"d{i}" for i in range(rank)]


def _check(model, *inputs):
    """Run ``model`` compiled and in the reference; outputs must match exactly in dtype,
    shape and value."""
    got = tvmext.compile(model)(*inputs)
    names = [i.name for i in model.graph.input]
    expected = ReferenceEvaluator(model).run(None, dict(zip(names, inputs, strict=True)))
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        g = np.asarray(g)
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_array_equal(g, e)
    return got


def _split_model(axis, count, rank):
    node = helper.make_node("Split", ["x", "s"], [f"y{i}" for i in range(count)], axis=axis)
    outs = [_tensor(f"y{i}", TensorProto.FLOAT, _dims(rank)) for i in range(count)]
    x = _tensor("x", TensorProto.FLOAT, [f"x{i}" for i in range(rank)])
    return _model([node], [x, _tensor("s", TensorProto.INT64, [count])], outs)


@pytest.mark.parametrize(
    ("shape", "axis", "sizes"), [((7,), 0, [3, 0, 4]), ((2, 5, 3), -2, [1, 4])]
)
def test_split_by_runtime_sizes(shape, axis, sizes, rng):
    model = _split_model(axis, len(sizes), len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    module = tvmext.compile(model)
    for parts in (sizes, sizes[::-1]):
        got = module(x, np.array(parts, np.int64))
        for g, e in zip(got, np.split(x, np.cumsum(parts)[:-1], axis=axis), strict=True):
            np.testing.assert_array_equal(g, e)


def test_split_sizes_that_miss_the_axis_fail_at_run_time():
    module = tvmext.compile(_split_model(0, 2, 1))
    with pytest.raises(RuntimeError, match=r"shape\[0\] mismatch"):
        module(np.zeros(5, np.float32), np.array([2, 2], np.int64))


def test_split_with_sizes_of_the_wrong_length_is_refused():
    node = helper.make_node("Split", ["x", "s"], ["a", "b"])
    model = _model(
        [node],
        [_tensor("x", TensorProto.FLOAT, [4]), _tensor("s", TensorProto.INT64, [3])],
        [_tensor("a", TensorProto.FLOAT, ["a"]), _tensor("b", TensorProto.FLOAT, ["b"])],
    )
    with pytest.raises(
        tvmext.ModelError,
        match=r"input 1 \(split\) has shape \[3\]; expected one size per output \(2\)",
    ):
        tvmext.compile(model)


def _topk_model(elem, shape, axis, largest, opset=13):
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=axis, largest=largest)
    return _model(
        [node],
        [_tensor("x", elem, shape), _tensor("k", TensorProto.INT64, [1])],
        [_tensor("v", elem, _dims(len(shape))), _tensor("i", TensorProto.INT64, _dims(len(shape)))],
        opset,
    )


@pytest.mark.parametrize(
    ("elem", "dtype", "largest"),
    [
        (TensorProto.INT8, np.int8, 1),
        (TensorProto.UINT64, np.uint64, 0),
        (TensorProto.UINT64, np.uint64, 1),
        (TensorProto.FLOAT16, np.float16, 0),
        (TensorProto.BFLOAT16, ml_dtypes.bfloat16, 1),
    ],
)
def test_topk_of_runtime_k_orders_ties_by_index(elem, dtype, largest):
    x = np.array([[3, 1, 3, 0, 3, 2], [5, 5, 5, 5, 5, 5], [0, 9, 1, 9, 2, 9]]).astype(dtype)
    if dtype == np.uint64:
        x[0, 1] = np.uint64(2**63 + 7)  # above int64's range
    model = _topk_model(elem, [3, 6], 1, largest)
    for k in (1, 4, 6):
        _check(model, x, np.array([k], np.int64))


@pytest.mark.parametrize("largest", [0, 1])
def test_topk_ranks_nan_above_infinity(largest):
    x = np.array([[np.inf, np.nan, 1.0, np.nan, -np.inf, np.inf]], np.float32).T
    model = _topk_model(TensorProto.FLOAT, [6, 1], 0, largest, opset=11)
    (_, indices) = _check(model, x, np.array([6], np.int64))
    assert indices.ravel().tolist() == ([1, 3, 0, 5, 2, 4] if largest else [4, 2, 0, 5, 1, 3])


def test_topk_of_k_above_the_axis_fails_at_run_time():
    module = tvmext.compile(_topk_model(TensorProto.FLOAT, [2, 3], -1, 1))
    with pytest.raises(RuntimeError, match=r"shape\[1\] mismatch"):
        module(np.zeros((2, 3), np.float32), np.array([4], np.int64))


def _one_hot_model(index_elem, value_elem, rank, axis, opset=11):
    node = helper.make_node("OneHot", ["i", "d", "v"], ["y"], axis=axis)
    inputs = [
        _tensor("i", index_elem, [f"i{j}" for j in range(rank)]),
        _tensor("d", TensorProto.FLOAT, []),
        _tensor("v", value_elem, [2]),
    ]
    return _model([node], inputs, [_tensor("y", value_elem, _dims(rank + 1))], opset)


@pytest.mark.parametrize("axis", [0, 1, -1, -3])
def test_one_hot_of_runtime_depth(axis):
    indices = np.array([[0, -1, 3], [5, -6, 2]], np.int32)  # 5 and -6 are out of range
    model = _one_hot_model(TensorProto.INT32, TensorProto.INT64, 2, axis)
    for depth in (4.0, 5.0):
        _check(model, indices, np.array(depth, np.float32), np.array([7, -2], np.int64))


def test_one_hot_of_float_indices_and_bfloat16_values():
    model = _one_hot_model(TensorProto.FLOAT, TensorProto.BFLOAT16, 1, -1)
    values = np.array([0.5, 2.0], ml_dtypes.bfloat16)
    _check(model, np.array([1.0, -1.0, 3.0], np.float32), np.array(3.0, np.float32), values)


def test_one_hot_of_opset_9_leaves_negative_indices_off():
    model = _one_hot_model(TensorProto.INT64, TensorProto.FLOAT, 1, -1, opset=9)
    (y,) = tvmext.compile(model)(
        np.array([-1, 1], np.int64), np.array(3.0, np.float32), np.array([0, 1], np.float32)
    )
    np.testing.assert_array_equal(y, [[0, 0, 0], [0, 1, 0]])


def test_one_hot_axis_out_of_range_is_refused():
    model = _one_hot_model(TensorProto.INT64, TensorProto.FLOAT, 1, 2)
    with pytest.raises(tvmext.ModelError, match="axis 2 is out of range"):
        tvmext.compile(model)


@pytest.mark.parametrize(
    ("elem", "dtype", "bounds"),
    [
        (TensorProto.INT32, np.int32, [(1, 10, 3), (10, 1, -3), (5, 5, 1), (0, 4, -1)]),
        (TensorProto.INT64, np.int64, [(-7, 8, 5), (3, -9, -4)]),
        (TensorProto.INT16, np.int16, [(2, 9, 2)]),
        (TensorProto.FLOAT, np.float32, [(0.5, 3.2, 0.7), (1.0, -2.0, -0.25), (0, 1, -1)]),
        (TensorProto.DOUBLE, np.float64, [(1e-3, 1.0, 0.1)]),
    ],
)
def test_range_of_runtime_bounds(elem, dtype, bounds):
    node = helper.make_node("Range", ["a", "b", "c"], ["y"])
    model = _model(
        [node], [_tensor(n, elem, []) for n in "abc"], [_tensor("y", elem, ["n"])], opset=11
    )
    module = tvmext.compile(model)
    for start, limit, delta in bounds:
        (y,) = module(*(np.array(v, dtype) for v in (start, limit, delta)))
        expected = np.arange(start, limit, delta).astype(dtype)
        assert y.dtype == expected.dtype and y.shape == expected.shape
        np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_range_of_mixed_dtypes_is_refused():
    node = helper.make_node("Range", ["a", "b", "c"], ["y"])
    inputs = [_tensor("a", TensorProto.INT32, []), _tensor("b", TensorProto.INT64, [])]
    inputs.append(_tensor("c", TensorProto.INT32, []))
    model = _model([node], inputs, [_tensor("y", TensorProto.INT32, ["n"])], opset=11)
    with pytest.raises(tvmext.ModelError, match=r"input 1 \(limit\) is int64; expected int32"):
        tvmext.compile(model)


@pytest.mark.parametrize(
    ("value", "shapes"),
    [
        (None, [[2, 3], [0, 4]]),
        (np.array([7], np.int8), [[3, 1], [1, 5]]),
        (np.array([True]), [[2, 2]]),
        (np.array([1.5], np.float16), [[4, 0]]),
    ],
)
def test_constant_of_runtime_shape(value, shapes):
    attrs = {} if value is None else {"value": numpy_helper.from_array(value)}
    node = helper.make_node("ConstantOfShape", ["s"], ["y"], **attrs)
    elem = TensorProto.FLOAT if value is None else helper.np_dtype_to_tensor_dtype(value.dtype)
    model = _model([node], [_tensor("s", TensorProto.INT64, [2])], [_tensor("y", elem, ["a", "b"])])
    for shape in shapes:
        _check(model, np.array(shape, np.int64))


def test_constant_of_a_scalar_shape():
    node = helper.make_node("ConstantOfShape", ["s"], ["y"])
    model = _model([node], [_tensor("s", TensorProto.INT64, [0])], [_tensor("y", 1, [])])
    _check(model, np.zeros(0, np.int64))


@pytest.mark.parametrize(
    ("dtype", "k"),
    [(None, 0), (TensorProto.DOUBLE, 2), (TensorProto.BOOL, -1), (TensorProto.UINT8, -5)],
)
def test_eye_like_of_any_dtype_and_diagonal(k, dtype):
    attrs = {"k": k} if dtype is None else {"k": k, "dtype": dtype}
    node = helper.make_node("EyeLike", ["x"], ["y"], **attrs)
    elem = TensorProto.INT32 if dtype is None else dtype
    model = _model(
        [node], [_tensor("x", TensorProto.INT32, ["r", "c"])], [_tensor("y", elem, ["r", "c"])]
    )
    module = tvmext.compile(model)
    for shape in ((3, 4), (5, 2)):
        (y,) = module(np.zeros(shape, np.int32))
        expected = np.eye(*shape, k=k, dtype=helper.tensor_dtype_to_np_dtype(elem))
        assert y.dtype == expected.dtype
        np.testing.assert_array_equal(y, expected)


def test_eye_like_of_a_vector_is_refused():
    node = helper.make_node("EyeLike", ["x"], ["y"])
    model = _model([node], [_tensor("x", 1, [3])], [_tensor("y", 1, [3, 3])])
    with pytest.raises(tvmext.ModelError, match=r"input 0 \(input\) has rank 1; expected a 2-D"):
        tvmext.compile(model)

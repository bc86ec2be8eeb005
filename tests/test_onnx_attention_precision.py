"""Half-precision (float16, bfloat16) Attention, MatMul and Softmax against the ONNX
reference: matmuls accumulate in float32 and every other step rounds as the reference
does."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from conftest import check_onnx_reference
from onnx import TensorProto, helper

import tvmext

HALF = {
    "float16": (TensorProto.FLOAT16, np.float16),
    "bfloat16": (TensorProto.BFLOAT16, ml_dtypes.bfloat16),
}


def _model(nodes, inputs, outputs, opset=23):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("causal", [0, 1])
def test_attention_with_float_mask_rounds_as_the_reference(dtype, causal, rng):
    elem, np_type = HALF[dtype]
    b, h, q, kv, d = 1, 2, 5, 12, 16
    node = helper.make_node("Attention", ["Q", "K", "V", "mask"], ["Y"], is_causal=causal)
    inputs = [
        helper.make_tensor_value_info("Q", elem, [b, h, q, d]),
        helper.make_tensor_value_info("K", elem, [b, h, kv, d]),
        helper.make_tensor_value_info("V", elem, [b, h, kv, d]),
        helper.make_tensor_value_info("mask", elem, [b, 1, q, kv - 2]),
    ]
    model = _model([node], inputs, [helper.make_tensor_value_info("Y", elem, [b, h, q, d])])
    feeds = {
        "Q": rng.standard_normal((b, h, q, d)).astype(np_type),
        "K": rng.standard_normal((b, h, kv, d)).astype(np_type),
        "V": rng.standard_normal((b, h, kv, d)).astype(np_type),
        "mask": rng.uniform(-1, 1, (b, 1, q, kv - 2)).astype(np_type),
    }
    # bfloat16 over longer rows can still differ from the reference by a unit in the
    # last place of a term of P @ V (absolute, where terms cancel); float16 agrees
    # within the conformance tolerance.
    if dtype == "float16":
        check_onnx_reference(model, feeds, rtol=1e-3, atol=1e-7)
    else:
        check_onnx_reference(model, feeds, rtol=2.0**-7, atol=2.0**-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_attention_softmax_in_float32_of_half_inputs(dtype, rng):
    elem, np_type = HALF[dtype]
    shape = [2, 3, 4, 8]
    node = helper.make_node(
        "Attention", ["Q", "K", "V"], ["Y"], softmax_precision=TensorProto.FLOAT
    )
    inputs = [helper.make_tensor_value_info(n, elem, shape) for n in "QKV"]
    model = _model([node], inputs, [helper.make_tensor_value_info("Y", elem, shape)])
    feeds = {n: rng.standard_normal(shape).astype(np_type) for n in "QKV"}
    check_onnx_reference(model, feeds, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize(("a_shape", "b_shape"), [((3, 64, 200), (200, 5)), ((200,), (200, 7))])
def test_matmul_accumulates_in_float32(dtype, a_shape, b_shape, rng):
    elem, np_type = HALF[dtype]
    a = rng.standard_normal(a_shape).astype(np_type)
    b = rng.standard_normal(b_shape).astype(np_type)
    expected = np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(np_type)
    node = helper.make_node("MatMul", ["A", "B"], ["Y"])
    inputs = [
        helper.make_tensor_value_info("A", elem, list(a_shape)),
        helper.make_tensor_value_info("B", elem, list(b_shape)),
    ]
    out = helper.make_tensor_value_info("Y", elem, list(expected.shape))
    (got,) = tvmext.compile(_model([node], inputs, [out])).run(a, b)
    assert got.dtype == expected.dtype
    # Float32 sums in another order may round the last bit differently, rarely.
    mismatched = got.astype(np.float32) != expected.astype(np.float32)
    assert mismatched.mean() < 0.01


def test_bfloat16_matmul_result_is_rounded_before_an_add(rng):
    """TVM's bf16 legalization drops a cast that feeds bf16 arithmetic in one kernel;
    the matmul's result must still be rounded to bfloat16 before the Add."""
    a = rng.standard_normal((16, 32)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((32, 16)).astype(ml_dtypes.bfloat16)
    c = rng.uniform(-0.01, 0.01, (16, 16)).astype(ml_dtypes.bfloat16)
    nodes = [
        helper.make_node("MatMul", ["A", "B"], ["P"]),
        helper.make_node("Add", ["P", "C"], ["Y"]),
    ]
    bf = TensorProto.BFLOAT16
    inputs = [
        helper.make_tensor_value_info("A", bf, [16, 32]),
        helper.make_tensor_value_info("B", bf, [32, 16]),
        helper.make_tensor_value_info("C", bf, [16, 16]),
    ]
    model = _model(nodes, inputs, [helper.make_tensor_value_info("Y", bf, [16, 16])])
    (got,) = tvmext.compile(model).run(a, b, c)
    product = (a.astype(np.float32) @ b.astype(np.float32)).astype(ml_dtypes.bfloat16)
    expected = product + c
    assert np.array_equal(got.astype(np.float32), expected.astype(np.float32))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax_of_half_inputs(dtype, axis, rng):
    elem, np_type = HALF[dtype]
    shape = [3, 40, 50]
    x = rng.standard_normal(shape).astype(np_type) * np_type(3)
    node = helper.make_node("Softmax", ["X"], ["Y"], axis=axis)
    model = _model(
        [node],
        [helper.make_tensor_value_info("X", elem, shape)],
        [helper.make_tensor_value_info("Y", elem, shape)],
    )
    (got,) = tvmext.compile(model).run(x)
    wide = x.astype(np.float64)
    exps = np.exp(wide - wide.max(axis=axis, keepdims=True))
    exact = exps / exps.sum(axis=axis, keepdims=True)
    assert got.dtype == np.dtype(np_type)
    # Each step rounds to the type: a few units in the last place of the exact value.
    ulp = 2.0 ** (-10 if dtype == "float16" else -7)
    np.testing.assert_allclose(got.astype(np.float64), exact, rtol=4 * ulp, atol=1e-6)

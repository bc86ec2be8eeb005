"""DFT (opsets 17 and 20) and STFT converters against ``numpy.fft`` and ONNX's
reference, with constant and runtime lengths and axes."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import tvmext
from tvmext.errors import TvmextError


def _model(node, inputs, opset=20, rank=4):
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [f"y{i}" for i in range(rank)])
    graph = helper.make_graph([node], "g", inputs, [out])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _value(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _complex(parts):
    """[..., 2] real/imaginary pairs -> complex array."""
    return parts[..., 0] + 1j * parts[..., 1]


def _dft20(shape, **attrs):
    node = helper.make_node("DFT", ["x", "n", "axis"], ["y"], **attrs)
    inputs = [
        _value("x", TensorProto.FLOAT, list(shape)),
        _value("n", TensorProto.INT64, []),
        _value("axis", TensorProto.INT64, []),
    ]
    return tvmext.compile(_model(node, inputs))


@pytest.mark.parametrize(("axis", "length"), [(1, 6), (2, 9), (-2, 4)])
def test_complex_dft_at_runtime_axis_and_length_matches_numpy(axis, length, rng):
    x = rng.standard_normal((2, 6, 5, 2)).astype(np.float32)
    got = _dft20(x.shape)(x, np.array(length, np.int64), np.array(axis, np.int64))[0]
    want = np.fft.fft(_complex(x), n=length, axis=axis if axis >= 0 else axis + 1)
    np.testing.assert_allclose(_complex(np.asarray(got)), want, rtol=1e-4, atol=1e-5)


def test_inverse_dft_undoes_the_forward_one(rng):
    x = rng.standard_normal((1, 8, 3, 2)).astype(np.float32)
    forward = np.asarray(_dft20(x.shape)(x, np.array(8, np.int64), np.array(1, np.int64))[0])
    back = _dft20(x.shape, inverse=1)(forward, np.array(8, np.int64), np.array(1, np.int64))[0]
    np.testing.assert_allclose(np.asarray(back), x, rtol=1e-4, atol=1e-5)


def test_onesided_real_dft_matches_rfft(rng):
    x = rng.standard_normal((3, 10, 1)).astype(np.float32)
    node = helper.make_node("DFT", ["x"], ["y"], axis=1, onesided=1)
    model = _model(node, [_value("x", TensorProto.FLOAT, [3, 10, 1])], opset=17, rank=3)
    got = np.asarray(tvmext.compile(model)(x)[0])
    assert got.shape == (3, 6, 2)
    np.testing.assert_allclose(_complex(got), np.fft.rfft(x[..., 0], axis=1), atol=1e-5)


@pytest.mark.parametrize("onesided", [0, 1])
def test_stft_with_window_matches_the_reference(onesided, rng):
    node = helper.make_node("STFT", ["x", "step", "w", "n"], ["y"], onesided=onesided)
    inputs = [
        _value("x", TensorProto.FLOAT, [2, 32, 1]),
        _value("step", TensorProto.INT64, []),
        _value("w", TensorProto.FLOAT, [8]),
        _value("n", TensorProto.INT64, []),
    ]
    model = _model(node, inputs, opset=17)
    feeds = {
        "x": rng.standard_normal((2, 32, 1)).astype(np.float32),
        "step": np.array(4, np.int64),
        "w": np.hanning(8).astype(np.float32),
        "n": np.array(8, np.int64),
    }
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    got = np.asarray(tvmext.compile(model).run(**feeds)[0])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_axis_out_of_range_is_an_error_naming_dft():
    node = helper.make_node("DFT", ["x"], ["y"], axis=3)
    model = _model(node, [_value("x", TensorProto.FLOAT, [2, 4, 2])], opset=17, rank=3)
    with pytest.raises(TvmextError, match="DFT"):
        tvmext.compile(model)

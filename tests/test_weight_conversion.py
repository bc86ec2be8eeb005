"""Weights arrive in ONNX's format and are converted once: at compile time, or, for
weights kept as runtime inputs, by ``main_transform_params`` when they are bound."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from tvm import te, topi

import tvmext
from tvmext.onnx import importer as onnx_import


def _model(weight: np.ndarray | None, n_out: int = 24):
    """x[4, 16] -> com.conv::Linear(x, W) with W[16, n_out] an initializer (or an input)."""
    node = helper.make_node("Linear", ["x", "W"], ["y"], name="linear", domain="com.conv")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])]
    initializers = []
    if weight is None:
        inputs.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, [16, n_out]))
    else:
        initializers.append(numpy_helper.from_array(weight, "W"))
    graph = helper.make_graph(
        [node], "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, n_out])],
        initializers,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.conv", 1)]
    return helper.make_model(graph, opset_imports=opsets)


def _linear_compute(x, w_t):
    """x[m, k] @ w_t[n, k]^T, the weight in any float type."""
    k = te.reduce_axis((0, x.shape[1]), "k")
    return te.compute(
        (x.shape[0], w_t.shape[0]),
        lambda i, j: te.sum(x[i, k] * w_t[j, k].astype("float32"), axis=k),
        name="linear",
    )


@pytest.fixture(scope="module")
def linear_fp16_transposed():
    """An op whose kernel wants the weight as [n_out, k] in float16."""

    linear = tvmext.op("test_conv.linear", replace=True)(_linear_compute)

    linear.onnx("com.conv", "Linear", replace=True)
    calls = []

    @linear.convert_param("w_t")
    def _to_fp16_transposed(w):
        calls.append(w.shape)
        return np.ascontiguousarray(w.T).astype(np.float16)

    return linear, calls


@pytest.mark.native
def test_layout_and_dtype_converted_once_at_compile_time(linear_fp16_transposed, rng, tmp_path):
    _, calls = linear_fp16_transposed
    w = rng.standard_normal((16, 24)).astype(np.float32)
    calls.clear()
    module = tvmext.compile(_model(w))
    assert calls == [(16, 24)]  # converted once, from the ONNX layout
    x = rng.standard_normal((4, 16)).astype(np.float32)
    expected = x @ w.astype(np.float16).astype(np.float32)
    np.testing.assert_allclose(module(x)[0], expected, rtol=1e-5, atol=1e-5)
    for _ in range(3):
        module(x)
    assert calls == [(16, 24)]  # inference does no conversion
    artifact = module.export(tmp_path / "m.so")
    call = onnx_import.from_onnx(_model(w))["main"].body.blocks[0].bindings[0].value
    weight = call.args[1].value.numpy()
    assert weight.dtype == np.float16 and weight.shape == (24, 16)  # stored converted
    np.testing.assert_allclose(tvmext.load(artifact)(x)[0], expected, rtol=1e-5, atol=1e-5)


def test_graph_input_weight_cannot_use_a_numpy_conversion(linear_fp16_transposed):
    with pytest.raises(
        tvmext.ModelError,
        match=r"node 'linear' \(com\.conv::Linear\): input 'w_t' of op 'test_conv\.linear' is "
        r"not a constant initializer",
    ):
        tvmext.compile(_model(None))


def test_runtime_weight_cannot_use_a_numpy_conversion(linear_fp16_transposed, rng):
    w = rng.standard_normal((16, 24)).astype(np.float32)
    with pytest.raises(
        tvmext.ModelError,
        match=r"node 'linear' \(com\.conv::Linear\): input 'w_t' of op 'test_conv\.linear' is "
        r"a runtime weight \(keep_params_in_input=True\), but its declared conversion runs in "
        r"NumPy at compile time; declare it in TE \(@op\.convert_param\('w_t', kind='te'\)\)",
    ):
        tvmext.compile(_model(w), keep_params_in_input=True)


@pytest.fixture(scope="module")
def linear_te_conversion():
    """The same kernel, its conversion written in TE."""

    linear = tvmext.op("test_conv.linear_te", replace=True)(_linear_compute)

    linear.onnx("com.conv", "Linear", replace=True)

    @linear.convert_param("w_t", kind="te")
    def _to_fp16_transposed(w):
        return topi.transpose(w).astype("float16")

    return linear


class _CountingVM:
    """Wraps a VirtualMachine and counts calls per function."""

    def __init__(self, vm):
        self.vm, self.calls = vm, {}

    def __getitem__(self, name):
        fn = self.vm[name]

        def call(*args):
            self.calls[name] = self.calls.get(name, 0) + 1
            return fn(*args)

        return call


@pytest.mark.native
def test_te_conversion_of_runtime_weights_runs_once_when_bound(linear_te_conversion, rng, tmp_path):
    w = rng.standard_normal((16, 24)).astype(np.float32)
    x = rng.standard_normal((4, 16)).astype(np.float32)
    constant = tvmext.compile(_model(w))  # TE conversion evaluated at compile time
    module = tvmext.compile(_model(w), keep_params_in_input=True, dump_ir=str(tmp_path / "ir"))
    assert module.param_names == ["W"] and module.params[0].shape == (16, 24)
    expected = x @ w.astype(np.float16).astype(np.float32)
    np.testing.assert_allclose(constant(x)[0], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(module(x)[0], constant(x)[0], rtol=0, atol=0)
    # The conversion left main: it takes the weight converted, from main_transform_params.
    (lifted_path,) = (tmp_path / "ir").glob("*_lift_params.py")
    lifted = lifted_path.read_text()
    transform, main = lifted.split("def main_transform_params(")[1].split("def main(")
    assert "R.call_tir(cls._to_fp16_transposed, (W,)" in transform
    signature = main.split("\n")[0]
    assert signature.startswith('x: R.Tensor((4, 16), dtype="float32"), lv: R.Tensor((24, 16), dt')
    assert "call_tir" not in main and "R.tvmext.test_conv.linear_te(x, lv)" in main
    # Bound once; calls reuse the converted weight.
    module._vm = _CountingVM(module._vm)
    w2 = rng.standard_normal((16, 24)).astype(np.float32)
    module.set_params(W=w2)
    for _ in range(3):
        y = module(x)[0]
    assert module._vm.calls == {"main_transform_params": 1, "main": 3}
    np.testing.assert_allclose(
        y, x @ w2.astype(np.float16).astype(np.float32), rtol=1e-5, atol=1e-5
    )


@pytest.mark.native
def test_artifact_with_runtime_weights_describes_them(linear_te_conversion, rng, tmp_path):
    w = rng.standard_normal((16, 24)).astype(np.float32)
    x = rng.standard_normal((4, 16)).astype(np.float32)
    path = tvmext.compile(_model(w), keep_params_in_input=True).export(tmp_path / "m.so")
    loaded = tvmext.load(path)
    assert [str(p) for p in loaded.params] == ["W: [16, 24] float32"]
    with pytest.raises(
        tvmext.ShapeError, match=r"runtime parameters \(W\): bind them with set_par"
    ):
        loaded(x)
    with pytest.raises(
        tvmext.ShapeError, match=r"weight 'W': expected float32 of shape \[16, 24\]"
    ):
        loaded.set_params(w.T.copy())
    loaded.set_params(w)
    expected = x @ w.astype(np.float16).astype(np.float32)
    np.testing.assert_allclose(loaded(x)[0], expected, rtol=1e-5, atol=1e-5)
    bound_at_load = tvmext.load(path, params={"W": w})
    np.testing.assert_allclose(bound_at_load(x)[0], expected, rtol=1e-5, atol=1e-5)


def test_models_without_runtime_weights_take_no_params(rng):
    from onnx_models import mlp

    module = tvmext.compile(mlp(batch=2))
    assert module.params == []
    with pytest.raises(tvmext.ShapeError, match="takes no runtime weights"):
        module.set_params(np.zeros(3, np.float32))


def test_weight_that_does_not_fit_the_conversion_names_node_and_shape(rng):
    @tvmext.op("test_conv.blocked", replace=True)
    def blocked(x, w):
        k = te.reduce_axis((0, x.shape[1]), "k")
        return te.compute(
            (x.shape[0], w.shape[0] * w.shape[2]),
            lambda i, j: te.sum(x[i, k] * w[j // 8, k, j % 8], axis=k),
        )

    blocked.onnx("com.conv", "Linear", replace=True)

    @blocked.convert_param("w")
    def _to_blocks_of_8(w):  # [k, n] -> [n / 8, k, 8]
        k, n = w.shape
        return np.ascontiguousarray(w.reshape(k, n // 8, 8).transpose(1, 0, 2))

    w = rng.standard_normal((16, 24)).astype(np.float32)
    x = rng.standard_normal((4, 16)).astype(np.float32)
    np.testing.assert_allclose(tvmext.compile(_model(w))(x)[0], x @ w, rtol=1e-5, atol=1e-5)
    with pytest.raises(
        tvmext.ModelError,
        match=r"node 'linear' .*converting weight 'w' of shape \[16, 20\] float32 for op "
        r"'test_conv\.blocked' failed: ValueError",
    ):
        tvmext.compile(_model(rng.standard_normal((16, 20)).astype(np.float32), n_out=20))


def test_convert_param_names_a_real_input_and_kind():
    with pytest.raises(tvmext.OpDefinitionError, match="convert_param names unknown input 'v'"):
        tvmext.ops.swish.convert_param("v")
    with pytest.raises(tvmext.OpDefinitionError, match="kind must be one of numpy, te, got 'c'"):
        tvmext.ops.swish.convert_param("x", kind="c")

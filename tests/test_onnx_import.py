"""The domain-aware ONNX importer: same module as TVM's without custom ops, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from onnx_models import custom_node_model, mlp, save
from tvm.relax.frontend.onnx import from_onnx as tvm_from_onnx

import tvmext
from tvmext.onnx import importer as onnx_import
from tvmext.ops import swish


def test_without_custom_ops_same_module_as_tvm():
    model = mlp(batch=4)
    ours = onnx_import.from_onnx(model)
    tvm.ir.assert_structural_equal(ours, tvm_from_onnx(model))


def test_unregistered_custom_node_names_node_domain_and_registrations():
    model = custom_node_model(domain="com.nobody", op_type="Frob")
    with pytest.raises(
        tvmext.ModelError,
        match=r"node 'custom' \(com.nobody::Frob\): no converter for op type 'Frob' in domain "
        r"'com.nobody' \(domain 'com.nobody' has nothing registered\)",
    ):
        onnx_import.from_onnx(model)


def test_lists_what_the_domain_has():
    swish.onnx("com.listing", "Swish", replace=True)
    with pytest.raises(tvmext.ModelError, match=r"domain 'com\.listing' has Swish registered"):
        onnx_import.from_onnx(custom_node_model(domain="com.listing", op_type="Swash"))


def test_domain_decides_the_converter(rng):
    """Same op_type in two domains maps to two different ops."""

    @tvmext.op("test_domain.negate", replace=True)
    def negate(x):
        return tvm.te.compute(x.shape, lambda *i: -x[i])

    swish.onnx("com.a", "Act", replace=True)
    negate.onnx("com.b", "Act", replace=True)
    x = rng.standard_normal((2, 16)).astype("float32")
    a = tvmext.compile(custom_node_model(domain="com.a", op_type="Act"))(x)[0]
    b = tvmext.compile(custom_node_model(domain="com.b", op_type="Act"))(x)[0]
    np.testing.assert_allclose(a, 2 * x / (1 + np.exp(-2 * x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, -2 * x)


def test_wrong_attribute_type_names_the_node():
    swish.onnx("com.attr", "Swish", replace=True)
    model = custom_node_model(domain="com.attr", attrs={"beta": "high"})
    with pytest.raises(
        tvmext.ModelError,
        match=r"node 'custom' \(com.attr::Swish\): op 'tvmext.swish': attribute 'beta' expects",
    ):
        onnx_import.from_onnx(model)


def test_wrong_input_count_names_the_node():
    tvmext.ops.rms_norm.onnx("com.count", "RMS", replace=True)
    with pytest.raises(tvmext.ModelError, match=r"node 'custom' .* takes 2 tensor input\(s\)"):
        onnx_import.from_onnx(custom_node_model(domain="com.count", op_type="RMS"))


def test_attribute_renaming_and_conversion(rng):
    swish.onnx("com.rename", "Swish", attrs={"alpha": "beta"}, replace=True)

    @swish.onnx("com.convert", "Swish", replace=True)
    def _attrs(onnx_attrs):
        return {"beta": onnx_attrs["log_beta"] and float(np.exp(onnx_attrs["log_beta"]))}

    x = rng.standard_normal((2, 16)).astype("float32")
    expected = 2 * x / (1 + np.exp(-2 * x * 3.0))
    renamed = custom_node_model(domain="com.rename", attrs={"alpha": 3.0})
    converted = custom_node_model(domain="com.convert", attrs={"log_beta": float(np.log(3.0))})
    for model in (renamed, converted):
        np.testing.assert_allclose(tvmext.compile(model)(x)[0], expected, rtol=1e-5, atol=1e-6)


def test_malformed_and_missing_files(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a protobuf at all")
    with pytest.raises(tvmext.ModelError, match=r"is not a readable ONNX model|holds no graph"):
        tvmext.compile(tmp_path / "junk.onnx")
    with pytest.raises(tvmext.ModelError, match="does not exist"):
        tvmext.compile(tmp_path / "missing.onnx")
    model = mlp()
    model.graph.node[0].input[1] = "no_such_tensor"
    with pytest.raises(
        tvmext.ModelError,
        match=r"node 'fc1' \(ai.onnx::MatMul\): input 'no_such_tensor' is neither",
    ):
        tvmext.compile(save(model, tmp_path, "broken.onnx"))


def test_input_shape_for_unknown_input():
    with pytest.raises(
        tvmext.ModelError, match=r"input 'z' given a shape or dtype is not a model input"
    ):
        tvmext.compile(mlp(), input_shapes="z:[1,2]")

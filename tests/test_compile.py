"""tvmext.compile, tvmext.Module and tvmext.load on real ONNX and Relax models."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from conftest import single_op_module
from onnx_models import custom_node_model, mlp, save
from tvm import relax

import tvmext
from tvmext.ops import swish


def _ort(path, **inputs):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, inputs)


def test_onnx_mlp_matches_onnxruntime(rng, tmp_path):
    path = save(mlp(), tmp_path, "mlp.onnx")
    module = tvmext.compile(path, input_shapes={"x": (8, 32)})
    x = rng.standard_normal((8, 32)).astype("float32")
    (got,) = module.run(x)
    np.testing.assert_allclose(got, _ort(path, x=x)[0], rtol=1e-5, atol=1e-6)
    assert module(x=x)[0].shape == (8, 10)
    assert [(i.name, i.shape, i.dtype) for i in module.inputs] == [("x", (8, 32), "float32")]


def test_symbolic_batch_runs_any_batch(rng, tmp_path):
    path = save(mlp(), tmp_path, "mlp.onnx")
    module = tvmext.compile(path)
    assert module.inputs[0].shape == ("N", 32)
    for n in (1, 5):
        x = rng.standard_normal((n, 32)).astype("float32")
        np.testing.assert_allclose(module(x)[0], _ort(path, x=x)[0], rtol=1e-5, atol=1e-6)


def test_wrong_inputs_name_input_expected_and_given(tmp_path):
    module = tvmext.compile(save(mlp(), tmp_path, "mlp.onnx"), input_shapes="x:[4,32]")
    with pytest.raises(
        tvmext.ShapeError,
        match=r"input 'x': expected float32 of shape \[4, 32\], got float32 of shape \[4, 31\]",
    ):
        module(np.zeros((4, 31), "float32"))
    with pytest.raises(tvmext.ShapeError, match=r"expected float32 .* got float64"):
        module(np.zeros((4, 32)))
    with pytest.raises(tvmext.ShapeError, match=r"takes 1 input\(s\) \(x\), got 2"):
        module(np.zeros((4, 32), "float32"), np.zeros(1))
    with pytest.raises(tvmext.ShapeError, match="unknown input"):
        module(y=np.zeros((4, 32), "float32"))


@pytest.mark.native
def test_export_is_self_contained_and_loads_without_tvmext(rng, tmp_path):
    path = save(mlp(), tmp_path, "mlp.onnx")
    artifact = tvmext.compile(path, input_shapes="x:[2,32]").export(tmp_path / "mlp.so")
    assert set(os.listdir(tmp_path)) == {"mlp.onnx", "mlp.so"}  # no temporary left behind
    x = rng.standard_normal((2, 32)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    code = f"""
import sys, numpy as np, tvm
from tvm import relax
assert "tvmext" not in sys.modules
vm = relax.VirtualMachine(tvm.runtime.load_module({str(artifact)!r}), tvm.cpu())
y = vm["main"](tvm.runtime.tensor(np.load({str(tmp_path / "x.npy")!r}))).numpy()
np.save({str(tmp_path / "y.npy")!r}, y)
assert "tvmext" not in sys.modules
"""
    env = {**os.environ, "TVM_DEVICE_BACKEND_AUTOLOAD": "0"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), _ort(path, x=x)[0], rtol=1e-5)
    loaded = tvmext.load(artifact)
    assert loaded.inputs == tvmext.compile(path, input_shapes="x:[2,32]").inputs
    np.testing.assert_allclose(loaded(x)[0], _ort(path, x=x)[0], rtol=1e-5)


def test_relax_module_with_custom_op(rng):
    mod = single_op_module(swish, relax.TensorType((4, 16), "float32"), beta=2.0)
    module = tvmext.compile(mod)
    x = rng.standard_normal((4, 16)).astype("float32")
    np.testing.assert_allclose(module(x)[0], x / (1 + np.exp(-2 * x)), rtol=1e-5, atol=1e-6)


def test_custom_domain_node_with_attribute(rng, tmp_path):
    @tvmext.op("test_compile.scaled_swish", replace=True)
    def scaled_swish(x, *, beta: float = 1.0):
        return swish.compute(x, beta=beta)

    scaled_swish.onnx("com.test", "Swish", replace=True)
    path = save(custom_node_model(attrs={"beta": 0.5}), tmp_path, "custom.onnx")
    module = tvmext.compile(path)
    x = rng.standard_normal((3, 16)).astype("float32")
    np.testing.assert_allclose(module(x)[0], 2 * x / (1 + np.exp(-x)), rtol=1e-5, atol=1e-6)


def test_benchmark_reports_statistics(tmp_path):
    module = tvmext.compile(save(mlp(), tmp_path, "mlp.onnx"), input_shapes="x:[4,32]")
    result = module.benchmark(repeat=3, number=2)
    assert 0 < result.min <= result.median <= result.max
    assert (result.repeat, result.number) == (3, 2)
    assert "median" in str(result)


def test_dump_ir_writes_every_stage(tmp_path):
    tvmext.compile(save(mlp(), tmp_path, "mlp.onnx"), dump_ir=tmp_path / "ir")
    names = sorted(os.listdir(tmp_path / "ir"))
    stages = [n.split("_", 1)[1].removesuffix(".py").removesuffix(".onnx.txt") for n in names]
    assert stages == [
        "import.integer_qdq", "import.packed_types",  # the importer's ONNX rewrites
        "import", "lift_params", "extra_passes", "prepare", "optimize", "layout", "partition",
        "dispatch", "legalize", "fuse", "schedule", "lower_dataflow", "finalize",
    ]  # fmt: skip
    onnx_text = (tmp_path / "ir" / names[0]).read_text()
    assert "MatMul (" in onnx_text and '"values": "not shown"' in onnx_text
    assert "R.matmul" in (tmp_path / "ir" / names[2]).read_text()


def test_unknown_option_and_target_errors(tmp_path):
    path = save(mlp(), tmp_path, "mlp.onnx")
    with pytest.raises(tvmext.CompileError, match=r"unknown compile option\(s\) fast; options:"):
        tvmext.compile(path, fast=True)
    with pytest.raises(tvmext.CompileError, match="unknown external target 'npu'"):
        tvmext.compile(path, "npu, llvm")
    with pytest.raises(tvmext.CompileError, match="invalid target"):
        tvmext.compile(path, "nosuchkind")


def test_export_into_missing_folder_leaves_nothing(tmp_path):
    module = tvmext.compile(save(mlp(), tmp_path, "mlp.onnx"), input_shapes="x:[4,32]")
    with pytest.raises(tvmext.TvmextError, match=r"cannot write .*m\.so.*does not exist"):
        module.export(tmp_path / "nope" / "m.so")
    assert not (tmp_path / "nope").exists()


def test_export_without_a_compiler_names_it_and_writes_nothing(tmp_path, monkeypatch):
    module = tvmext.compile(save(mlp(), tmp_path, "mlp.onnx"), "llvm", input_shapes="x:[4,32]")
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    with pytest.raises(tvmext.NativeBuildError, match=r"links it with the C\+\+ compiler "
                                                      r"'.*no-such-g\+\+' \(\$CXX\), which is "
                                                      r"not installed"):  # fmt: skip
        module.export(tmp_path / "m.so")
    assert not (tmp_path / "m.so").exists()


@pytest.mark.native
def test_load_on_a_device(tmp_path):
    import tvm

    artifact = tvmext.compile(save(mlp(), tmp_path, "mlp.onnx"), input_shapes="x:[2,32]").export(
        tmp_path / "m.so"
    )
    assert tvmext.load(artifact, "cpu").device == tvm.cpu()
    if not tvm.cuda(0).exist:
        with pytest.raises(tvmext.CompileError, match="device 'cuda' is not available"):
            tvmext.load(artifact, "cuda")
    with pytest.raises(tvmext.CompileError, match="unknown device 'tpu'"):
        tvmext.load(artifact, "tpu")

"""The oneDNN target on real ONNX models, against ONNX Runtime (fp32).

Tolerances: rtol 1e-4, atol 1e-5 on outputs of order 1 (oneDNN's blocked
convolutions and GEMMs sum in a different order than ONNX Runtime's MLAS; the
observed differences are a few 1e-6).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from onednn_verbose import executions
from onnx import TensorProto, helper, numpy_helper
from onnx_cpu_models import mlp, resnet_cnn, transformer_encoder
from onnx_models import save

import tvmext

pytestmark = pytest.mark.onednn

RTOL, ATOL = 1e-4, 1e-5


def _ort(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.fixture(scope="module")
def compiled():
    """Each model with its oneDNN-compiled module (compiled once for the file)."""
    models = {
        "resnet_cnn": resnet_cnn(batch=2),
        "mlp": mlp(),
        "transformer_encoder": transformer_encoder(),
    }
    return {name: (m, tvmext.compile(m, "dnnl, llvm")) for name, m in models.items()}


@pytest.mark.parametrize("name", ["resnet_cnn", "mlp", "transformer_encoder"])
def test_model_matches_onnxruntime(compiled, name, rng):
    model, module = compiled[name]
    for _ in range(2):  # the second call reuses primitives and packed weights
        x = rng.standard_normal(module.inputs[0].shape).astype(np.float32)
        np.testing.assert_allclose(module(x)[0], _ort(model, x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # every conv (BN folded, bias, residual add and ReLU as post-ops), pools (the
        # global average pool is a mean over H and W), Gemm and the input's transpose
        (
            "resnet_cnn",
            {
                "relax.nn.conv2d": 6,
                "relax.nn.max_pool2d": 1,
                "relax.mean": 1,
                "relax.permute_dims": 1,
            },
        ),
        ("mlp", {"relax.matmul": 3, "relax.nn.softmax": 1}),
        ("transformer_encoder", {"relax.matmul": 8, "relax.nn.layer_norm": 2}),
    ],
)
def test_heavy_ops_run_on_onednn(compiled, name, expected):
    (report,) = compiled[name][1].reports
    on_dnnl = [o.op for o in report.ops if o.placement == "dnnl"]
    for op, count in expected.items():
        assert on_dnnl.count(op) == count, str(report)
    assert report.offloaded_fraction() > 0.99
    assert not any(o.op == "relax.nn.batch_norm" for o in report.ops)  # folded into convs
    left = {o.op for o in report.ops if o.placement == "tvm"}
    assert left <= {"relax.permute_dims", "relax.reshape"}, str(report)  # views of size-1 dims


def test_encoder_splits_and_merges_heads_inside_the_batched_matmuls(compiled):
    """The Reshape/Transpose pairs around attention are strided oneDNN operands and
    results: nothing of the encoder is left on TVM."""
    (report,) = compiled["transformer_encoder"][1].reports
    assert {o.placement for o in report.ops} == {"dnnl"}, str(report)
    views = [o.detail for o in report.ops if o.op in ("relax.reshape", "relax.permute_dims")]
    assert sorted(set(views)) == ["dnnl.matmul_in_view_post1", "dnnl.matmul_out_view"]
    assert len(views) == 8


def _relu6_and_erf_gelu(opset: int = 13):
    """Conv -> Clip(0, 6) (ReLU6), flattened into MatMul -> GELU written with Erf, as
    exporters write them before ONNX had Gelu."""
    rng = np.random.default_rng(0)
    value = {"w": rng.standard_normal((8, 3, 3, 3)) * 0.5, "lo": 0.0, "hi": 6.0,
             "fc": rng.standard_normal((8 * 6 * 6, 16)) * 0.1, "s2": np.sqrt(2), "one": 1.0,
             "half": 0.5, "shape": np.array([2, -1])}  # fmt: skip
    inits = [
        numpy_helper.from_array(np.asarray(v, np.int64 if k == "shape" else np.float32), k)
        for k, v in value.items()
    ]
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), node("Clip", ["c", "lo", "hi"], ["r"]),
        node("Reshape", ["r", "shape"], ["f"]), node("MatMul", ["f", "fc"], ["m"]),
        node("Div", ["m", "s2"], ["d"]), node("Erf", ["d"], ["e"]),
        node("Add", ["e", "one"], ["a"]), node("Mul", ["m", "a"], ["g"]),
        node("Mul", ["g", "half"], ["y"]),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "relu6_gelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 16])], inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_relu6_and_erf_gelu_are_post_ops(rng):
    model = _relu6_and_erf_gelu()
    module = tvmext.compile(model, "dnnl, llvm")
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32) * 3
    np.testing.assert_allclose(module(x)[0], _ort(model, x), rtol=RTOL, atol=ATOL)
    (report,) = module.reports
    placed = {o.op: o.detail for o in report.ops if o.placement == "dnnl"}
    assert placed["relax.clip"] == placed["relax.nn.conv2d"] == "dnnl.conv2d_post1"
    assert placed["relax.nn.gelu"] == placed["relax.matmul"] == "dnnl.dense_post1"
    assert not [o for o in report.ops if o.placement == "tvm" and o.op != "relax.reshape"]


def test_resnet_fuses_bias_residual_and_relu_into_the_conv(compiled):
    (report,) = compiled["resnet_cnn"][1].reports
    chains = {o.detail for o in report.ops if o.op == "relax.nn.conv2d"}
    # conv + bias + residual add + ReLU: one primitive with three post-ops
    assert "dnnl.conv2d_post3" in chains


def test_exported_artifact_finds_libdnnl_without_ld_library_path(compiled, tmp_path, rng):
    model, module = compiled["mlp"]
    artifact = module.export(tmp_path / "mlp_dnnl.so")
    x = rng.standard_normal(module.inputs[0].shape).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, numpy as np, tvmext; m = tvmext.load(sys.argv[1]); "
        "np.save(sys.argv[3], m(np.load(sys.argv[2]))[0])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "OCL_ICD_FILENAMES")}
    subprocess.run(
        [sys.executable, "-c", script, artifact, tmp_path / "x.npy", tmp_path / "y.npy"],
        check=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), _ort(model, x), rtol=RTOL, atol=ATOL)


def test_cli_compile_prints_the_partition_report(tmp_path):
    path = save(mlp(batch=4, d_in=16, d_hidden=32), tmp_path, "mlp.onnx")
    done = subprocess.run(
        [sys.executable, "-m", "tvmext", "compile", str(path), "--target", "dnnl, llvm",
         "--report", "-o", str(tmp_path / "mlp.so")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "relax.matmul" in done.stdout and "dnnl: dnnl.dense_post2" in done.stdout
    assert "dnnl runs 9 of 9 ops, 100.0%" in done.stdout
    assert (tmp_path / "mlp.so").is_file()


def test_cli_ops_lists_the_dnnl_target_and_its_passes():
    done = subprocess.run(
        [sys.executable, "-m", "tvmext", "ops"], capture_output=True, text=True, check=True
    )
    targets = done.stdout.split("targets:")[1]
    assert "dnnl" in targets and "target/dnnl/__init__.py" in targets
    assert "tvmext.fold_batch_norm           prepare 0, inference only, targets dnnl" in done.stdout
    assert "target/dnnl/passes/fold_batch_norm.py" in done.stdout
    assert "tvmext.nhwc_layout               layout 0, targets dnnl" in done.stdout


def test_weights_are_reordered_on_the_first_call_only(tmp_path):
    """oneDNN's own verbose log: the first inference packs the weights (reorder
    primitives); later inferences run only the layers (the input's NCHW->NHWC transpose
    is the one reorder left), with optimized kernels."""
    script = (
        "import sys, numpy as np, tvmext; sys.path.insert(0, sys.argv[1]); "
        "from onnx_cpu_models import resnet_cnn; m = tvmext.compile(resnet_cnn(), 'dnnl, llvm'); "
        "x = np.ones((1, 3, 32, 32), np.float32); m(x); print('=== second', flush=True); m(x)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, os.path.dirname(__file__)],
        capture_output=True, text=True, check=True, env={**os.environ, "ONEDNN_VERBOSE": "1"},
    )  # fmt: skip
    first, second = done.stdout.split("=== second")
    executed = executions(second)
    kinds = [kind for kind, _ in executed]
    assert kinds.count("reorder") == 1
    # the classifier's matmul runs as a 1x1 convolution where oneDNN's matmul is gemm-based
    assert kinds.count("convolution") + kinds.count("matmul") == 7
    assert kinds.count("convolution") >= 6
    assert kinds.count("pooling") == 2  # max pool, global average pool
    assert not [impl for _, impl in executed if impl.startswith("ref")]
    assert "reorder" in {kind for kind, _ in executions(first)}


_SPIN_COUNT = (
    "import ctypes, sys, tvmext; sys.path.insert(0, sys.argv[1]); "
    "from onnx_cpu_models import resnet_cnn; tvmext.compile(resnet_cnn(), sys.argv[2]); "
    "getenv = ctypes.CDLL(None).getenv; getenv.restype = ctypes.c_char_p; "
    "print(getenv(b'TVM_THREAD_POOL_SPIN_COUNT'))"
)


@pytest.mark.parametrize(
    ("target", "user", "expected"),
    [("dnnl, llvm", None, "b'0'"), ("llvm", None, "None"), ("dnnl, llvm", "7", "b'7'")],
)
def test_onednn_artifacts_let_idle_tvm_workers_sleep(target, user, expected):
    """An artifact that calls oneDNN sets TVM_THREAD_POOL_SPIN_COUNT=0 when it loads
    (TVM's workers would spin on the cores oneDNN's threads need), unless the user set it."""
    env = {k: v for k, v in os.environ.items() if k != "TVM_THREAD_POOL_SPIN_COUNT"}
    if user is not None:
        env["TVM_THREAD_POOL_SPIN_COUNT"] = user
    done = subprocess.run(
        [sys.executable, "-c", _SPIN_COUNT, os.path.dirname(__file__), target],
        capture_output=True, text=True, env=env, check=True, timeout=300,
    )  # fmt: skip
    assert done.stdout.split()[-1] == expected

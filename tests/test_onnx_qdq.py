"""Quantized (QDQ) models from ONNX Runtime's static quantizer: tvmext's output matches
the model's definition within one quantization step per element.

The reference is ONNX Runtime with its graph optimizations off, which runs each
DequantizeLinear, float op and QuantizeLinear as written. Its optimized session fuses
them into integer kernels that, on CPUs without VNNI (AVX2, AVX-512 alone), add pairs of
u8 x s8 products in int16 and saturate (its documented ``reduce_range`` caveat): 3 to 215
steps off the definition on these models there, where tvmext's integer products are exact
(and on the dnnl target there, the products stay float for oneDNN's f32 kernels).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import python_with_onednn_isa
from onnx import TensorProto, helper, numpy_helper
from qdq_models import output_step, quantized

import tvmext
from tvmext.onnx.qdq_integer import integer_qdq

# (model, per-channel weights, activation type, target): one configuration per model and
# target in the default tier, the others in the full tier.
CASES = [
    pytest.param("resnet", False, "uint8", "llvm", marks=pytest.mark.full),
    ("resnet", True, "int8", "llvm"),
    ("resnet", True, "uint8", "dnnl, llvm"),
    ("bert", False, "uint8", "llvm"),
    pytest.param("bert", True, "int8", "llvm", marks=pytest.mark.full),
    ("bert", False, "int8", "dnnl, llvm"),
]


def _as_defined(model: str | bytes, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The first output of ``model`` computed node by node by ONNX Runtime, unfused."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("qdq"))


@pytest.mark.parametrize(("name", "per_channel", "activations", "target"), CASES)
def test_zoo_qdq_model_matches_its_definition(folder, name, per_channel, activations, target):
    path, inputs = quantized(name, folder, per_channel=per_channel, activations=activations)
    want = _as_defined(path, inputs)
    module = tvmext.compile(path, target)
    got = module.run(**inputs)[0]
    # the convolutions and dense layers run on oneDNN: int8 where its int8 kernels are
    # exact, the model's float products elsewhere
    if target != "llvm":
        assert module.reports[0].offloaded_fraction() > 0.8, str(module.reports[0])
    assert got.shape == want.shape and got.dtype == want.dtype
    step = output_step(onnx.load(path))
    worst = float(np.max(np.abs(got - want)))
    assert worst <= step * 1.001, f"{name}: max difference {worst} is over one step ({step})"
    assert np.std(want) > 10 * step  # the comparison is not between near-constant outputs


def test_every_quantized_product_becomes_integer(folder):
    path, _ = quantized("resnet", folder, per_channel=True, activations="int8")
    model = onnx.load(path)
    ops = [n.op_type for n in integer_qdq(model).graph.node]
    before = [n.op_type for n in model.graph.node]
    assert ops.count("ConvInteger") == before.count("Conv") and "Conv" not in ops
    assert ops.count("MatMulInteger") == before.count("Gemm") and "Gemm" not in ops


def _qdq_conv(bias_scale_factor: float) -> onnx.ModelProto:
    """DQ(x) -> Conv(DQ(w), DQ(b)) -> Q -> DQ, per-channel weights; the bias is quantized
    with ``bias_scale_factor`` times the product of the scales."""
    rng = np.random.default_rng(3)
    x_scale, w_scale = np.float32(0.05), rng.uniform(0.01, 0.02, 4).astype(np.float32)
    inits = [
        numpy_helper.from_array(x_scale, "xs"),
        numpy_helper.from_array(np.uint8(120), "xz"),
        numpy_helper.from_array(rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8), "wq"),
        numpy_helper.from_array(w_scale, "ws"),
        numpy_helper.from_array(np.zeros(4, np.int8), "wz"),
        numpy_helper.from_array(rng.integers(-500, 500, 4).astype(np.int32), "bq"),
        numpy_helper.from_array(x_scale * w_scale * np.float32(bias_scale_factor), "bs"),
        numpy_helper.from_array(np.zeros(4, np.int32), "bz"),
        numpy_helper.from_array(np.float32(0.07), "ys"),
        numpy_helper.from_array(np.uint8(128), "yz"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["x"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
        helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["b"], axis=0),
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 1]),
        helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]),
        helper.make_node("DequantizeLinear", ["cq", "ys", "yz"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "qdq_conv", [helper.make_tensor_value_info("xq", TensorProto.UINT8, [1, 3, 9, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 5, 8])], inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("bias_scale_factor", [1.0, 1.5])
def test_qdq_conv_matches_its_definition_with_or_without_the_rewrite(bias_scale_factor):
    model = _qdq_conv(bias_scale_factor)
    rewritten = [n.op_type for n in integer_qdq(model).graph.node]
    # A bias quantized with another scale is not the integer sum's: the node stays float.
    assert ("ConvInteger" in rewritten) == (bias_scale_factor == 1.0)
    xq = np.random.default_rng(4).integers(0, 256, (1, 3, 9, 8)).astype(np.uint8)
    want = _as_defined(model.SerializeToString(), {"xq": xq})
    got = tvmext.compile(model).run(xq=xq)[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=0.07 * 1.001)
    assert np.mean(got == want) > 0.95


def test_without_exact_int8_kernels_quantized_products_stay_float_for_onednn():
    """With oneDNN capped at AVX2 (its int8 kernels saturate there), the QDQ convolution
    is not rewritten to integers: it stays the model's float product, which oneDNN's
    f32 convolution runs, and matches the definition within one step."""
    script = (
        "import json, numpy as np, tvmext, test_onnx_qdq as t\n"
        "model = t._qdq_conv(1.0)\n"
        "xq = np.random.default_rng(4).integers(0, 256, (1, 3, 9, 8)).astype(np.uint8)\n"
        "want = t._as_defined(model.SerializeToString(), {'xq': xq})\n"
        "module = tvmext.compile(model, 'dnnl, llvm')\n"
        "steps = float(np.abs(module.run(xq=xq)[0] - want).max() / 0.07)\n"
        "rows = [(o.op, o.placement, o.detail) for o in module.reports[0].ops]\n"
        "print(json.dumps({'steps': steps, 'rows': rows}))\n"
    )
    done = python_with_onednn_isa(script, "AVX2")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["steps"] <= 1.001
    convs = [row for row in result["rows"] if row[0] == "relax.nn.conv2d"]
    assert convs and all(placement == "dnnl" for _, placement, _ in convs), result["rows"]
    assert not any("int8" in detail for _, _, detail in convs), result["rows"]


def test_dump_ir_shows_the_integer_rewrite(tmp_path):
    tvmext.compile(_qdq_conv(1.0), "llvm", dump_ir=tmp_path)
    before_import = (tmp_path / "00_import.integer_qdq.onnx.txt").read_text()
    assert "= ConvInteger <" in before_import and "= Conv <" not in before_import

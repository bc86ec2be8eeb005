"""Integer convolutions and dense layers on oneDNN's int8 primitives: ONNX ConvInteger
and MatMulInteger give the same int32 sums on ``"dnnl, llvm"`` as on ``"llvm"`` (TVM's
unscheduled integer loops), and run on oneDNN where oneDNN can take them: on CPUs with
VNNI, the only ones where its int8 kernels are exact."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import python_with_onednn_isa
from onnx import TensorProto, helper, numpy_helper

import tvmext
from tvmext.target.dnnl.library import find_onednn, has_exact_int8

pytestmark = pytest.mark.onednn

EXACT_INT8 = has_exact_int8(find_onednn().cpu_isa())
# Where an integer product runs: without VNNI oneDNN's int8 kernels saturate.
INT8_PLACEMENT = "dnnl" if EXACT_INT8 else "tvm"
needs_vnni = pytest.mark.skipif(
    not EXACT_INT8, reason="oneDNN's int8 kernels saturate on this CPU (no VNNI)"
)

_TYPES = {np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8}


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    """The model, its outputs' shapes filled in by ONNX's shape inference."""
    graph = helper.make_graph(nodes, "int8", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def _random(rng, dtype, shape) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def _run_both(model: onnx.ModelProto, **inputs: np.ndarray):
    want = tvmext.compile(model, "llvm").run(**inputs)
    module = tvmext.compile(model, "dnnl, llvm")
    return want, module.run(**inputs), module.reports[0]


def _placements(report, op: str) -> list[str]:
    return [o.placement for o in report.ops if o.op == op]


@pytest.mark.parametrize(
    ("dtype", "zero_point", "group", "strides", "dilations", "pads"),
    [
        (np.uint8, 131, 1, [2, 1], [1, 1], [1, 2, 0, 1]),  # zero point over the padding
        (np.int8, -5, 2, [1, 1], [2, 1], [2, 2, 2, 2]),
        (np.uint8, None, 1, [1, 2], [1, 1], [0, 0, 0, 0]),
    ],
)
def test_conv_integer_on_onednn_equals_tvm(rng, dtype, zero_point, group, strides, dilations, pads):
    weights = _random(rng, np.int8, (6, 4 // group, 3, 3))
    inits = [numpy_helper.from_array(weights, "w")]
    inputs = ["x", "w"]
    if zero_point is not None:
        inits.append(numpy_helper.from_array(np.array(zero_point, dtype), "xz"))
        inputs.append("xz")
    conv = helper.make_node(
        "ConvInteger", inputs, ["y"], group=group, strides=strides, dilations=dilations,
        pads=pads,
    )  # fmt: skip
    model = _model(
        [conv], [helper.make_tensor_value_info("x", _TYPES[dtype], [2, 4, 11, 10])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)], inits,
    )  # fmt: skip
    x = _random(rng, dtype, (2, 4, 11, 10))
    (want,), (got,), report = _run_both(model, x=x)
    assert got.dtype == np.int32 and np.array_equal(got, want)
    assert _placements(report, "relax.nn.conv2d") == [INT8_PLACEMENT], str(report)


def test_matmul_integer_layers_sharing_an_input_each_run_on_onednn(rng):
    """Two dense layers read one uint8 tensor (as attention's projections do): each
    gets its own widening, so both become oneDNN calls."""
    inits = [
        numpy_helper.from_array(_random(rng, np.int8, (16, 8)), "w1"),
        numpy_helper.from_array(_random(rng, np.int8, (16, 5)), "w2"),
        numpy_helper.from_array(np.uint8(77), "az"),
    ]
    nodes = [
        helper.make_node("MatMulInteger", ["a", "w1", "az"], ["y1"]),
        helper.make_node("MatMulInteger", ["a", "w2", "az"], ["y2"]),
    ]
    model = _model(
        nodes, [helper.make_tensor_value_info("a", TensorProto.UINT8, [2, 3, 16])],
        [helper.make_tensor_value_info(n, TensorProto.INT32, None) for n in ("y1", "y2")], inits,
    )  # fmt: skip
    a = _random(rng, np.uint8, (2, 3, 16))
    want, got, report = _run_both(model, a=a)
    for w, g in zip(want, got, strict=True):
        assert g.dtype == np.int32 and np.array_equal(g, w)
    assert _placements(report, "relax.matmul") == [INT8_PLACEMENT] * 2, str(report)


def test_weights_outside_int8_stay_on_tvm_with_the_reason(rng):
    weights = rng.integers(0, 256, (6, 4, 3, 3)).astype(np.uint8)
    weights[0, 0, 0, 0] = 250
    model = _model(
        [helper.make_node("ConvInteger", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
        [numpy_helper.from_array(weights, "w")],
    )
    x = _random(rng, np.uint8, (1, 4, 6, 6))
    (want,), (got,), report = _run_both(model, x=x)
    assert np.array_equal(got, want)
    conv = next(o for o in report.ops if o.op == "relax.nn.conv2d")
    assert conv.placement == "tvm" and "not int8 values" in conv.detail, str(report)


def _conv_integer(rng) -> tuple[onnx.ModelProto, np.ndarray]:
    """A uint8 ConvInteger by int8 weights and an input whose products saturate int16."""
    model = _model(
        [helper.make_node("ConvInteger", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 8, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
        [numpy_helper.from_array(np.full((4, 8, 3, 3), 127, np.int8), "w")],
    )
    return model, rng.integers(200, 256, (1, 8, 6, 6)).astype(np.uint8)


def test_without_vnni_integer_products_stay_on_tvm_with_the_reason():
    """oneDNN's int8 kernels without VNNI saturate pairs of products at int16 (this
    input's do): the compiler, asking oneDNN on such a CPU, keeps the product on TVM."""
    script = (
        "import numpy as np, tvmext, test_dnnl_int8 as t\n"
        "model, x = t._conv_integer(np.random.default_rng(0))\n"
        "want = tvmext.compile(model, 'llvm').run(x=x)[0]\n"
        "module = tvmext.compile(model, 'dnnl, llvm')\n"
        "assert np.array_equal(module.run(x=x)[0], want)\n"
        "conv = next(o for o in module.reports[0].ops if o.op == 'relax.nn.conv2d')\n"
        "print(conv.placement, conv.detail)\n"
    )
    done = python_with_onednn_isa(script, "AVX2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("tvm ") and "saturate on a CPU without VNNI" in done.stdout


@needs_vnni
def test_an_artifact_with_int8_primitives_refuses_a_cpu_without_vnni(rng, tmp_path):
    """Compiled where oneDNN's int8 kernels are exact, run where they are not: an error
    naming the op, not a wrong sum."""
    model, x = _conv_integer(rng)
    module = tvmext.compile(model, "dnnl, llvm")
    assert _placements(module.reports[0], "relax.nn.conv2d") == ["dnnl"]
    path = module.export(tmp_path / "conv.so")
    np.save(tmp_path / "x.npy", x)
    done = python_with_onednn_isa(
        f"import numpy as np, tvmext\n"
        f"tvmext.load({path!r}).run(x=np.load({str(tmp_path / 'x.npy')!r}))\n",
        "AVX2",
    )
    assert done.returncode != 0
    assert "saturate on a CPU without VNNI" in done.stderr, done.stderr[-3000:]
    assert "dnnl.conv2d_int8" in done.stderr


def _qdq_convs(rng, *, per_channel, out_type, bias, group, relu=False, layers=2):
    """``layers`` QDQ convolutions of one shape in a row, each with its own weights, scales
    and zero points (so that one composite function serves several call sites), the way
    ``quantize_static`` writes them: Q/DQ on activations, DQ on int8 weights and on an
    int32 bias of scale ``sx * sw``."""
    c, size = 8, 7
    nodes, inits = [helper.make_node("QuantizeLinear", ["x", "sx0", "zx0"], ["q0"])], []
    inits += [numpy_helper.from_array(np.float32(0.05), "sx0")]
    inits += [numpy_helper.from_array(out_type(3), "zx0")]
    for i in range(layers):
        channels = (c,) if per_channel else ()
        sw = (rng.random(channels) * 0.01 + 0.004).astype(np.float32)
        sx = float(numpy_helper.to_array(next(t for t in inits if t.name == f"sx{i}")))
        inits += [
            numpy_helper.from_array(_random(rng, np.int8, (c, c // group, 3, 3)), f"w{i}"),
            numpy_helper.from_array(sw, f"sw{i}"),
            numpy_helper.from_array(np.zeros(channels, np.int8), f"zw{i}"),
            numpy_helper.from_array(rng.integers(-900, 900, c).astype(np.int32), f"b{i}"),
            numpy_helper.from_array(
                (sx * sw).astype(np.float32) * np.ones(c, np.float32), f"sb{i}"
            ),
            numpy_helper.from_array(np.zeros(c, np.int32), f"zb{i}"),
            numpy_helper.from_array(np.float32(0.03 + 0.02 * i), f"sx{i + 1}"),
            numpy_helper.from_array(out_type(-7 if out_type is np.int8 else 121), f"zx{i + 1}"),
        ]
        conv_inputs = [f"d{i}", f"dw{i}"] + ([f"db{i}"] if bias else [])
        nodes += [
            helper.make_node("DequantizeLinear", [f"q{i}", f"sx{i}", f"zx{i}"], [f"d{i}"]),
            helper.make_node("DequantizeLinear", [f"w{i}", f"sw{i}", f"zw{i}"], [f"dw{i}"], axis=0),
            helper.make_node("DequantizeLinear", [f"b{i}", f"sb{i}", f"zb{i}"], [f"db{i}"], axis=0),
            helper.make_node("Conv", conv_inputs, [f"y{i}"], pads=[1, 1, 1, 1], group=group),
        ]
        quantized = f"y{i}"
        if relu:
            nodes.append(helper.make_node("Relu", [f"y{i}"], [f"r{i}"]))
            quantized = f"r{i}"
        nodes.append(
            helper.make_node(
                "QuantizeLinear", [quantized, f"sx{i + 1}", f"zx{i + 1}"], [f"q{i + 1}"]
            )
        )
    nodes.append(
        helper.make_node("DequantizeLinear", [f"q{layers}", f"sx{layers}", f"zx{layers}"], ["out"])
    )
    model = _model(
        nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, c, size, size])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    model = onnx.helper.make_model(model.graph, opset_imports=[helper.make_opsetid("", 19)])
    x = (rng.standard_normal((2, c, size, size)) * 3).astype(np.float32)
    return model, x, float(numpy_helper.to_array(next(t for t in inits if t.name == f"sx{layers}")))


@needs_vnni
@pytest.mark.parametrize(
    ("per_channel", "out_type", "bias", "group"),
    [
        (False, np.uint8, True, 1),
        (True, np.int8, True, 1),
        (True, np.uint8, False, 1),
        (True, np.int8, True, 2),
    ],
)
def test_requantization_fused_into_the_int8_convolution(rng, per_channel, out_type, bias, group):
    """QuantizeLinear after an integer convolution runs inside oneDNN's int8 primitive
    (output scale and zero point, uint8/int8 result): the same steps as TVM's
    unfused computation, the rounding order aside (at most one step, rarely)."""
    model, x, step = _qdq_convs(rng, per_channel=per_channel, out_type=out_type, bias=bias,
                                group=group)  # fmt: skip
    (want,), (got,), report = _run_both(model, x=x)
    steps = np.abs(got - want) / step
    assert steps.max() <= 1 and np.mean(steps > 0) < 0.01, steps.max()
    rows = [o.detail for o in report.ops if o.op == "relax.nn.conv2d"]
    assert len(rows) == 2 and all("dnnl.conv2d_int8_requant" in r for r in rows), str(report)


@needs_vnni
def test_requantization_after_an_activation_stays_apart(rng):
    """A ReLU between the convolution and QuantizeLinear is not in the fused pattern:
    the convolution is still oneDNN's int8 primitive, the requantization TVM's."""
    model, x, step = _qdq_convs(
        rng, per_channel=True, out_type=np.uint8, bias=True, group=1, relu=True
    )
    (want,), (got,), report = _run_both(model, x=x)
    assert np.abs(got - want).max() <= step
    rows = [o.detail for o in report.ops if o.op == "relax.nn.conv2d"]
    assert rows and all(r.startswith("dnnl.conv2d_int8") and "requant" not in r for r in rows)


@needs_vnni
@pytest.mark.parametrize(("per_channel", "out_type"), [(False, np.uint8), (True, np.int8)])
def test_requantization_fused_into_the_int8_dense_layer(rng, per_channel, out_type):
    """A quantized MatMul, its float bias Add and QuantizeLinear (a transformer's linear
    layer as ``quantize_static`` writes it): one oneDNN int8 matmul with bias, scales and
    the output zero point."""
    k, n = 32, 24
    sw = (rng.random(n if per_channel else ()) * 0.01 + 0.004).astype(np.float32)
    inits = [
        numpy_helper.from_array(np.float32(0.04), "sx"),
        numpy_helper.from_array(np.uint8(128), "zx"),
        numpy_helper.from_array(_random(rng, np.int8, (k, n)), "w"),
        numpy_helper.from_array(sw, "sw"),
        numpy_helper.from_array(np.zeros(sw.shape, np.int8), "zw"),
        numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "bias"),
        numpy_helper.from_array(np.float32(0.05), "sy"),
        numpy_helper.from_array(out_type(5), "zy"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"], axis=1),
        helper.make_node("MatMul", ["xd", "wd"], ["y"]),
        helper.make_node("Add", ["y", "bias"], ["yb"]),
        helper.make_node("QuantizeLinear", ["yb", "sy", "zy"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["out"]),
    ]
    model = _model(
        nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, k])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    model = onnx.helper.make_model(model.graph, opset_imports=[helper.make_opsetid("", 19)])
    x = (rng.standard_normal((2, 5, k)) * 2).astype(np.float32)
    (want,), (got,), report = _run_both(model, x=x)
    steps = np.abs(got - want) / 0.05
    assert steps.max() <= 1 and np.mean(steps > 0) < 0.01, steps.max()
    rows = [o.detail for o in report.ops if o.op == "relax.matmul"]
    assert rows == ["dnnl.dense_int8_requant"], str(report)

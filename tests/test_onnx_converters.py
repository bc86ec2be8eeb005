"""tvmext's ONNX converters and import folding, on small models checked against NumPy
(the conformance record covers the onnx package's own cases)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import tvmext
from tvmext.onnx import importer as onnx_import


def _model(nodes, inputs, outputs, opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _tensor(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def test_shape_arithmetic_on_constants_folds_at_import():
    """Shape -> Equal -> Where -> Expand: TVM folds Shape but not Equal/Where, which
    left Expand with a data-dependent shape; folded, the output shape is static."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Constant", [], ["one"], value_ints=[1, 1]),
        helper.make_node("Equal", ["s", "one"], ["is_one"]),
        helper.make_node("Constant", [], ["four"], value_ints=[4, 4]),
        helper.make_node("Where", ["is_one", "four", "s"], ["target"]),
        helper.make_node("Expand", ["x", "target"], ["y"]),
    ]
    model = _model(
        nodes, [_tensor("x", TensorProto.FLOAT, [1, 3])], [_tensor("y", TensorProto.FLOAT, [4, 3])]
    )
    mod = onnx_import.from_onnx(model)
    assert [int(d) for d in mod["main"].ret_ty.shape.values] == [4, 3]
    x = np.arange(3, dtype=np.float32).reshape(1, 3)
    np.testing.assert_array_equal(tvmext.compile(model)(x)[0], np.broadcast_to(x, (4, 3)))


@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduction_over_runtime_axes(keepdims, rng):
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=keepdims)
    model = _model(
        [node],
        [_tensor("x", TensorProto.FLOAT, [2, 3, 4]), _tensor("axes", TensorProto.INT64, [2])],
        [_tensor("y", TensorProto.FLOAT, ["a", "b", "c"][: 1 + 2 * keepdims])],
    )
    module = tvmext.compile(model)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    for axes in ([0, 2], [-1, 1]):
        expected = x.sum(axis=tuple(axes), keepdims=bool(keepdims))
        (y,) = module(x, np.array(axes, np.int64))
        assert y.shape == expected.shape
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_reduce_max_of_minus_infinity_is_minus_infinity():
    node = helper.make_node("ReduceMax", ["x"], ["y"], keepdims=0)
    model = _model(
        [node], [_tensor("x", TensorProto.FLOAT, [2, 3])], [_tensor("y", TensorProto.FLOAT, [])]
    )
    x = np.array([[-np.inf] * 3, [-np.inf, 1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(tvmext.compile(model)(x)[0], np.float32(2.0))
    axis1 = _model(
        [helper.make_node("ReduceMax", ["x", "a"], ["y"], keepdims=0)],
        [_tensor("x", TensorProto.FLOAT, [2, 3])],
        [_tensor("y", TensorProto.FLOAT, [2])],
    )
    axis1.graph.initializer.append(helper.make_tensor("a", TensorProto.INT64, [1], [1]))
    np.testing.assert_array_equal(tvmext.compile(axis1)(x)[0], [-np.inf, 2.0])


def test_reshape_to_a_runtime_shape(rng):
    node = helper.make_node("Reshape", ["x", "shape"], ["y"])
    model = _model(
        [node],
        [_tensor("x", TensorProto.FLOAT, [2, 3, 4]), _tensor("shape", TensorProto.INT64, [3])],
        [_tensor("y", TensorProto.FLOAT, ["a", "b", "c"])],
    )
    module = tvmext.compile(model)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    for shape, expected in (([4, 0, -1], (4, 3, 2)), ([-1, 2, 2], (6, 2, 2))):
        (y,) = module(x, np.array(shape, np.int64))
        np.testing.assert_array_equal(y, x.reshape(expected))


@pytest.mark.parametrize(
    "onnx_type, np_type",
    [
        (TensorProto.FLOAT8E4M3FN, ml_dtypes.float8_e4m3fn),
        (TensorProto.FLOAT8E4M3FNUZ, ml_dtypes.float8_e4m3fnuz),
        (TensorProto.FLOAT8E5M2, ml_dtypes.float8_e5m2),
        (TensorProto.FLOAT8E5M2FNUZ, ml_dtypes.float8_e5m2fnuz),
    ],
)
def test_float8_casts_are_bit_exact(onnx_type, np_type, rng):
    """Round trip float32 -> float8 -> float32 against ml_dtypes (round to nearest even,
    saturating), over random values, subnormals, zeros, limits, infinities and NaN."""
    nodes = [
        helper.make_node("Cast", ["x"], ["f8"], to=onnx_type),
        helper.make_node("Cast", ["f8"], ["y"], to=TensorProto.FLOAT),
    ]
    model = _model(
        nodes,
        [_tensor("x", TensorProto.FLOAT, [1000])],
        [_tensor("f8", onnx_type, [1000]), _tensor("y", TensorProto.FLOAT, [1000])],
        opset=21,
    )
    finfo = ml_dtypes.finfo(np_type)
    special = [0.0, -0.0, float(finfo.max), float(finfo.smallest_subnormal), np.inf, -np.inf]
    x = np.concatenate(
        [
            rng.standard_normal(600) * 4,
            rng.standard_normal(300) * float(finfo.smallest_normal),
            rng.standard_normal(90) * float(finfo.max),
            special,
            [np.nan, 1e9, -1e9, float(finfo.max) * 1.01],
        ]
    ).astype(np.float32)
    f8, y = tvmext.compile(model)(x)
    expected = np.clip(x, -float(finfo.max), float(finfo.max)).astype(np_type)  # saturate
    assert f8.dtype == np.dtype(np_type)
    np.testing.assert_array_equal(f8.astype(np.float32), expected.astype(np.float32))
    np.testing.assert_array_equal(y, expected.astype(np.float32))


@pytest.mark.parametrize(
    ("onnx_type", "np_type"),
    [
        (TensorProto.INT4, ml_dtypes.int4),
        (TensorProto.UINT4, ml_dtypes.uint4),
        (TensorProto.INT2, ml_dtypes.int2),
        (TensorProto.UINT2, ml_dtypes.uint2),
        (TensorProto.FLOAT4E2M1, ml_dtypes.float4_e2m1fn),
    ],
)
def test_sub_byte_casts_match_ml_dtypes(onnx_type, np_type, rng):
    """float32 -> sub-byte -> Reshape -> float32, and a sub-byte initializer added in:
    the sub-byte tensors travel in byte carriers, in and out of the compiled model,
    with ml_dtypes' values (truncation and 0 out of range for the integers, nearest
    even saturating for float4)."""
    weight = helper.make_tensor(
        "w", onnx_type, [2, 3], np.arange(6).astype(np_type).astype(np.float32).tolist()
    )
    nodes = [
        helper.make_node("Cast", ["x"], ["packed"], to=onnx_type),
        helper.make_node("Reshape", ["packed", "shape"], ["reshaped"]),
        helper.make_node("Cast", ["reshaped"], ["y"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["w"], ["wf"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["y", "wf"], ["z"]),
    ]
    model = _model(
        nodes,
        [_tensor("x", TensorProto.FLOAT, [6])],
        [_tensor("reshaped", onnx_type, [2, 3]), _tensor("z", TensorProto.FLOAT, [2, 3])],
        opset=25,
    )
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [2, 3])
    model.graph.initializer.extend([weight, shape])
    x = np.concatenate([rng.standard_normal(3) * 5, [np.nan, 17.0, -0.25]]).astype(np.float32)
    packed, z = tvmext.compile(model)(x)
    with np.errstate(invalid="ignore"):  # NaN to an integer type: 0, as ml_dtypes does
        expected = x.astype(np_type).reshape(2, 3)
    assert packed.dtype == np.dtype(np_type)
    np.testing.assert_array_equal(packed.view(np.uint8), expected.view(np.uint8))
    weight_values = np.arange(6).astype(np_type).astype(np.float32).reshape(2, 3)
    np.testing.assert_array_equal(z, expected.astype(np.float32) + weight_values)


@pytest.mark.parametrize("round_mode", ["up", "down", "nearest"])
def test_float8_e8m0_cast_rounds_by_round_mode(round_mode, rng):
    nodes = [
        helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E8M0, round_mode=round_mode)
    ]
    model = _model(
        nodes,
        [_tensor("x", TensorProto.FLOAT, [64])],
        [_tensor("y", TensorProto.FLOAT8E8M0, [64])],
        opset=24,
    )
    x = np.concatenate([np.abs(rng.standard_normal(58)) * 10, [0, 1.5, 3.0, 1e-40, np.inf, 3e38]])
    x = x.astype(np.float32)
    (y,) = tvmext.compile(model)(x)
    expected = numpy_helper.to_float8e8m0(x, True, round_mode)
    np.testing.assert_array_equal(y.view(np.uint8), expected.view(np.uint8))


def test_errors_name_the_node_among_nodes_of_one_type():
    """Converters are looked up per node, so an error names its own node, whichever
    converter (tvmext's or TVM's) raised it."""
    nodes = [
        helper.make_node("Reshape", ["x", "s1"], ["a"], name="first"),
        helper.make_node("Reshape", ["a", "s2"], ["y"], name="second"),
    ]
    model = _model(
        nodes,
        [
            _tensor("x", TensorProto.FLOAT, [2, 3]),
            _tensor("s1", TensorProto.INT64, [2]),
            _tensor("s2", TensorProto.INT64, ["n"]),
        ],
        [_tensor("y", TensorProto.FLOAT, ["a", "b"])],
    )
    with pytest.raises(tvmext.ModelError, match=r"^node 'second' \(ai\.onnx::Reshape\): "):
        onnx_import.from_onnx(model)


@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool_with_one_window_over_the_input_is_a_mean(count_include_pad, rng):
    """EfficientNet's pooler: a 64x64 kernel (ceil_mode) over a 7x7 map. TVM's
    lowering pads the input to the kernel's size; tvmext averages the map."""
    import onnxruntime as ort

    node = helper.make_node(
        "AveragePool", ["x"], ["y"], kernel_shape=[64, 64], strides=[64, 64], ceil_mode=1,
        count_include_pad=count_include_pad, pads=[0, 0, 0, 0],
    )  # fmt: skip
    model = _model(
        [node],
        [_tensor("x", TensorProto.FLOAT, [1, 5, 7, 7])],
        [_tensor("y", TensorProto.FLOAT, [1, 5, 1, 1])],
    )
    x = rng.standard_normal((1, 5, 7, 7)).astype("float32")
    mod = onnx_import.from_onnx(model)
    assert "nn.avg_pool2d" not in mod.script() and "R.mean" in mod.script()
    got = tvmext.compile(model, "llvm").run(x)[0]
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, x.mean(axis=(2, 3), keepdims=True), rtol=1e-5, atol=1e-6)


def test_average_pool_with_several_windows_stays_a_pool(rng):
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    model = _model(
        [node],
        [_tensor("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [_tensor("y", TensorProto.FLOAT, [1, 3, 3, 3])],
    )
    assert "avg_pool2d" in onnx_import.from_onnx(model).script()
    x = rng.standard_normal((1, 3, 6, 6)).astype("float32")
    want = x.reshape(1, 3, 3, 2, 3, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(tvmext.compile(model, "llvm").run(x)[0], want, rtol=1e-5, atol=1e-6)


PAD_CASES = {
    # name: (pads, constant_value, axes, mode)
    "asymmetric spatial": ([0, 0, 0, 1, 0, 0, 1, 2], None, None, "constant"),
    "with a value": ([0, 1, 2, 0, 0, 0, 1, 1], 1.5, None, "constant"),
    "axes input": ([1, 0, 0, 2], None, [2, -1], "constant"),
    "negative (a crop)": ([0, 0, -1, 0, 0, 0, 0, 1], None, None, "constant"),
    "reflect": ([0, 0, 1, 1, 0, 0, 1, 1], None, None, "reflect"),
}


@pytest.mark.parametrize("case", PAD_CASES)
def test_pad_matches_onnxruntime(case, rng):
    """Constant-mode Pad with constant pads becomes Relax's nn.pad (which a later pass
    can fold into a convolution); crops and other modes go to TVM's converter."""
    import onnxruntime as ort
    from onnx import numpy_helper

    pads, value, axes, mode = PAD_CASES[case]
    names = ["x", "pads", "value" if value is not None else "", "axes" if axes else ""]
    inits = [numpy_helper.from_array(np.array(pads, np.int64), "pads")]
    if value is not None:
        inits.append(numpy_helper.from_array(np.array(value, np.float32), "value"))
    if axes:
        inits.append(numpy_helper.from_array(np.array(axes, np.int64), "axes"))
    node = helper.make_node("Pad", [n for n in names if n] if not axes else names, ["y"], mode=mode)
    shape = [1, 2, 4, 5]
    for i, axis in enumerate(axes or range(4)):
        shape[axis] += pads[i] + pads[len(pads) // 2 + i]
    graph = helper.make_graph(
        [node], "pad", [_tensor("x", TensorProto.FLOAT, [1, 2, 4, 5])],
        [_tensor("y", TensorProto.FLOAT, shape)], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    folded = case in ("asymmetric spatial", "with a value", "axes input")
    assert ("R.nn.pad" in onnx_import.from_onnx(model).script()) == folded
    x = rng.standard_normal((1, 2, 4, 5)).astype("float32")
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(tvmext.compile(model, "llvm").run(x)[0], want, rtol=1e-6)


@pytest.mark.parametrize("mode", ["SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("size, kernel, stride", [(7, 3, 2), (8, 3, 2), (6, 1, 1), (9, 4, 3)])
def test_conv_auto_pad_same_becomes_explicit_padding(mode, size, kernel, stride, rng):
    """TVM pads SAME convolutions in a separate kernel; tvmext gives the padding to the
    convolution itself, with ONNX's rule for the odd element."""
    import onnxruntime as ort
    from onnx import numpy_helper

    w = rng.standard_normal((4, 3, kernel, kernel)).astype("float32")
    node = helper.make_node(
        "Conv", ["x", "w"], ["y"], auto_pad=mode, strides=[stride, stride],
        kernel_shape=[kernel, kernel],
    )  # fmt: skip
    out = -(-size // stride)
    graph = helper.make_graph(
        [node], "conv", [_tensor("x", TensorProto.FLOAT, [1, 3, size, size])],
        [_tensor("y", TensorProto.FLOAT, [1, 4, out, out])], [numpy_helper.from_array(w, "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    script = onnx_import.from_onnx(model).script()
    assert "call_tir" not in script and "R.nn.conv2d" in script
    x = rng.standard_normal((1, 3, size, size)).astype("float32")
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    got = tvmext.compile(model, "llvm").run(x)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_constant_scale_of_fractional_size_uses_the_scale(mode):
    """Constant scales whose output size rounds down (5 * 0.7 = 3.5 -> 3): coordinates
    use the given scale, as the ONNX reference does (TVM's converter uses 3 / 5)."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    scales = numpy_helper.from_array(np.array([1, 1, 0.7, 1.6], dtype=np.float32), "scales")
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode)
    model = _model(
        [node],
        [_tensor("x", TensorProto.FLOAT, [1, 1, 5, 5])],
        [_tensor("y", TensorProto.FLOAT, [1, 1, 3, 8])],
    )
    model.graph.initializer.append(scales)
    x = np.random.default_rng(0).standard_normal((1, 1, 5, 5)).astype(np.float32)
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    (got,) = tvmext.compile(model).run(x)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)


def test_qlinearmatmul_per_row_a_scale_is_refused():
    """QLinearMatMul with a per-row ``a_scale`` is not supported: a ModelError gives the
    shape given, rather than broadcasting it along the wrong axis."""
    f, i8 = TensorProto.FLOAT, TensorProto.INT8
    names = ["a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"]
    shapes = [[2, 3], [2], [], [3, 4], [], [], [], []]
    elems = [i8, f, i8, i8, f, i8, f, i8]
    model = _model(
        [helper.make_node("QLinearMatMul", names, ["y"], name="qmm")],
        [_tensor(n, e, s) for n, e, s in zip(names, elems, shapes, strict=True)],
        [_tensor("y", i8, [2, 4])],
    )
    with pytest.raises(tvmext.ModelError, match=r"a_scale has shape \[2\]"):
        onnx_import.from_onnx(model)


@pytest.mark.parametrize(
    ("shape", "target"),
    [((2, 8, 30), "llvm"), ((1, 32, 6, 7), "llvm"), ((1, 32, 6, 7), "dnnl, llvm")],
)
def test_instance_norm_is_a_layer_norm_over_the_spatial_axes(shape, target, rng):
    """PyTorch exports GroupNorm as InstanceNormalization of the grouped tensor: it
    becomes one layer norm (oneDNN's on "dnnl, llvm"), then the channel affine."""
    import onnxruntime as ort

    channels = shape[1]
    inits = [
        numpy_helper.from_array(rng.standard_normal(channels).astype("float32"), "scale"),
        numpy_helper.from_array(rng.standard_normal(channels).astype("float32"), "bias"),
    ]
    node = helper.make_node("InstanceNormalization", ["x", "scale", "bias"], ["y"], epsilon=1e-3)
    graph = helper.make_graph(
        [node], "g", [_tensor("x", TensorProto.FLOAT, list(shape))],
        [_tensor("y", TensorProto.FLOAT, list(shape))], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = (rng.standard_normal(shape) * 3 + 1).astype("float32")
    mod = onnx_import.from_onnx(model)
    assert "R.nn.layer_norm" in mod.script() and "R.variance" not in mod.script()
    compiled = tvmext.compile(model, target)
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(compiled.run(x)[0], want, rtol=1e-4, atol=1e-5)
    if target != "llvm":
        assert "dnnl.layer_norm" in str(compiled.reports[0])


@pytest.mark.parametrize(
    ("equation", "shapes"),
    [
        ("bhlk,bhtk->bhlt", [(2, 3, 5, 4), (2, 3, 6, 4)]),  # CvT's attention scores
        ("bhlt,bhtv->bhlv", [(2, 3, 5, 6), (2, 3, 6, 4)]),
        ("bqhd,bkhd->bhqk", [(2, 5, 3, 4), (2, 6, 3, 4)]),
        ("abc,cd->abd", [(2, 3, 4), (4, 5)]),
        ("ij,kj->ik", [(3, 4), (5, 4)]),
        ("i,j->ij", [(3,), (4,)]),
        ("bi,bi->b", [(3, 4), (3, 4)]),
        ("bij,bjk->ki", [(2, 3, 4), (2, 4, 5)]),  # the batch summed too
        ("bij,bjk->bik", [(1, 3, 4), (2, 4, 5)]),  # a broadcast batch: TVM's einsum
    ],
)
@pytest.mark.native
def test_einsum_that_is_a_matmul_becomes_one(equation, shapes, rng):
    import onnxruntime as ort

    a, b = (rng.standard_normal(s).astype("float32") for s in shapes)
    want = np.einsum(equation, a, b)
    node = helper.make_node("Einsum", ["a", "b"], ["y"], equation=equation)
    model = _model(
        [node],
        [
            _tensor("a", TensorProto.FLOAT, list(shapes[0])),
            _tensor("b", TensorProto.FLOAT, list(shapes[1])),
        ],
        [_tensor("y", TensorProto.FLOAT, list(want.shape))],
    )
    script = onnx_import.from_onnx(model).script()
    broadcast = equation.startswith("b") and shapes[0][0] != shapes[1][0]
    assert ("R.matmul" in script) != broadcast
    ort_out = ort.InferenceSession(model.SerializeToString()).run(None, {"a": a, "b": b})[0]
    # oneDNN for the attention layouts (each of its compiles builds C++)
    targets = ("llvm", "dnnl, llvm") if equation.startswith("bh") else ("llvm",)
    for target in targets:
        got = tvmext.compile(model, target).run(a, b)[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got, ort_out, rtol=1e-5, atol=1e-5)

"""Models with symbolic shapes: compiled once, run at any size within their bounds.

Import keeps shape computations as functions of the input dimensions (a reshape to
``[batch, seq, 4, 16]`` stays that, a ``Range`` over the sequence has length ``seq``);
oneDNN partitions of symbolic shape create their primitives per shape at run time;
``shape_bounds`` bound the dimensions, and a run outside a bound is an error naming
the input and the dim. The zoo exported with dynamic axes (text models batch and
sequence, the others batch) runs at three sizes against ONNX Runtime and PyTorch on
both targets: a text encoder, a decoder and a CNN by default, all of it with ``-m full``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import main_module, relative_error
from model_zoo import MODELS, export_dynamic, resized_inputs
from onnx import TensorProto, helper
from tvm import relax, tirx

import tvmext

RTOL = 1e-4
TARGETS = ("llvm", "dnnl, llvm")
DEFAULT_TIER = ("bert", "llama", "resnet")
SIZES = ((1, 5), (3, 17), (2, 32))  # (batch, sequence length)


def _shape_graph() -> onnx.ModelProto:
    """``x [batch, seq, 8]`` reshaped to ``[batch, seq, 2, 4]`` through a shape computed
    at run time, plus position ids ``Range(0, seq)`` added as floats."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Gather", ["shape", "one"], ["seq"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"]),
        helper.make_node("Unsqueeze", ["seq", "axes0"], ["seq1"]),
        helper.make_node("Concat", ["batch1", "seq1", "heads"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["split"]),
        helper.make_node("Range", ["zero", "seq", "one"], ["positions"]),
        helper.make_node("Cast", ["positions"], ["positions_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["positions_f", "axes_pos"], ["positions4"]),
        helper.make_node("Add", ["split", "positions4"], ["y"]),
    ]
    constants = [
        helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        helper.make_tensor("one", TensorProto.INT64, [], [1]),
        helper.make_tensor("axes0", TensorProto.INT64, [1], [0]),
        helper.make_tensor("heads", TensorProto.INT64, [2], [2, 4]),
        helper.make_tensor("axes_pos", TensorProto.INT64, [3], [0, 2, 3]),
    ]
    graph = helper.make_graph(
        nodes,
        "shapes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 2, 4])],
        constants,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("target", TARGETS)
def test_shape_computations_stay_functions_of_the_input_dims(target, rng):
    model = _shape_graph()
    module = tvmext.compile(model, target)
    session = ort.InferenceSession(model.SerializeToString())
    for batch, seq in SIZES:
        x = rng.standard_normal((batch, seq, 8)).astype(np.float32)
        (want,) = session.run(None, {"x": x})
        np.testing.assert_allclose(module(x)[0], want, rtol=1e-6)


def test_the_imported_shapes_name_the_input_dims():
    from tvmext.onnx.importer import from_onnx

    mod = from_onnx(_shape_graph())
    assert str(mod["main"].ret_ty) == 'R.Tensor((batch, seq, 2, 4), dtype="float32")'


def _symbolic_module(build, *shapes) -> tvmext.Module:
    return tvmext.compile(main_module(shapes, build), "dnnl, llvm")


@pytest.mark.onednn
def test_onednn_partitions_of_symbolic_shape_are_made_per_shape(rng):
    n = tirx.Var("n", "int64")
    w = rng.standard_normal((16, 8)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)

    def build(bb, p):
        y = bb.emit(relax.op.matmul(p[0], relax.const(w)))
        y = bb.emit(relax.op.nn.relu(relax.op.add(y, relax.const(b))))
        return relax.op.nn.softmax(y)

    module = _symbolic_module(build, (n, 16))
    placed = [o for o in module.reports[0].ops if o.placement == "dnnl"]
    assert {o.op for o in placed} == {
        "relax.matmul",
        "relax.add",
        "relax.nn.relu",
        "relax.nn.softmax",
    }
    assert all("dynamic" in o.detail for o in placed)
    assert all(o.shape[0] == "n" for o in placed)
    for rows in (1, 7, 64, 7):
        x = rng.standard_normal((rows, 16)).astype(np.float32)
        want = torch.softmax(torch.relu(torch.from_numpy(x @ w + b)), -1).numpy()
        np.testing.assert_allclose(module(x)[0], want, rtol=1e-5, atol=1e-6)


@pytest.mark.onednn
def test_convolutions_of_symbolic_batch_and_size_run_on_onednn(rng):
    n, h = tirx.Var("n", "int64"), tirx.Var("h", "int64")
    w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)

    def build(bb, p):
        y = relax.op.nn.conv2d(p[0], relax.const(w), strides=2, padding=1)
        return relax.op.nn.relu(y)

    module = _symbolic_module(build, (n, 3, h, 10))
    conv = next(o for o in module.reports[0].ops if o.op == "relax.nn.conv2d")
    assert conv.placement == "dnnl", conv.detail
    for batch, height in ((1, 9), (3, 16), (2, 5)):
        x = rng.standard_normal((batch, 3, height, 10)).astype(np.float32)
        want = torch.relu(torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                                     stride=2, padding=1)).numpy()  # fmt: skip
        np.testing.assert_allclose(module(x)[0], want, rtol=1e-4, atol=1e-5)


@pytest.mark.onednn
def test_a_small_op_cache_bound_recreates_ops_and_stays_right(tmp_path, rng):
    """With room for one op per composite, alternating sizes evict and recreate."""
    n = tirx.Var("n", "int64")
    w = rng.standard_normal((16, 8)).astype(np.float32)
    module = _symbolic_module(lambda bb, p: relax.op.matmul(p[0], relax.const(w)), (n, 16))
    module.export(str(tmp_path / "m.so"))
    script = (
        "import numpy as np, tvmext, sys\n"
        f"m = tvmext.load({str(tmp_path / 'm.so')!r})\n"
        "w = np.load(sys.argv[1])\n"
        "for rows in (3, 5, 3, 5, 1):\n"
        "    x = np.arange(rows * 16, dtype=np.float32).reshape(rows, 16) / 100\n"
        "    np.testing.assert_allclose(m(x)[0], x @ w, rtol=1e-5)\n"
    )
    np.save(tmp_path / "w.npy", w)
    env = {"TVMEXT_DNNL_OP_CACHE_SIZE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "w.npy")],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.native
def test_named_input_dims_and_bounds(tmp_path, rng):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    out = helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, 4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"])], "add", [x, y], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    module = tvmext.compile(
        model, "llvm", input_shapes="x:[rows,4] y:[rows,4]", shape_bounds="rows=1..8"
    )
    assert [spec.shape for spec in module.inputs] == [("rows", 4), ("rows", 4)]
    a, b = (rng.standard_normal((8, 4)).astype(np.float32) for _ in range(2))
    np.testing.assert_allclose(module(a, b)[0], a + b)
    big = np.zeros((9, 4), np.float32)
    message = "input 'x': dim 0 (rows) is 9, outside the bound rows=1..8 the model was compiled for"
    with pytest.raises(tvmext.ShapeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        module(big, big)
    path = tmp_path / "add.so"
    module.export(str(path))
    assert tvmext.load(str(path)).shape_bounds == {"rows": (1, 8)}
    with pytest.raises(
        tvmext.CompileError, match=r"shape bound\(s\) cols name no symbolic dimension"
    ):
        tvmext.compile(
            model, "llvm", input_shapes="x:[rows,4] y:[rows,4]", shape_bounds="cols=1..2"
        )
    with pytest.raises(tvmext.CompileError, match=r"expected NAME=LOW\.\.HIGH"):
        tvmext.compile(model, "llvm", shape_bounds="rows=8")


def _add_model():
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 4]) for n in "xy")
    out = helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, 4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"])], "add", [x, y], [out])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"input_shapes": "x:[rows,4.5]"},
            "input shapes 'x:[rows,4.5]': dimension '4.5' of 'x' is neither a non-negative "
            "integer nor a name",
        ),
        (
            {"input_shapes": {"x": ("rows", 0)}},
            "input 'x': a size 0 beside named dims is ambiguous (TVM reads 0 as unknown); give "
            "it by name or a positive size",
        ),
        (
            {"shape_bounds": {"rows": (8, 1)}},
            "shape bound rows=(8, 1): expected a dimension name and two integers 0 <= low <= high",
        ),
        (
            {"shape_bounds": {"rows": 8}},
            "shape bound 'rows': 8 is not a (low, high) pair of integers",
        ),
    ],
)
def test_bad_named_dims_and_bounds_are_clear_errors(options, message):
    with pytest.raises(tvmext.TvmextError) as raised:
        tvmext.compile(_add_model(), "llvm", **options)
    assert str(raised.value) == message


def test_slices_to_symbolic_bounds_clamp_to_the_axis(rng):
    """``x[:, seq - 3:]`` (end INT64_MAX) and ``x[:, :-seq]`` (empty): each bound a
    function of the input's dims, clamped as the spec says."""
    i64 = TensorProto.INT64
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["seq"], axis=0),
        helper.make_node("Sub", ["seq", "three"], ["start"]),
        helper.make_node("Unsqueeze", ["start", "zeros"], ["start1"]),
        helper.make_node("Slice", ["x", "start1", "to_end", "ones"], ["y"]),
        helper.make_node("Neg", ["seq"], ["minus_seq"]),
        helper.make_node("Unsqueeze", ["minus_seq", "zeros"], ["end1"]),
        helper.make_node("Slice", ["x", "zeros", "end1", "ones"], ["z"]),
    ]
    constants = [
        helper.make_tensor("one", i64, [], [1]),
        helper.make_tensor("three", i64, [], [3]),
        helper.make_tensor("zeros", i64, [1], [0]),
        helper.make_tensor("ones", i64, [1], [1]),
        helper.make_tensor("to_end", i64, [1], [2**63 - 1]),
    ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", None]) for n in "yz"]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "seq"])
    graph = helper.make_graph(nodes, "slices", [x_info], outputs, constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    module = tvmext.compile(model, "llvm")
    session = ort.InferenceSession(model.SerializeToString())
    for batch, seq in ((2, 5), (1, 9), (3, 2)):
        x = rng.standard_normal((batch, seq)).astype(np.float32)
        for got, want in zip(module(x), session.run(None, {"x": x}), strict=True):
            np.testing.assert_array_equal(got, want)


def test_each_unnamed_dynamic_dim_is_its_own_variable():
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 4]) for n in "xy")
    out = helper.make_tensor_value_info("c", TensorProto.FLOAT, [None, 4])
    concat = helper.make_node("Concat", ["x", "y"], ["c"], axis=0)
    graph = helper.make_graph([concat], "concat", [x, y], [out])
    module = tvmext.compile(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), "llvm"
    )
    assert [spec.shape for spec in module.inputs] == [("x_dim0", 4), ("y_dim0", 4)]
    a, b = np.ones((2, 4), np.float32), np.zeros((3, 4), np.float32)
    np.testing.assert_array_equal(module(a, b)[0], np.concatenate([a, b]))


def _zoo_cases() -> list:
    return [
        pytest.param(
            name,
            target,
            id=f"{name}-{target}",
            marks=[] if name in DEFAULT_TIER else [pytest.mark.full],
        )
        for name in MODELS
        for target in TARGETS
    ]


@pytest.fixture(scope="module")
def dynamic_zoo(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("dynamic_zoo"))


@pytest.mark.parametrize(("name", "target"), _zoo_cases())
def test_zoo_exported_with_dynamic_axes_runs_at_three_sizes(dynamic_zoo, name, target):
    path, wrapped = export_dynamic(name, dynamic_zoo)
    module = tvmext.compile(path, target)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for batch, seq in SIZES:
        inputs = resized_inputs(name, batch, seq)
        got = module.run(**inputs)[0]
        want = session.run(None, inputs)[0]
        assert relative_error(got, want) < RTOL, (batch, seq)
        with torch.no_grad():
            expected = wrapped(*(torch.from_numpy(v) for v in inputs.values())).numpy()
        assert relative_error(got, expected) < RTOL, (batch, seq)

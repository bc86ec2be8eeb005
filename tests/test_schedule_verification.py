"""Schedule verification catches wrong schedules; the matmul rule keeps a pad's border;
the size guard rejects schedules LLVM cannot compile in bounded time."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax, s_tir, te, tirx
from tvm.s_tir import dlight
from tvm.script import tirx as T

import tvmext
from tvmext.errors import CompileError, ScheduleVerificationError
from tvmext.lowering.schedules.default import default_schedule
from tvmext.lowering.schedules.limits import size_violation
from tvmext.lowering.verification import ScheduledFunc, verify_schedules
from tvmext.target.spec import parse_target

HOST = parse_target("llvm").host


def _matmul_then_pad(m: int, n: int, k: int) -> tirx.PrimFunc:
    """C = A @ B, then C padded by one row and column at the end (asymmetric)."""
    a = te.placeholder((m, k), name="A")
    b = te.placeholder((k, n), name="B")
    r = te.reduce_axis((0, k), name="r")
    c = te.compute((m, n), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r), name="C")
    p = te.compute(
        (m + 1, n + 1),
        lambda i, j: tirx.if_then_else(tirx.all(i < m, j < n), c[i, j], tirx.const(0.0)),
        name="P",
    )
    return te.create_prim_func([a, b, p])


@tvmext.op("test_verify.padded_matmul")
def padded_matmul(a, b):
    m, k = (int(d) for d in a.shape)
    n = int(b.shape[1])
    r = te.reduce_axis((0, k), name="r")
    c = te.compute((m, n), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r), name="C")
    return te.compute(
        (m + 1, n + 1),
        lambda i, j: tirx.if_then_else(tirx.all(i < m, j < n), c[i, j], tirx.const(0.0)),
        name="P",
    )


@padded_matmul.schedule("llvm")
def _(sch: s_tir.Schedule) -> None:
    # Deliberately wrong, as the matmul rule once was: the pad is computed per row tile
    # of C, so its extra row (which reads no tile) is never written.
    i, _j, _r = sch.get_loops(sch.get_sblock("C"))
    outer, _ = sch.split(i, [None, 4])
    sch.reverse_compute_at(sch.get_sblock("P"), outer)


def _padded_matmul_module() -> tvm.IRModule:
    bb = relax.BlockBuilder()
    a = relax.Var("a", relax.TensorType((8, 16), "float32"))
    b = relax.Var("b", relax.TensorType((16, 8), "float32"))
    with bb.function("main", [a, b]):
        with bb.dataflow():
            out = bb.emit_output(padded_matmul(a, b))
        bb.emit_func_output(out)
    return bb.get()


def test_a_wrong_schedule_is_caught_with_the_function_and_its_shapes():
    with pytest.raises(ScheduleVerificationError) as info:
        tvmext.compile(_padded_matmul_module(), "llvm", verify_schedules=True)
    message = str(info.value)
    assert "the op's schedule" in message and "padded_matmul" in message
    assert "[8, 16] float32" in message and "[9, 9] float32" in message
    assert "relative error" in message


def test_the_matmul_rule_keeps_the_border_of_a_padded_consumer():
    func = _matmul_then_pad(12, 32, 16)
    scheduled = default_schedule(func, HOST)
    assert not scheduled.same_as(func)
    assert (
        verify_schedules([ScheduledFunc("matmul_pad", func, scheduled, "the default")], HOST) == 1
    )


def _conv_clip_pad_model() -> tuple[bytes, dict[str, np.ndarray]]:
    """MobileNetV2's block tail: 1x1 conv, bias, ReLU6, then TensorFlow's asymmetric
    "same" pad (one more row and column at the end)."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((48, 8, 1, 1)).astype("float32"), "w")
    bias = numpy_helper.from_array(rng.standard_normal(48).astype("float32"), "bias")
    pads = numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64), "pads")
    nodes = [
        helper.make_node("Conv", ["x", "w", "bias"], ["c"], kernel_shape=[1, 1]),
        helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
        helper.make_node("Pad", ["r", "pads"], ["y"]),
    ]
    consts = [
        numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 14, 14])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 48, 15, 15])],
        [w, bias, pads, *consts],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return model.SerializeToString(), {"x": rng.standard_normal((1, 8, 14, 14)).astype("f4")}


def test_conv_clip_and_asymmetric_pad_match_onnxruntime(tmp_path):
    data, inputs = _conv_clip_pad_model()
    path = tmp_path / "block.onnx"
    path.write_bytes(data)
    want = ort.InferenceSession(str(path)).run(None, inputs)[0]
    got = tvmext.compile(str(path), "llvm", verify_schedules=True).run(**inputs)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_symbolic_dims_are_verified_with_a_concrete_value():
    n = tirx.Var("n", "int64")
    x = te.placeholder((n, 32), name="x")
    y = te.compute((n, 32), lambda i, j: x[i, j] * 2.0 + 1.0, name="y")
    func = te.create_prim_func([x, y])
    scheduled = default_schedule(func, HOST)
    assert verify_schedules([ScheduledFunc("affine", func, scheduled, "the default")], HOST) == 1


def test_verification_needs_a_cpu_target():
    with pytest.raises(
        CompileError, match=r"verify_schedules .* supports llvm targets, got .cuda."
    ):
        tvmext.compile(_padded_matmul_module(), "cuda", verify_schedules=True)


def _gemv(rows: int, cols: int) -> tirx.PrimFunc:
    """EfficientNet-B0's last squeeze-excitation 1x1 conv on a 1x1 map: a GEMV."""
    x = te.placeholder((1, cols), name="x")
    w = te.placeholder((rows, cols), name="w")
    r = te.reduce_axis((0, cols), name="r")
    y = te.compute((1, rows), lambda b, i: te.sum(x[b, r] * w[i, r], axis=r), name="y")
    return te.create_prim_func([x, w, y])


def test_the_size_guard_rejects_a_gemv_vectorized_128_wide():
    func = _gemv(2304, 96)
    wide = dlight.cpu.GEMV().apply(func, HOST, False)
    assert wide is not None
    violation = size_violation(wide.mod["main"], HOST)
    assert violation is not None and "vectorized over 128 lanes" in str(violation)
    scheduled = default_schedule(func, HOST)
    assert size_violation(scheduled, HOST) is None
    assert verify_schedules([ScheduledFunc("gemv", func, scheduled, "the default")], HOST) == 1


def test_the_size_guard_bounds_unrolling():
    sch = s_tir.Schedule(_gemv(64, 2048))
    _b, _i, r = sch.get_loops(sch.get_sblock("y"))
    sch.unroll(r)
    violation = size_violation(sch.mod["main"], HOST)
    assert violation is not None and "unrolls to 2048 elements" in str(violation)


@T.prim_func(s_tir=True)
def _rows_at_least_eight(a: T.handle, b: T.handle):
    n = T.int64()
    x = T.match_buffer(a, (n, 4), "float32")
    y = T.match_buffer(b, (n, 4), "float32")
    assert n >= 8, "few rows"
    for i, j in T.grid(n, 4):
        with T.sblock("y"):
            vi, vj = T.axis.remap("SS", [i, j])
            y[vi, vj] = x[vi, vj] + T.float32(1)


def test_a_kernel_that_fails_on_its_random_inputs_is_named():
    """A kernel's own runtime check (at least 8 rows) fails on the small value that
    verification gives a symbolic dim; the error names the kernel and its inputs."""
    func = _rows_at_least_eight
    with pytest.raises(ScheduleVerificationError) as info:
        verify_schedules([ScheduledFunc("rows", func, func, "the default")], HOST)
    message = str(info.value)
    assert message.startswith("PrimFunc 'rows' (unscheduled) failed on random inputs")
    assert "x: [5, 4] float32, y: [5, 4] float32" in message and "few rows" in message

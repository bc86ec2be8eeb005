"""The oneDNN pattern table: each row's ops give the right numbers on oneDNN, and
what oneDNN cannot take stays on TVM with the check's reason in the report."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import tvm
from conftest import main_module
from tvm import relax

import tvmext
from tvmext.target.dnnl import DnnlTarget, primitives

pytestmark = pytest.mark.onednn


def _compile(shapes, build, dtype="float32"):
    module = tvmext.compile(main_module(shapes, build, dtype), "dnnl, llvm")
    (report,) = module.reports
    return module, report


def _placements(report):
    return {(o.op, o.placement, o.detail) for o in report.ops}


def _const(rng, *shape):
    return relax.const(rng.standard_normal(shape).astype(np.float32))


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def test_conv2d_grouped_with_bias_residual_and_relu(rng):
    w1 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((8, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal((1, 8, 1, 1)).astype(np.float32)

    def build(bb, p):
        y1 = bb.emit(relax.op.nn.relu(relax.op.nn.conv2d(p[0], relax.const(w1), padding=1)))
        y = bb.emit(relax.op.nn.conv2d(y1, relax.const(w2), padding=1, groups=4))
        y = bb.emit(relax.op.add(y, relax.const(b)))
        y = bb.emit(relax.op.add(y1, y))  # residual, operands swapped
        return relax.op.nn.relu(y)

    module, report = _compile([(2, 3, 9, 9)], build)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    y1 = F.relu(F.conv2d(_t(x), _t(w1), None, 1, 1))
    expected = F.relu(F.conv2d(y1, _t(w2), None, 1, 1, 1, 4) + _t(b) + y1).numpy()
    np.testing.assert_allclose(module(x)[0], expected, rtol=1e-4, atol=1e-4)
    convs = [o.detail for o in report.ops if o.op == "relax.nn.conv2d"]
    assert convs == ["dnnl.conv2d_post1", "dnnl.conv2d_post3"]
    assert {o.placement for o in report.ops} == {"dnnl"}  # NHWC transposes: reorders


@pytest.mark.parametrize(
    ("act", "reference"),
    [
        (relax.op.nn.gelu, lambda t: F.gelu(t)),
        (relax.op.nn.gelu_tanh, lambda t: F.gelu(t, approximate="tanh")),
        (relax.op.sigmoid, torch.sigmoid),
        (lambda y: relax.op.clip(y, 0.0, 6.0), lambda t: t.clamp(0, 6)),
        (lambda y: relax.op.clip(y, -0.5, float("inf")), lambda t: t.clamp(min=-0.5)),
    ],
)
def test_dense_3d_with_bias_and_activation(rng, act, reference):
    w, b = (
        rng.standard_normal((16, 24)).astype(np.float32),
        rng.standard_normal(24).astype(np.float32),
    )

    def build(bb, p):
        y = bb.emit(relax.op.matmul(p[0], relax.const(w)))
        return act(bb.emit(relax.op.add(y, relax.const(b))))

    module, report = _compile([(2, 5, 16)], build)
    x = rng.standard_normal((2, 5, 16)).astype(np.float32)
    expected = reference(_t(x) @ _t(w) + _t(b)).numpy()
    np.testing.assert_allclose(module(x)[0], expected, rtol=1e-4, atol=1e-5)
    assert {o.placement for o in report.ops} == {"dnnl"}
    assert report.ops[0].detail == "dnnl.dense_post2"


def test_batched_matmul_broadcasts_and_fuses_a_scale(rng):
    def build(bb, p):
        y = bb.emit(relax.op.matmul(p[0], p[1]))
        return relax.op.multiply(y, relax.const(np.float32(0.125)))

    module, report = _compile([(2, 3, 4, 8), (3, 8, 5)], build)
    a, b = rng.standard_normal((2, 3, 4, 8)), rng.standard_normal((3, 8, 5))
    a, b = a.astype(np.float32), b.astype(np.float32)
    np.testing.assert_allclose(module(a, b)[0], a @ b * 0.125, rtol=1e-4, atol=1e-5)
    assert report.ops[0].detail == "dnnl.matmul_post1"


def _heads(bb, x, axes):
    """[2, 8, 16] -> 2 heads of 8: reshape, then permute_dims."""
    return bb.emit(relax.op.permute_dims(bb.emit(relax.op.reshape(x, (2, 8, 2, 8))), axes))


def test_attention_reads_and_writes_heads_in_place(rng):
    """Splitting heads (reshape + permute_dims) and merging them back become strided
    operands and a strided result of the batched matmuls: no copies left on TVM."""

    def build(bb, p):
        q, k, v = _heads(bb, p[0], [0, 2, 1, 3]), _heads(bb, p[1], [0, 2, 3, 1]), p[2]
        scores = bb.emit(relax.op.matmul(q, k))
        scores = bb.emit(relax.op.multiply(scores, relax.const(np.float32(0.25))))
        probs = bb.emit(relax.op.nn.softmax(scores))
        ctx = bb.emit(relax.op.matmul(probs, _heads(bb, v, [0, 2, 1, 3])))
        return relax.op.reshape(bb.emit(relax.op.permute_dims(ctx, [0, 2, 1, 3])), (2, 8, 16))

    module, report = _compile([(2, 8, 16)] * 3, build)
    x = [rng.standard_normal((2, 8, 16)).astype(np.float32) for _ in range(3)]
    q, k, v = (t.reshape(2, 8, 2, 8).transpose(0, 2, 1, 3) for t in x)
    scores = torch.softmax(_t(q @ k.transpose(0, 1, 3, 2) * 0.25), -1).numpy()
    expected = (scores @ v).transpose(0, 2, 1, 3).reshape(2, 8, 16)
    np.testing.assert_allclose(module(*x)[0], expected, rtol=1e-4, atol=1e-5)
    assert {o.placement for o in report.ops} == {"dnnl"}, str(report)
    details = [(o.op, o.detail) for o in report.ops if o.op != "relax.nn.softmax"]
    assert details == [
        *[(op, "dnnl.matmul_in_view_post1") for op in ["relax.reshape", "relax.permute_dims"] * 2],
        ("relax.matmul", "dnnl.matmul_in_view_post1"),
        ("relax.multiply", "dnnl.matmul_in_view_post1"),
        ("relax.reshape", "dnnl.matmul_out_view"),
        ("relax.permute_dims", "dnnl.matmul_out_view"),
        ("relax.matmul", "dnnl.matmul_out_view"),
        ("relax.permute_dims", "dnnl.matmul_out_view"),
        ("relax.reshape", "dnnl.matmul_out_view"),
    ]


def test_matmul_result_written_permuted_keeps_its_post_ops(rng):
    bias, residual = rng.standard_normal(8), rng.standard_normal((2, 4, 8))
    bias, residual = bias.astype(np.float32), residual.astype(np.float32)

    def build(bb, p):
        y = bb.emit(relax.op.matmul(p[0], p[1]))
        y = bb.emit(
            relax.op.add(bb.emit(relax.op.add(y, relax.const(bias))), relax.const(residual))
        )
        return relax.op.permute_dims(bb.emit(relax.op.nn.relu(y)), [1, 0, 2])

    module, report = _compile([(2, 4, 16), (2, 16, 8)], build)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 4, 16), (2, 16, 8)))
    expected = np.maximum(a @ b + bias + residual, 0).transpose(1, 0, 2)
    np.testing.assert_allclose(module(a, b)[0], expected, rtol=1e-4, atol=1e-5)
    assert {o.detail for o in report.ops} == {"dnnl.matmul_out_view_post3"}


def _matmul_reasons(shapes, build):
    """The report of a partition without the transpose row, which would otherwise run
    the permute_dims that a matmul rejected as a separate reorder."""

    class WithoutTranspose(DnnlTarget):
        def pattern_table(self):
            return [r for r in super().pattern_table() if r.name != "dnnl.transpose"]

    partitioned = WithoutTranspose().partition(
        main_module(shapes, build), tvm.target.Target("llvm")
    )
    return partitioned.report


def test_partial_broadcast_onto_a_permuted_result_is_not_fused(rng):
    r = rng.standard_normal((2, 1, 8)).astype(np.float32)

    def build(bb, p):
        y = bb.emit(relax.op.add(bb.emit(relax.op.matmul(p[0], p[1])), relax.const(r)))
        return relax.op.permute_dims(y, [1, 0, 2])

    module, report = _compile([(2, 4, 16), (2, 16, 8)], build)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 4, 16), (2, 16, 8)))
    expected = (a @ b + r).transpose(1, 0, 2)
    np.testing.assert_allclose(module(a, b)[0], expected, rtol=1e-4, atol=1e-5)
    assert [o.detail for o in report.ops] == ["dnnl.matmul_post1"] * 2 + ["dnnl.transpose"]
    reason = _matmul_reasons([(2, 4, 16), (2, 16, 8)], build).ops[2].detail
    assert "shape [2, 1, 8] broadcast over part of a permuted matmul result crashes" in reason


def test_views_onednn_cannot_read_fast_are_separate_reorders(rng):
    def build(bb, p):
        a = bb.emit(relax.op.permute_dims(p[0], [2, 0, 1]))  # K becomes the batch axis
        y = bb.emit(relax.op.matmul(a, p[1]))
        return relax.op.permute_dims(y, [0, 2, 1])  # writes columns

    module, report = _compile([(4, 5, 3), (3, 5, 6)], build)
    x, w = rng.standard_normal((4, 5, 3)), rng.standard_normal((3, 5, 6))
    x, w = x.astype(np.float32), w.astype(np.float32)
    expected = (x.transpose(2, 0, 1) @ w).transpose(0, 2, 1)
    np.testing.assert_allclose(module(x, w)[0], expected, rtol=1e-4, atol=1e-5)
    assert [o.detail for o in report.ops] == ["dnnl.transpose", "dnnl.matmul", "dnnl.transpose"]
    first, _, last = _matmul_reasons([(4, 5, 3), (3, 5, 6)], build).ops
    assert "no unit stride in its two innermost dims" in first.detail
    assert "moves its last axis; oneDNN writes rows with a unit stride only" in last.detail


@pytest.mark.parametrize(
    ("op", "kwargs", "reference"),
    [
        (relax.op.nn.max_pool2d, {"ceil_mode": True},
         lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True)),
        (relax.op.nn.avg_pool2d, {"count_include_pad": True},
         lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=True)),
        (relax.op.nn.avg_pool2d, {"count_include_pad": False},
         lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False)),
    ],
)  # fmt: skip
def test_pooling(rng, op, kwargs, reference):
    module, report = _compile(
        [(1, 4, 10, 10)], lambda bb, p: op(p[0], pool_size=3, strides=2, padding=1, **kwargs)
    )
    x = rng.standard_normal((1, 4, 10, 10)).astype(np.float32)
    np.testing.assert_allclose(module(x)[0], reference(_t(x)).numpy(), rtol=1e-5, atol=1e-6)
    assert report.ops[0].placement == "dnnl"


def test_mean_softmax_and_layer_norm(rng):
    gamma, beta = (
        rng.standard_normal(5).astype(np.float32),
        rng.standard_normal(5).astype(np.float32),
    )

    def build(bb, p):
        m = bb.emit(relax.op.mean(p[0], axis=[2], keepdims=False))
        s = bb.emit(relax.op.nn.softmax(m, axis=-1))
        return relax.op.nn.layer_norm(s, relax.const(gamma), relax.const(beta), axes=[-1])

    module, report = _compile([(3, 5, 6)], build)
    x = rng.standard_normal((3, 5, 6)).astype(np.float32)
    t = torch.softmax(_t(x).mean(2), -1)
    expected = F.layer_norm(t, (5,), _t(gamma), _t(beta), 1e-5).numpy()
    np.testing.assert_allclose(module(x)[0], expected, rtol=1e-4, atol=1e-5)
    assert [o.detail for o in report.ops] == ["dnnl.mean", "dnnl.softmax", "dnnl.layer_norm"]


@pytest.mark.parametrize("keepdims", [True, False])
def test_global_average_pool_in_nhwc_is_a_onednn_pooling(rng, keepdims):
    module, report = _compile(
        [(2, 7, 5, 8)], lambda bb, p: relax.op.mean(p[0], axis=[1, 2], keepdims=keepdims)
    )
    x = rng.standard_normal((2, 7, 5, 8)).astype(np.float32)
    expected = x.mean(axis=(1, 2), keepdims=keepdims)
    np.testing.assert_allclose(module(x)[0], expected, rtol=1e-5, atol=1e-6)
    assert [o.detail for o in report.ops] == ["dnnl.mean"]


def test_mean_over_middle_axes_stays_on_tvm(rng):
    # oneDNN's reduction would run its reference kernel.
    module, report = _compile(
        [(4, 7, 8)], lambda bb, p: relax.op.mean(p[0], axis=[1], keepdims=True)
    )
    x = rng.standard_normal((4, 7, 8)).astype(np.float32)
    np.testing.assert_allclose(module(x)[0], x.mean(axis=1, keepdims=True), rtol=1e-5)
    (op,) = report.ops
    assert op.placement == "tvm" and "reference kernel" in op.detail


def test_transpose_is_a_onednn_reorder_unless_it_only_moves_ones(rng):
    def build(bb, p):
        y = bb.emit(relax.op.permute_dims(p[0], [0, 2, 3, 1]))
        return relax.op.permute_dims(
            bb.emit(relax.op.sum(y, axis=[1, 2], keepdims=True)), [0, 3, 1, 2]
        )

    module, report = _compile([(2, 3, 5, 4)], build)
    x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    expected = x.transpose(0, 2, 3, 1).sum(axis=(1, 2), keepdims=True).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(module(x)[0], expected, rtol=1e-5, atol=1e-5)
    first, _, last = report.ops
    assert first.detail == "dnnl.transpose"
    assert last.detail == "permute_dims moves only dims of size 1: a reshape, no data moves"


def test_rejected_ops_stay_on_tvm_with_the_reason(rng):
    w = rng.standard_normal((8, 8)).astype(np.float32)

    def build(bb, p):
        y = bb.emit(relax.op.matmul(p[0], relax.const(w)))
        z = bb.emit(relax.op.nn.relu(y))
        z = bb.emit(relax.op.add(z, y))  # y is used twice: ReLU cannot fuse into the matmul
        z = bb.emit(relax.op.reshape(z, (1, 1, 4, 16)))
        pooled = bb.emit(relax.op.nn.avg_pool2d(z, pool_size=3, strides=2, ceil_mode=True))
        e = bb.emit(relax.op.exp(pooled))
        return relax.op.nn.layer_norm(e, relax.const(np.ones(2, np.float32)),
                                      relax.const(np.zeros(2, np.float32)), axes=[-2])  # fmt: skip

    module, report = _compile([(8, 8)], build)
    rows = {o.op: o for o in report.ops}
    assert rows["relax.matmul"].placement == "dnnl"
    assert rows["relax.nn.relu"].placement == "tvm"
    assert "the intermediate" in rows["relax.nn.relu"].detail
    assert "is also used by" in rows["relax.nn.relu"].detail
    assert rows["relax.nn.avg_pool2d"].detail == (
        "average pooling with ceil_mode counts padding differently in oneDNN"
    )
    assert rows["relax.exp"].detail == "no dnnl pattern matches it"
    assert "oneDNN normalizes the last axis only" in rows["relax.nn.layer_norm"].detail
    x = rng.standard_normal((8, 8)).astype(np.float32)
    y = x @ w
    z = torch.from_numpy(np.maximum(y, 0) + y).reshape(1, 1, 4, 16)
    e = torch.exp(F.avg_pool2d(z, 3, 2, ceil_mode=True))
    expected = F.layer_norm(e.transpose(-1, -2), (e.shape[-2],)).transpose(-1, -2)
    np.testing.assert_allclose(module(x)[0], expected.numpy(), rtol=1e-4, atol=1e-5)


def test_float64_is_rejected_with_a_reason(rng):
    w = rng.standard_normal((4, 3)).astype(np.float64)
    _, report = _compile(
        [(2, 4)], lambda bb, p: relax.op.matmul(p[0], relax.const(w, "float64")), "float64"
    )
    (row,) = report.ops
    assert row.placement == "tvm"
    assert row.detail == "matmul uses dtype float64; the dnnl target takes float32 only"


def test_table_rows_are_longest_chain_first_and_each_has_a_root():
    rows = primitives.pattern_table()
    names = [r.name for r in rows]
    # each requantized product before the bare one, which its pattern contains
    assert names[:4] == [
        "dnnl.conv2d_int8_requant",
        "dnnl.conv2d_int8",
        "dnnl.dense_int8_requant",
        "dnnl.dense_int8",
    ]
    for position, conv in enumerate(("conv1d", "conv2d", "conv3d")):
        start = 4 + 5 * position
        chain = [f"dnnl.{conv}_post{n}" for n in (4, 3, 2, 1)] + [f"dnnl.{conv}"]
        assert names[start : start + 5] == chain
    assert len(set(names)) == len(names)
    assert all("root" in r.annotations for r in rows)


def test_every_row_calls_runtime_functions_that_exist():
    header = pathlib.Path(primitives.__file__).parent / "runtime" / "tvmext_dnnl" / "ops.h"
    declared = set(re.findall(r"std::unique_ptr<Op> (\w+)\(", header.read_text()))
    for row in primitives.PRIMITIVES:
        assert row.calls and set(row.calls) <= declared, (row.key, row.calls)


def test_transpose_of_a_tvm_result_stays_on_tvm(rng):
    def build(bb, p):
        return relax.op.permute_dims(bb.emit(relax.op.exp(p[0])), [1, 0])

    module, report = _compile([(3, 5)], build)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_allclose(module(x)[0], np.exp(x).T, rtol=1e-5)
    assert report.ops[1].detail == (
        "its input comes from the TVM op relax.exp, which TVM fuses it into"
    )


def test_squeeze_excitation_multiply_is_a_onednn_binary(rng):
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3
    w_se = rng.standard_normal((8, 8, 1, 1)).astype(np.float32) * 0.3
    w_out = rng.standard_normal((4, 8, 1, 1)).astype(np.float32) * 0.3

    def build(bb, p):
        y = bb.emit(relax.op.nn.silu(relax.op.nn.conv2d(p[0], relax.const(w), padding=1)))
        m = bb.emit(relax.op.mean(y, axis=[2, 3], keepdims=True))
        s = bb.emit(relax.op.sigmoid(relax.op.nn.conv2d(m, relax.const(w_se))))
        return relax.op.nn.conv2d(bb.emit(relax.op.multiply(y, s)), relax.const(w_out))

    module, report = _compile([(1, 3, 7, 7)], build)
    x = rng.standard_normal((1, 3, 7, 7)).astype(np.float32)
    y = F.silu(F.conv2d(_t(x), _t(w), None, 1, 1))
    s = torch.sigmoid(F.conv2d(y.mean((2, 3), keepdim=True), _t(w_se)))
    expected = F.conv2d(y * s, _t(w_out)).numpy()
    np.testing.assert_allclose(module(x)[0], expected, rtol=1e-4, atol=1e-5)
    assert ("relax.multiply", "dnnl", "dnnl.multiply") in _placements(report)
    assert {o.placement for o in report.ops} == {"dnnl"}


def test_add_of_two_inputs_is_a_onednn_binary_with_post_ops(rng):
    module, report = _compile(
        [(4, 6, 5), (6, 1)], lambda bb, p: relax.op.nn.relu(relax.op.add(p[1], p[0]))
    )
    a = rng.standard_normal((4, 6, 5)).astype(np.float32)
    b = rng.standard_normal((6, 1)).astype(np.float32)
    np.testing.assert_allclose(module(a, b)[0], np.maximum(a + b, 0), rtol=1e-6)
    assert [o.detail for o in report.ops] == ["dnnl.add_post1"] * 2


def test_binary_ops_tvm_fuses_stay_on_tvm_with_the_reason(rng):
    scale = rng.standard_normal((1, 5)).astype(np.float32)

    def build(bb, p):
        scaled = bb.emit(relax.op.multiply(p[0], relax.const(scale)))  # a constant operand
        both = bb.emit(relax.op.add(p[1], p[2]))  # [4, 1] + [1, 5]: no operand of [4, 5]
        return relax.op.add(scaled, both)  # inputs from TVM ops

    module, report = _compile([(4, 5), (4, 1), (1, 5)], build)
    x, a, b = (rng.standard_normal(s).astype(np.float32) for s in ((4, 5), (4, 1), (1, 5)))
    np.testing.assert_allclose(module(x, a, b)[0], x * scale + (a + b), rtol=1e-6)
    reasons = {o.detail for o in report.ops}
    assert {o.placement for o in report.ops} == {"tvm"}
    assert "an operand is a constant: TVM fuses it into the kernel before or after" in reasons
    assert any("both broadcast" in r for r in reasons)
    assert any("its input comes from the TVM op relax.multiply" in r for r in reasons)

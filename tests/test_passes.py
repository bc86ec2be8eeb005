"""The target-independent passes of ``passes/``: each rewrite keeps the model's results
(against TVM's own compile of the unrewritten module) and leaves what it must not touch."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax

import tvmext
from tvmext.passes.drop_noop_casts import drop_noop_casts
from tvmext.passes.fold_pad_into_conv import fold_pad_into_conv
from tvmext.passes.fold_transpose_pairs import fold_transpose_pairs
from tvmext.passes.power_to_multiply import power_to_multiply
from tvmext.passes.unflatten_matmul import unflatten_matmul


def _conv_after_pad(pad_width, pad_value=0.0, padding=(1, 0, 0, 1)):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 3, 9, 10), "float32"))
    channels = 3 + pad_width[2] + pad_width[3]
    w = np.random.default_rng(1).standard_normal((4, channels, 3, 3)).astype("float32")
    w = relax.const(w)
    with bb.function("main", [x]):
        with bb.dataflow():
            padded = bb.emit(relax.op.nn.pad(x, pad_width, "constant", pad_value))
            out = bb.emit_output(relax.op.nn.conv2d(padded, w, strides=2, padding=padding))
        bb.emit_func_output(out)
    return bb.get()


def _reference(mod, *args):
    """``mod`` compiled by TVM alone: no tvmext pass, no tvmext schedule."""
    vm = relax.VirtualMachine(tvm.compile(mod, "llvm"), tvm.cpu())
    return vm["main"](*[tvm.runtime.tensor(a) for a in args]).numpy()


def _ops(mod) -> list[str]:
    names = []
    relax.analysis.post_order_visit(
        mod["main"].body,
        lambda e: (
            names.append(e.op.name)
            if isinstance(e, relax.Call) and isinstance(e.op, tvm.ir.Op)
            else None
        ),
    )
    return names


@pytest.mark.parametrize("target", ["llvm", pytest.param("dnnl, llvm", marks=pytest.mark.onednn)])
def test_zero_pad_folds_into_the_convolution_asymmetrically(target, rng):
    mod = _conv_after_pad([0, 0, 0, 0, 0, 1, 2, 1])  # H: (0, 1), W: (2, 1), TF's "same"
    folded = fold_pad_into_conv()(mod)
    assert "relax.nn.pad" not in _ops(folded)
    (conv,) = [
        b.value
        for b in folded["main"].body.blocks[0].bindings
        if b.value.op.name == "relax.nn.conv2d"
    ]
    assert [int(p) for p in conv.attrs.padding] == [1, 2, 1, 2]  # (top, left, bottom, right)
    x = rng.standard_normal((1, 3, 9, 10)).astype("float32")
    got = tvmext.compile(mod, target).run(x)[0]
    np.testing.assert_allclose(got, _reference(mod, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "pad_width, pad_value",
    [([0, 0, 0, 0, 1, 1, 1, 1], 1.0), ([0, 0, 1, 0, 1, 1, 1, 1], 0.0)],
    ids=["non-zero value", "pads channels"],
)
def test_other_pads_stay(pad_width, pad_value, rng):
    mod = _conv_after_pad(pad_width, pad_value, padding=(0, 0, 0, 0))
    assert "relax.nn.pad" in _ops(fold_pad_into_conv()(mod))
    x = rng.standard_normal((1, 3, 9, 10)).astype("float32")
    got = tvmext.compile(mod, "llvm").run(x)[0]
    np.testing.assert_allclose(got, _reference(mod, x), rtol=1e-5, atol=1e-5)


def _two_transposes(first, second):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((2, 3, 4, 5), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            t = bb.emit(relax.op.permute_dims(x, first))
            out = bb.emit_output(relax.op.exp(relax.op.permute_dims(t, second)))
        bb.emit_func_output(out)
    return bb.get()


@pytest.mark.parametrize(
    "first, second, left",
    [([0, 3, 1, 2], [0, 2, 3, 1], 0), ([0, 2, 3, 1], [3, 1, 0, 2], 1)],
    ids=["cancel", "compose"],
)
def test_transpose_pairs_fold(first, second, left, rng):
    mod = _two_transposes(first, second)
    folded = fold_transpose_pairs()(mod)
    assert _ops(folded).count("relax.permute_dims") == left
    x = rng.standard_normal((2, 3, 4, 5)).astype("float32")
    np.testing.assert_allclose(_reference(folded, x), _reference(mod, x), rtol=1e-6)
    np.testing.assert_allclose(tvmext.compile(mod).run(x)[0], _reference(mod, x), rtol=1e-6)


def _flattened_linear(bias: bool, out_shape=(2, 5, 6)):
    """torch.export's nn.Linear: reshape, matmul (+ bias), reshape, then a residual add."""
    rng = np.random.default_rng(2)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((2, 5, 4), "float32"))
    r = relax.Var("r", relax.TensorType(out_shape, "float32"))
    w = relax.const(rng.standard_normal((4, 6)).astype("float32"))
    b = relax.const(rng.standard_normal(6).astype("float32"))
    with bb.function("main", [x, r]):
        with bb.dataflow():
            flat = bb.emit(relax.op.reshape(x, (10, 4)))
            y = bb.emit(relax.op.matmul(flat, w))
            if bias:
                y = bb.emit(relax.op.add(b, y))  # PyTorch's addmm: the bias first
            back = bb.emit(relax.op.reshape(y, out_shape))
            out = bb.emit_output(relax.op.add(back, r))
        bb.emit_func_output(out)
    return bb.get()


@pytest.mark.parametrize(
    ("bias", "out_shape", "reshapes"),
    [(False, (2, 5, 6), 0), (True, (2, 5, 6), 0), (False, (5, 2, 6), 2)],
    ids=["plain", "bias", "other-shape"],
)
@pytest.mark.native
def test_flattened_matmul_is_unflattened(bias, out_shape, reshapes, rng):
    mod = _flattened_linear(bias, out_shape)
    rewritten = unflatten_matmul()(mod)
    assert _ops(rewritten).count("relax.reshape") == reshapes
    x = rng.standard_normal((2, 5, 4)).astype("float32")
    r = rng.standard_normal(out_shape).astype("float32")
    want = _reference(mod, x, r)
    np.testing.assert_allclose(_reference(rewritten, x, r), want, rtol=1e-5, atol=1e-6)
    target = "dnnl, llvm" if bias else "llvm"  # each oneDNN compile builds C++
    np.testing.assert_allclose(tvmext.compile(mod, target).run(x, r)[0], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("exponent", "left"), [(2.0, 0), (3.0, 0), (0.5, 0), (4.0, 1)])
def test_power_by_small_constants_is_a_product(exponent, left, rng):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((3, 7), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.power(x, relax.const(exponent, "float32")))
        bb.emit_func_output(out)
    mod = bb.get()
    rewritten = power_to_multiply()(mod)
    assert _ops(rewritten).count("relax.power") == left
    x_value = np.abs(rng.standard_normal((3, 7))).astype("float32") + 0.1
    want = x_value.astype(np.float64) ** exponent
    np.testing.assert_allclose(_reference(rewritten, x_value), want, rtol=1e-6)
    np.testing.assert_allclose(tvmext.compile(mod, "llvm").run(x_value)[0], want, rtol=1e-6)


@pytest.mark.native
def test_batched_matmul_of_flattened_batches_is_unflattened(rng):
    """PyTorch's 4-D matmul: broadcast (to the same shape), flatten the batch, bmm,
    unflatten; then the attention mask's add."""
    bb = relax.BlockBuilder()
    q = relax.Var("q", relax.TensorType((2, 3, 5, 4), "float32"))
    k = relax.Var("k", relax.TensorType((2, 3, 4, 6), "float32"))
    mask = relax.Var("mask", relax.TensorType((1, 1, 5, 6), "float32"))
    with bb.function("main", [q, k, mask]):
        with bb.dataflow():
            a = bb.emit(relax.op.reshape(relax.op.broadcast_to(q, (2, 3, 5, 4)), (6, 5, 4)))
            b = bb.emit(relax.op.reshape(k, (6, 4, 6)))
            scores = bb.emit(relax.op.reshape(relax.op.matmul(a, b), (2, 3, 5, 6)))
            out = bb.emit_output(relax.op.add(scores, mask))
        bb.emit_func_output(out)
    mod = bb.get()
    rewritten = unflatten_matmul()(mod)
    assert _ops(rewritten).count("relax.reshape") == 0
    args = [
        rng.standard_normal(s).astype("float32") for s in ((2, 3, 5, 4), (2, 3, 4, 6), (1, 1, 5, 6))
    ]
    want = args[0] @ args[1] + args[2]
    np.testing.assert_allclose(_reference(rewritten, *args), want, rtol=1e-5, atol=1e-5)
    for target in ("llvm", "dnnl, llvm"):
        np.testing.assert_allclose(
            tvmext.compile(mod, target).run(*args)[0], want, rtol=1e-5, atol=1e-5
        )


def test_casts_to_the_type_a_tensor_has_are_dropped(rng):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((2, 5), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            same = bb.emit(relax.op.astype(relax.op.astype(x, "float32"), "float32"))
            narrowed = bb.emit(relax.op.astype(relax.op.multiply(same, same), "int32"))
            out = bb.emit_output(relax.op.astype(narrowed, "float32"))
        bb.emit_func_output(out)
    mod = bb.get()
    rewritten = drop_noop_casts()(mod)
    assert _ops(rewritten) == ["relax.multiply", "relax.astype", "relax.astype"]
    x_value = (rng.standard_normal((2, 5)) * 4).astype("float32")
    np.testing.assert_array_equal(_reference(rewritten, x_value), _reference(mod, x_value))

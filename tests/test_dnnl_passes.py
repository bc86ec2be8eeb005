"""The dnnl target's graph passes, each on a small Relax module, and their registration."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
import tvm_ffi
from conftest import run_module
from tvm import relax

import tvmext
import tvmext.passes  # the target-independent passes run for dnnl too
from tvmext import pass_order
from tvmext.pass_registry import PASSES, passes_for, register_pass
from tvmext.target.dnnl.passes.activation_before_reshape import activation_before_reshape
from tvmext.target.dnnl.passes.clip_before_transpose import clip_before_transpose
from tvmext.target.dnnl.passes.fold_batch_norm import fold_batch_norm
from tvmext.target.dnnl.passes.fold_weight_layouts import fold_weight_layouts
from tvmext.target.dnnl.passes.gelu_erf import gelu_erf
from tvmext.target.dnnl.passes.gelu_tanh import gelu_tanh
from tvmext.target.dnnl.passes.integer_matmul_in_float import integer_matmul_in_float
from tvmext.target.dnnl.passes.nhwc_layout import nhwc_layout
from tvmext.target.dnnl.passes.post_op_operand_order import post_op_operand_order
from tvmext.target.dnnl.passes.scale_after_matmul import scale_after_matmul
from tvmext.target.dnnl.passes.silu_from_sigmoid import silu_from_sigmoid


def _module(shape, build):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(build(bb, x))
        bb.emit_func_output(out)
    return bb.get()


def _ops(mod):
    names = []

    def visit(expr):
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
            names.append(expr.op.name)

    relax.analysis.post_order_visit(mod["main"].body, visit)
    return names


def _const(rng, *shape, low=None):
    value = rng.uniform(low, 1.5, shape) if low is not None else rng.standard_normal(shape)
    return relax.const(value.astype(np.float32))


@pytest.mark.parametrize("with_bias", [False, True])
def test_fold_batch_norm_keeps_values_and_removes_batch_norm(rng, with_bias):
    def build(bb, x):
        y = bb.emit(relax.op.nn.conv2d(x, _const(rng, 6, 3, 3, 3), padding=1))
        if with_bias:
            y = bb.emit(relax.op.add(y, _const(rng, 1, 6, 1, 1)))
        stats = [_const(rng, 6, low=0.5), _const(rng, 6), _const(rng, 6), _const(rng, 6, low=0.5)]
        bn = bb.emit(relax.op.nn.batch_norm(y, *stats, axis=1, epsilon=1e-3))
        return relax.TupleGetItem(bn, 0)

    mod = _module((2, 3, 8, 8), build)
    folded = fold_batch_norm()(mod)
    assert "relax.nn.batch_norm" not in _ops(folded)
    assert _ops(folded) == ["relax.nn.conv2d", "relax.add"]
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    reference = relax.transform.DecomposeOpsForInference()(mod)
    np.testing.assert_allclose(
        run_module(folded, x).numpy(), run_module(reference, x).numpy(), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("with_bias", [False, True])
def test_fold_batch_norm_after_a_dense_layer_through_the_token_reshape(rng, with_bias):
    """LeViT's linear + BatchNorm1d: [B, N, K] @ [K, C] flattened to [B*N, C]."""

    def build(bb, x):
        y = bb.emit(relax.op.matmul(x, _const(rng, 12, 6)))
        if with_bias:
            y = bb.emit(relax.op.add(y, _const(rng, 6)))
        y = bb.emit(relax.op.reshape(y, (10, 6)))
        stats = [_const(rng, 6, low=0.5), _const(rng, 6), _const(rng, 6), _const(rng, 6, low=0.5)]
        bn = bb.emit(relax.op.nn.batch_norm(y, *stats, axis=1, epsilon=1e-5))
        return relax.op.reshape(bb.emit(relax.TupleGetItem(bn, 0)), (2, 5, 6))

    mod = _module((2, 5, 12), build)
    folded = fold_batch_norm()(mod)
    assert _ops(folded) == ["relax.matmul", "relax.add", "relax.reshape", "relax.reshape"]
    x = rng.standard_normal((2, 5, 12)).astype(np.float32)
    reference = relax.transform.DecomposeOpsForInference()(mod)
    np.testing.assert_allclose(
        run_module(folded, x).numpy(), run_module(reference, x).numpy(), rtol=1e-4, atol=1e-5
    )


def test_batch_norm_over_another_axis_than_the_features_is_not_folded(rng):
    def build(bb, x):
        y = bb.emit(relax.op.matmul(x, _const(rng, 12, 6)))
        stats = [_const(rng, 5, low=0.5), _const(rng, 5), _const(rng, 5), _const(rng, 5, low=0.5)]
        return relax.TupleGetItem(bb.emit(relax.op.nn.batch_norm(y, *stats, axis=1)), 0)

    assert "relax.nn.batch_norm" in _ops(fold_batch_norm()(_module((2, 5, 12), build)))


def test_nhwc_layout_then_folding_leaves_constant_nhwc_weights(rng):
    def build(bb, x):
        y = bb.emit(relax.op.nn.conv2d(x, _const(rng, 4, 3, 3, 3), padding=1))
        return relax.op.nn.relu(bb.emit(relax.op.add(y, _const(rng, 1, 4, 1, 1))))

    mod = _module((1, 3, 6, 6), build)
    converted = nhwc_layout()(mod)
    folded = fold_weight_layouts()(converted)
    ops = _ops(folded)
    # only the model's input and output are transposed; weights and bias are constants
    assert ops == ["relax.permute_dims", "relax.nn.conv2d", "relax.add", "relax.nn.relu",
                   "relax.permute_dims"]  # fmt: skip
    conv = [b.value for b in folded["main"].body.blocks[0].bindings][1]
    assert str(conv.attrs.data_layout) == "NHWC" and str(conv.attrs.kernel_layout) == "OHWI"
    assert isinstance(conv.args[1], tvm.ir.Constant)
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(
        run_module(folded, x).numpy(), run_module(mod, x).numpy(), rtol=1e-5, atol=1e-5
    )


def test_post_op_operand_order_puts_the_single_use_operand_first(rng):
    def build(bb, x):
        skip = bb.emit(relax.op.nn.relu(x))
        y = bb.emit(relax.op.matmul(skip, _const(rng, 4, 4)))
        return relax.op.add(skip, y)

    mod = _module((2, 4), build)
    swapped = post_op_operand_order()(mod)
    add = swapped["main"].body.blocks[0].bindings[-1].value
    first = swapped["main"].body.blocks[0].bindings[1].var
    assert add.args[0].same_as(first)  # the matmul's result
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(run_module(swapped, x).numpy(), run_module(mod, x).numpy())


def _scalar(value):
    return relax.const(np.float32(value))


@pytest.mark.onednn
def test_scales_of_attention_operands_move_after_the_matmul(rng):
    """``matmul(q * s, permute_dims(k) * s)`` as ``scaled_dot_product_attention``
    exports it: the scales move to the product, where oneDNN applies them as post-ops
    and reads the transposed keys in place."""
    k = _const(rng, 2, 5, 8)
    scale = _scalar(0.3)

    def build(bb, q):
        left = bb.emit(relax.op.multiply(q, scale))
        right = bb.emit(relax.op.multiply(scale, relax.op.permute_dims(k, [0, 2, 1])))
        return relax.op.matmul(left, right)

    mod = _module((2, 5, 8), build)
    moved = scale_after_matmul()(mod)
    assert _ops(moved) == ["relax.permute_dims", "relax.matmul", "relax.multiply", "relax.multiply"]
    q = rng.standard_normal((2, 5, 8)).astype(np.float32)
    np.testing.assert_allclose(
        run_module(moved, q).numpy(), run_module(mod, q).numpy(), rtol=1e-5, atol=1e-6
    )
    module = tvmext.compile(mod, "dnnl, llvm")
    assert {o.placement for o in module.reports[0].ops} == {"dnnl"}
    want = (q * 0.3) @ (k.value.numpy().transpose(0, 2, 1) * np.float32(0.3))
    np.testing.assert_allclose(module(q)[0], want, rtol=1e-5, atol=1e-6)


def test_a_scale_that_is_not_a_scalar_constant_stays():
    def build(bb, x):
        y = bb.emit(relax.op.multiply(x, x))
        return relax.op.matmul(y, relax.op.permute_dims(x))

    mod = _module((3, 4), build)
    assert _ops(scale_after_matmul()(mod)) == _ops(mod)


def _gelu_forms():
    op = relax.op

    def one_plus_erf(x, divide=True):
        inner = op.divide(x, _scalar(np.sqrt(2))) if divide else op.multiply(x, _scalar(0.5**0.5))
        return op.add(op.erf(inner), _scalar(1))

    return {
        "(x*(1+erf))*0.5": lambda x: op.multiply(op.multiply(x, one_plus_erf(x)), _scalar(0.5)),
        "(x*0.5)*(1+erf)": lambda x: op.multiply(op.multiply(x, _scalar(0.5)), one_plus_erf(x)),
        "x*((1+erf)*0.5)": lambda x: op.multiply(x, op.multiply(one_plus_erf(x), _scalar(0.5))),
        "x/sqrt2 as x*0.7071": lambda x: op.multiply(
            op.multiply(one_plus_erf(x, divide=False), x), _scalar(0.5)
        ),
    }


@pytest.mark.parametrize("form", list(_gelu_forms()))
def test_gelu_erf_becomes_nn_gelu_in_every_association_order(rng, form):
    mod = _module((4, 8), lambda bb, x: _gelu_forms()[form](x))
    rewritten = gelu_erf()(mod)
    assert _ops(rewritten) == ["relax.nn.gelu"]
    x = rng.standard_normal((4, 8)).astype(np.float32) * 3
    np.testing.assert_allclose(
        run_module(rewritten, x).numpy(), run_module(mod, x).numpy(), rtol=1e-5, atol=1e-6
    )


def test_gelu_erf_leaves_other_constants_alone():
    op = relax.op
    mod = _module(
        (4, 8),
        lambda bb, x: op.multiply(
            op.multiply(x, op.add(op.erf(op.divide(x, _scalar(1.5))), _scalar(1))), _scalar(0.5)
        ),
    )
    assert "relax.nn.gelu" not in _ops(gelu_erf()(mod))


def test_clip_moves_before_the_transpose_back_to_nchw(rng):
    def build(bb, x):
        y = bb.emit(relax.op.nn.conv2d(x, _const(rng, 4, 3, 3, 3), padding=1))
        return relax.op.clip(y, 0.0, 6.0)

    mod = _module((1, 3, 6, 6), build)
    swapped = clip_before_transpose()(nhwc_layout()(mod))
    assert _ops(swapped) == ["relax.permute_dims", "relax.permute_dims", "relax.nn.conv2d",
                             "relax.clip", "relax.permute_dims"]  # fmt: skip
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32) * 4
    np.testing.assert_allclose(
        run_module(swapped, x).numpy(), run_module(mod, x).numpy(), rtol=1e-5, atol=1e-5
    )


def test_clip_stays_after_a_transpose_with_other_users(rng):
    def build(bb, x):
        y = bb.emit(relax.op.permute_dims(x, [0, 2, 1]))
        return relax.op.add(bb.emit(relax.op.clip(y, 0.0, 6.0)), y)

    mod = _module((2, 3, 4), build)
    assert _ops(clip_before_transpose()(mod)) == _ops(mod)


def _shipped(phase: str, *targets: str) -> list[str]:
    """tvmext's own passes of ``phase`` for ``targets``, in run order (a plugin another
    test loaded in this process may have added its own)."""
    return [e.name for e in passes_for(phase, *targets) if e.name.startswith("tvmext.")]


def test_passes_run_in_the_declared_order_and_dnnl_passes_only_for_dnnl():
    for phase, declared in pass_order.ORDER.items():
        names = _shipped(phase, "llvm", "dnnl")
        assert names == [name for name, _ in declared], phase
        assert _shipped(phase, "llvm") == [
            name for name in names if PASSES.get(name).targets == ("*",)
        ]
    assert _shipped("layout", "llvm") == [
        "tvmext.fold_transpose_pairs",
        "tvmext.common_subexpressions",
    ]


def test_every_shipped_pass_has_its_place_declared():
    shipped = {e.key for e in PASSES if e.key.startswith("tvmext.")}
    assert shipped == set(pass_order.PLACES)
    for phase, declared in pass_order.ORDER.items():
        priorities = [priority for _, priority in declared]
        assert priorities == sorted(set(priorities)), f"{phase}: ties would run by import order"
    with pytest.raises(tvmext.OpDefinitionError, match=r"declared in tvmext\.pass_order"):
        register_pass("tvmext.gelu_erf", priority=3, replace=True)


@pytest.mark.parametrize("gate_first", [False, True])
@pytest.mark.onednn
def test_silu_from_sigmoid_becomes_one_post_op(rng, gate_first):
    """EfficientNet's activation as exported: conv, Sigmoid, Mul of the same tensor."""

    def build(bb, x):
        y = bb.emit(relax.op.nn.conv2d(x, _const(rng, 6, 3, 3, 3), padding=1))
        gate = bb.emit(relax.op.sigmoid(y))
        return relax.op.multiply(gate, y) if gate_first else relax.op.multiply(y, gate)

    mod = _module((1, 3, 8, 8), build)
    assert _ops(silu_from_sigmoid()(mod)) == ["relax.nn.conv2d", "relax.nn.silu"]
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    module = tvmext.compile(mod, "dnnl, llvm")
    (report,) = module.reports
    placed = {o.op: o.placement for o in report.ops}  # with the NHWC transposes
    assert placed["relax.nn.conv2d"] == placed["relax.nn.silu"] == "dnnl"
    assert "relax.sigmoid" not in placed and "relax.multiply" not in placed
    np.testing.assert_allclose(module.run(x)[0], run_module(mod, x).numpy(), rtol=1e-5, atol=1e-5)


def test_a_product_with_another_tensor_is_no_silu(rng):
    def build(bb, x):
        return relax.op.multiply(x, bb.emit(relax.op.sigmoid(relax.op.exp(x))))

    mod = _module((2, 5), build)
    assert _ops(silu_from_sigmoid()(mod)) == _ops(mod)


def _gpt2_gelu(bb, x, coeff=0.044715):
    """transformers' NewGELUActivation, as torch.onnx exports it."""
    c = lambda v: relax.const(np.float32(v))  # noqa: E731
    cubed = bb.emit(relax.op.multiply(bb.emit(relax.op.power(x, c(3.0))), c(coeff)))
    inner = bb.emit(relax.op.multiply(bb.emit(relax.op.add(x, cubed)), c(np.sqrt(2 / np.pi))))
    one_plus = bb.emit(relax.op.add(bb.emit(relax.op.tanh(inner)), c(1.0)))
    return relax.op.multiply(bb.emit(relax.op.multiply(x, c(0.5))), one_plus)


@pytest.mark.onednn
def test_gelu_tanh_written_out_becomes_one_op(rng):
    mod = _module((4, 16), lambda bb, x: _gpt2_gelu(bb, x))
    assert _ops(gelu_tanh()(mod)) == ["relax.nn.gelu_tanh"]
    x = rng.standard_normal((4, 16)).astype(np.float32) * 3
    got = tvmext.compile(mod, "dnnl, llvm").run(x)[0]
    np.testing.assert_allclose(got, run_module(mod, x).numpy(), rtol=1e-5, atol=1e-5)


def test_gelu_tanh_with_other_constants_stays():
    mod = _module((4, 16), lambda bb, x: _gpt2_gelu(bb, x, coeff=0.05))
    assert _ops(gelu_tanh()(mod)) == _ops(mod)


@pytest.mark.onednn
def test_activation_moves_before_a_reshape_and_fuses_into_the_matmul(rng):
    """GPT-2's MLP as exported: matmul, reshape to [1, S, F], GELU, reshape back."""

    def build(bb, x):
        y = bb.emit(relax.op.reshape(bb.emit(relax.op.matmul(x, _const(rng, 16, 32))), (1, 8, 32)))
        return relax.op.reshape(bb.emit(relax.op.nn.gelu_tanh(y)), (8, 32))

    mod = _module((8, 16), build)
    moved = activation_before_reshape()(mod)
    assert _ops(moved) == ["relax.matmul", "relax.nn.gelu_tanh", "relax.reshape", "relax.reshape"]
    module = tvmext.compile(mod, "dnnl, llvm")
    (report,) = module.reports
    assert {o.op: o.placement for o in report.ops}["relax.nn.gelu_tanh"] == "dnnl"
    x = rng.standard_normal((8, 16)).astype(np.float32)
    np.testing.assert_allclose(module.run(x)[0], run_module(mod, x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("k", "zero_point", "in_float"),
    [(64, 255, True), (258, 255, True), (259, 255, False), (100, 1000, False)],
)
def test_integer_matmul_of_two_activations_runs_in_float_where_exact(rng, k, zero_point, in_float):
    """Attention's ``Q K^T`` of a QDQ model: uint8 and int8 tensors minus their zero
    points, summed in int32; the float32 matmul gives the same integers while every sum
    stays within 2**24 (K = 258 for zero points in the types' ranges; a zero point
    outside its type's range makes the operands larger)."""
    bb = relax.BlockBuilder()
    a = relax.Var("a", relax.TensorType((2, 5, k), "uint8"))
    b = relax.Var("b", relax.TensorType((2, k, 3), "int8"))
    with bb.function("main", [a, b]):
        with bb.dataflow():
            lhs = relax.op.subtract(relax.op.astype(a, "int32"), relax.const(zero_point, "int32"))
            rhs = relax.op.subtract(relax.op.astype(b, "int32"), relax.const(127, "int32"))
            product = bb.emit(relax.op.matmul(lhs, rhs, out_dtype="int32"))
            out = bb.emit_output(relax.op.astype(product, "float32"))
        bb.emit_func_output(out)
    mod = bb.get()
    rewritten = integer_matmul_in_float()(mod)
    matmul_op = tvm.ir.Op.get("relax.matmul")
    calls = []
    relax.analysis.post_order_visit(
        rewritten["main"].body,
        lambda e: (
            calls.append(e) if isinstance(e, relax.Call) and e.op.same_as(matmul_op) else None
        ),
    )
    (matmul,) = calls
    assert (str(matmul.attrs.out_dtype) == "float32") == in_float
    # the extremes: every product 255 * 255, every partial sum as large as it gets
    a_value = np.zeros((2, 5, k), np.uint8)
    b_value = np.full((2, k, 3), -128, np.int8)
    a_value[1] = rng.integers(0, 256, (5, k))
    b_value[1] = rng.integers(-128, 128, (k, 3))
    want = run_module(mod, a_value, b_value).numpy()
    np.testing.assert_array_equal(run_module(rewritten, a_value, b_value).numpy(), want)
    assert want[0].max() == k * zero_point * 255


def test_integer_matmul_of_narrowed_operands_stays_integer():
    """A cast that is no widening to int32 (uint8 read as int8) changes the values: the
    product stays as it is."""
    bb = relax.BlockBuilder()
    a = relax.Var("a", relax.TensorType((4, 8), "uint8"))
    b = relax.Var("b", relax.TensorType((8, 3), "uint8"))
    with bb.function("main", [a, b]):
        with bb.dataflow():
            lhs, rhs = relax.op.astype(a, "int8"), relax.op.astype(b, "int8")
            product = bb.emit(relax.op.matmul(lhs, rhs, out_dtype="int32"))
            out = bb.emit_output(relax.op.astype(product, "float32"))
        bb.emit_func_output(out)
    mod = bb.get()
    assert tvm_ffi.structural_equal(integer_matmul_in_float()(mod), mod)

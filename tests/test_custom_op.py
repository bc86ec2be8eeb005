"""Declaring ops: registration, type inference, printing and parsing, calling."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from conftest import run_module, single_op_module
from tvm import relax, te, tirx
from tvm.script import from_source

import tvmext
from tvmext.opdef.declaration import OPS
from tvmext.ops import moments, rms_norm, swish


def _scale(x, *, k: float = 2.0):
    return te.compute(x.shape, lambda *i: x[i] * tirx.const(k, x.dtype), name="scale")


def test_op_is_a_real_relax_op():
    op = tvmext.op("test_reg.scale", replace=True)(_scale)
    assert isinstance(op.tvm_op, tvm.ir.Op)
    assert op.tvm_op.name == "relax.tvmext.test_reg.scale"
    call = op(relax.Var("x", relax.TensorType((2, 3), "float32")), k=3)
    assert isinstance(call, relax.Call) and call.op.same_as(op.tvm_op)


def test_duplicate_name_names_first_definition():
    tvmext.op("test_dup.scale", replace=True)(_scale)
    with pytest.raises(
        tvmext.OpDefinitionError,
        match=r"'test_dup.scale' is already registered "
        r"\(first defined at .*test_custom_op.py:\d+\)",
    ):
        tvmext.op("test_dup.scale")(_scale)


def test_replace_redefines_and_invalidates_the_eager_cache(rng):
    x = rng.standard_normal((3, 4)).astype("float32")
    first = tvmext.op("test_replace.f", replace=True)(_scale)
    np.testing.assert_allclose(first(x), 2 * x)

    @tvmext.op("test_replace.f", replace=True)
    def second(x, *, k: float = 2.0):
        return te.compute(x.shape, lambda *i: x[i] + tirx.const(k, x.dtype))

    np.testing.assert_allclose(second(x), x + 2)
    mod = single_op_module(second, relax.TensorType((3, 4), "float32"))
    np.testing.assert_allclose(run_module(mod, x).numpy(), x + 2)


def test_invalid_names():
    with pytest.raises(tvmext.OpDefinitionError, match=r"name 'noprefix' is invalid"):
        tvmext.op("noprefix")(_scale)


def test_names_ending_in_grad_are_the_users(rng):
    """Gradient companions live in their own namespace (relax.tvmext_grad), so an op
    may be called clip_grad, and its own gradient does not collide with anything."""
    clip_grad = tvmext.op("test_names.clip_grad", replace=True)(_scale)

    @clip_grad.gradient
    def _(x, y, dy, *, k):
        return te.compute(x.shape, lambda *i: dy[i] * tirx.const(k, x.dtype))

    scale = tvmext.op("test_names.clip", replace=True)(_scale)
    assert clip_grad.tvm_op.name == "relax.tvmext.test_names.clip_grad"
    assert scale.gradient_op().tvm_name == "relax.tvmext_grad.test_names.clip"
    mod = _gradient_module(clip_grad, [relax.TensorType((4,), "float32")])
    text = mod.script()
    assert "R.tvmext_grad.test_names.clip_grad(" in text
    tvm.ir.assert_structural_equal(mod, from_source(text))
    x = rng.standard_normal(4).astype("float32")
    _, (dx,) = run_module(mod, x, fn="main_adjoint")
    np.testing.assert_allclose(dx.numpy(), np.full(4, 2.0), rtol=1e-6)


def test_second_gradient_or_schedule_is_an_error_unless_replaced():
    op = tvmext.op("test_twice.scale", replace=True)(_scale)
    op.gradient(lambda x, y, dy, *, k: dy)
    with pytest.raises(
        tvmext.OpDefinitionError,
        match=r"already has a gradient \(declared at .*test_custom_op.py:\d+\)",
    ):
        op.gradient(lambda x, y, dy, *, k: dy)
    op.gradient(replace=True)(lambda x, y, dy, *, k: dy)
    op.schedule("llvm")(lambda sch: None)
    with pytest.raises(
        tvmext.OpDefinitionError,
        match=r"schedule of op 'test_twice.scale' for target kind 'llvm' is already "
        r"registered \(first defined at .*test_custom_op.py",
    ):
        op.schedule("cpu")(lambda sch: None)
    op.schedule("llvm", replace=True)(lambda sch: None)


def test_unknown_schedule_kind_lists_the_known_ones():
    op = tvmext.op("test_kind.scale", replace=True)(_scale)
    with pytest.raises(
        tvmext.OpDefinitionError,
        match=r"TVM target kind, got 'nonsense'; known kinds: .*cuda.*llvm",
    ):
        op.schedule("nonsense")


def test_arity_and_attribute_errors_name_the_op():
    x = relax.Var("x", relax.TensorType((2, 4), "float32"))
    with pytest.raises(
        tvmext.OpCallError,
        match=r"'tvmext.rms_norm' takes 2 tensor input\(s\) "
        r"\(x, weight\), got 1",
    ):
        rms_norm(x)
    with pytest.raises(
        tvmext.OpCallError, match=r"'tvmext\.swish': attribute 'beta' expects float"
    ):
        swish(x, beta="one")


def test_shape_mismatch_is_reported_with_op_and_inputs():
    @tvmext.op("test_shape.add", replace=True)
    def add(a, b):
        return te.compute(a.shape, lambda i: a[i] + b[i])

    with pytest.raises(
        tvmext.ShapeError,
        match=r"'test_shape.add': compute failed for inputs "
        r"\(a: \[4\] float32, b: \[2, 2\] float32\)",
    ):
        single_op_module(
            add, relax.TensorType((4,), "float32"), relax.TensorType((2, 2), "float32")
        )


def test_inferred_type_keeps_symbolic_batch():
    n = tirx.Var("n", "int64")
    mod = single_op_module(
        rms_norm, relax.TensorType((n, 8), "float32"), relax.TensorType((8,), "float32")
    )
    ret = mod["main"].body.body.ty
    assert isinstance(ret, relax.TensorType)
    assert ret.shape.values[0].same_as(n) and int(ret.shape.values[1]) == 8


def test_symbolic_batch_compiles_and_runs_for_several_sizes(rng):
    n = tirx.Var("n", "int64")
    mod = single_op_module(
        rms_norm, relax.TensorType((n, 16), "float32"), relax.TensorType((16,), "float32")
    )
    w = rng.standard_normal(16).astype("float32")
    for rows in (1, 5, 33):
        x = rng.standard_normal((rows, 16)).astype("float32")
        got = run_module(mod, x, w).numpy()
        np.testing.assert_allclose(got, rms_norm.reference_fn(x, w, eps=1e-6), rtol=1e-5)


def test_two_outputs_infer_a_tuple():
    mod = single_op_module(moments, relax.TensorType((3, 5, 7), "float32"), n_axes=2)
    ty = mod["main"].body.body.ty
    assert isinstance(ty, relax.TupleType)
    assert [tuple(int(d) for d in f.shape.values) for f in ty.fields] == [(3,), (3,)]


def test_explicit_inference_overrides_tracing():
    def infer(x_ty, *, k):
        return relax.TensorType(x_ty.shape, "float32")

    op = tvmext.op("test_infer.scale", infer=infer, replace=True)(_scale)
    mod = single_op_module(op, relax.TensorType((2, 3), "float32"))
    assert mod["main"].body.body.ty.dtype == "float32"


def _gradient_module(op, types, wrt=None, **attrs):
    bb = relax.BlockBuilder()
    params = [relax.Var(f"x{i}", t) for i, t in enumerate(types)]
    with bb.function("main", params):
        with bb.dataflow():
            y = bb.emit(op(*params, **attrs))
            if isinstance(y.ty, relax.TupleType):
                y = bb.emit(relax.TupleGetItem(y, 1))
            out = bb.emit_output(relax.op.sum(y))
        bb.emit_func_output(out)
    grads = params if wrt is None else [params[i] for i in wrt]
    return relax.transform.Gradient("main", require_grads=grads)(bb.get())


@pytest.mark.parametrize(
    ("op", "types", "attrs"),
    [
        (swish, [relax.TensorType((4, 8), "float32")], {"beta": 1.5}),
        (
            rms_norm,
            [relax.TensorType((4, 8), "float32"), relax.TensorType((8,), "float32")],
            {"eps": 1e-5},
        ),
        (moments, [relax.TensorType((2, 3, 8), "float32")], {"n_axes": 2}),
    ],
    ids=lambda v: getattr(v, "name", None),
)
def test_printing_and_parsing_round_trip(op, types, attrs):
    """Every shipped op prints (with and without metadata) and parses back, also after
    relax.transform.Gradient (which adds the gradient ops)."""
    for mod in (single_op_module(op, *types, **attrs), _gradient_module(op, types, **attrs)):
        text = mod.script(show_meta=True)
        assert "metadata" not in text
        assert f"R.tvmext.{op.name}(" in text
        tvm.ir.assert_structural_equal(mod, from_source(text))
        tvm.ir.assert_structural_equal(mod, from_source(mod.script()))


def test_gradient_pass_sees_the_high_level_op_and_lowers_after(rng):
    mod = _gradient_module(moments, [relax.TensorType((2, 6), "float32")])
    assert "R.tvmext_grad.tvmext.moments(" in mod.script()
    assert "call_tir" not in mod.script()
    x = rng.standard_normal((2, 6)).astype("float32")
    loss, (dx,) = run_module(mod, x, fn="main_adjoint")
    np.testing.assert_allclose(loss.numpy(), x.var(-1).sum(), rtol=1e-5)
    np.testing.assert_allclose(dx.numpy(), 2 * (x - x.mean(-1, keepdims=True)) / 6, atol=1e-6)


def test_none_gradient_gives_zeros(rng):
    @tvmext.op("test_grad.mul", replace=True)
    def mul(a, mask):
        return te.compute(a.shape, lambda *i: a[i] * mask[i])

    @mul.gradient
    def _mul_grad(a, mask, y, dy):
        return te.compute(a.shape, lambda *i: dy[i] * mask[i]), None

    t = relax.TensorType((3,), "float32")
    mod = _gradient_module(mul, [t, t])
    a, m = rng.standard_normal(3).astype("float32"), np.array([1, 0, 2], "float32")
    _, (da, dm) = run_module(mod, a, m, fn="main_adjoint")
    np.testing.assert_allclose(da.numpy(), m)
    np.testing.assert_allclose(dm.numpy(), np.zeros(3))


def test_missing_gradient_is_a_clear_error():
    op = tvmext.op("test_grad.nograd", replace=True)(_scale)
    with pytest.raises(tvmext.OpDefinitionError, match=r"op .test_grad.nograd. has no gradient"):
        _gradient_module(op, [relax.TensorType((3,), "float32")])


def test_eager_call_compiles_once_per_signature(rng):
    op = tvmext.op("test_eager.scale", replace=True)(_scale)
    x = rng.standard_normal((5, 3)).astype("float32")
    np.testing.assert_allclose(op(x), 2 * x)
    np.testing.assert_allclose(op(x[:, :2]), 2 * x[:, :2])  # unaligned, non-contiguous
    np.testing.assert_allclose(op(x, k=-1.0), -x)
    np.testing.assert_allclose(op(x.astype("float64")), 2 * x.astype("float64"))
    op(x)
    assert len(op.eager_cache) == 4
    _, var = moments(x)
    np.testing.assert_allclose(var, x.var(-1), rtol=1e-5)


def test_eager_rejects_non_arrays():
    with pytest.raises(tvmext.OpCallError, match=r"'tvmext\.swish': input 'x' .* dtype object"):
        swish([object()])


def test_user_ops_are_listed_with_origin():
    tvmext.op("test_list.scale", replace=True)(_scale)
    entry = OPS.entry("test_list.scale")
    assert entry.origin.endswith(".py:" + entry.origin.rsplit(":", 1)[1])
    assert "test_custom_op.py" in entry.origin
    assert "tvmext.rms_norm" in OPS

"""check_op catches what it promises to catch, with readable messages."""

from __future__ import annotations

import pytest
from tvm import relax, te, tirx

import tvmext
from tvmext.testing import check_op

pytestmark = pytest.mark.native  # check_op exports the op, linked by the C++ compiler


def _square_op(name, *, grad_factor=2.0, ref_offset=0.0, infer=None):
    @tvmext.op(name, replace=True, infer=infer)
    def square(x, *, k: float = 1.0):
        return te.compute(x.shape, lambda *i: x[i] * x[i] * tirx.const(k, x.dtype), name="sq")

    @square.gradient
    def _grad(x, y, dy, *, k):
        f = tirx.const(grad_factor * k, x.dtype)
        return te.compute(x.shape, lambda *i: dy[i] * x[i] * f, name="sq_dx")

    @square.reference
    def _ref(x, *, k):
        return x * x * k + ref_offset

    return square


def test_a_correct_op_passes(rng):
    check_op(_square_op("test_check.good"), rng.standard_normal((3, 5)).astype("float32"), k=3.0)


def test_catches_a_wrong_gradient(rng):
    op = _square_op("test_check.wrong_gradient", grad_factor=1.0)
    with pytest.raises(AssertionError) as info:
        check_op(op, rng.standard_normal((3, 5)).astype("float32"))
    message = str(info.value)
    assert "check_op('test_check.wrong_gradient')" in message
    assert "gradient of input 'x' vs finite differences of the reference" in message
    assert "output 0 vs reference" not in message


def test_catches_a_wrong_reference(rng):
    op = _square_op("test_check.bad_ref", ref_offset=0.5)
    with pytest.raises(AssertionError, match=r"output 0 vs reference: 15 of 15 elements differ"):
        check_op(op, rng.standard_normal((3, 5)).astype("float32"))


def test_catches_a_wrong_explicit_inference(rng):
    def infer(x_ty, *, k):
        return relax.TensorType([x_ty.shape.values[0], 99], x_ty.dtype)

    op = _square_op("test_check.bad_infer", infer=infer)
    with pytest.raises(AssertionError, match=r"inferred \(3, 99\) float32, computed \(3, 5\)"):
        check_op(op, rng.standard_normal((3, 5)).astype("float32"), check_gradient=False)


def test_gradient_without_reference_uses_the_compiled_op(rng):
    @tvmext.op("test_check.noref", replace=True)
    def cube(x):
        return te.compute(x.shape, lambda *i: x[i] * x[i] * x[i])

    @cube.gradient
    def _cube_grad(x, y, dy):
        return te.compute(x.shape, lambda *i: dy[i] * x[i] * x[i])  # missing factor 3

    with pytest.raises(AssertionError, match="finite differences of the compiled op"):
        check_op(cube, rng.standard_normal((4,)).astype("float32"))


def test_float_tolerance_is_by_dtype(rng):
    x = rng.standard_normal((2, 3))
    op = _square_op("test_check.f64", ref_offset=1e-7)
    check_op(op, x.astype("float32"), check_gradient=False)  # 1e-7 is noise in float32
    with pytest.raises(AssertionError, match="vs reference"):
        check_op(op, x, check_gradient=False)  # but not in float64

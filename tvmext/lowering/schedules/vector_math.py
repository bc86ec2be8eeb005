"""Vectorizable ``exp``, ``erf``, ``tanh`` and ``sigmoid`` for CPU PrimFuncs.

TVM's LLVM backend has no vector math library: in a vectorized loop ``exp`` becomes
``llvm.exp.v16f32``, which LLVM splits into sixteen scalar ``expf`` calls, and ``erf``
a scalar ``erff`` call per element; a GELU or a softmax then runs at a twentieth of
memory speed. :func:`polynomial_math` rewrites these calls of a PrimFunc into
arithmetic that LLVM vectorizes (polynomials, one division, integer exponent tricks),
each within a few float32 ulp:

- ``exp(x)``: Cody-Waite reduction ``x = k ln2 + r`` with ``|r| <= ln2/2``, Cephes'
  degree-6 polynomial for ``e^r``, and ``2^k`` built from exponent bits in two halves
  (so that results down to the subnormals and up to the overflow are exact in range);
  NaN stays NaN, ``-inf`` gives 0, ``+inf`` gives ``+inf``. Error below 2 ulp.
- ``erf(x)``: the odd/even rational approximation of Eigen and TVM's ``topi.fast_erf``
  on ``[-4, 4]`` (``|erf(4)| = 1 - 1.5e-8`` rounds to 1 in float32); absolute error
  below 4e-7.
- ``tanh(x)``: the rational approximation of Eigen and ``topi.fast_tanh`` on ``[-9, 9]``;
  absolute error below 4e-7, relative below 4e-7 near 0.
- ``sigmoid(x) = 1 / (1 + exp(-x))`` with the ``exp`` above.

float16 calls compute in float32; float64, bfloat16 (whose legalization copies
expressions) and vector-typed calls are left alone. The rewrite runs after scheduling,
on every CPU PrimFunc the default schedule handles
(:func:`tvmext.lowering.schedules.default.default_schedule`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import tvm
import tvm_ffi
from tvm import tirx

_F32 = "float32"
_LOG2E = 1.4426950408889634
# ln 2 split so that k * _LN2_HI is exact for |k| < 2**15 (Cody-Waite).
_LN2_HI = 0.693359375
_LN2_LO = -2.12194440e-4
# Cephes expf: e^r ~ 1 + r + r^2 * P(r) on |r| <= ln2/2.
_EXP_P = (
    1.9875691500e-4,
    1.3981999507e-3,
    8.3334519073e-3,
    4.1665795894e-2,
    1.6666665459e-1,
    5.0000001201e-1,
)
# exp(-104) is below half the smallest subnormal; exp(89) overflows.
_EXP_LO, _EXP_HI = -104.0, 89.0
# erf(x) ~ x * P(x^2) / Q(x^2) on [-4, 4] (Eigen's generic_fast_erf_float).
_ERF_P = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_Q = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)
_ERF_CLAMP = 4.0
# tanh(x) ~ x * P(x^2) / Q(x^2) on [-9, 9] (Eigen's generic_fast_tanh_float).
_TANH_P = (
    -2.76076847742355e-16,
    2.00018790482477e-13,
    -8.60467152213735e-11,
    5.12229709037114e-08,
    1.48572235717979e-05,
    6.37261928875436e-04,
    4.89352455891786e-03,
)
_TANH_Q = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)
_TANH_CLAMP = 9.0


def _c(value: float) -> tirx.PrimExpr:
    return tirx.const(value, _F32)


def _let(value: tirx.PrimExpr, name: str, body: Callable[[tirx.Var], tirx.PrimExpr]):
    """``body(v)`` with ``v`` bound to ``value`` once (no duplicated subexpressions)."""
    var = tirx.Var(name, str(value.ty.dtype))
    return tirx.Let(var, value, body(var))


def _horner(x: tirx.PrimExpr, coefficients: Sequence[float]) -> tirx.PrimExpr:
    """``c0 x^(n-1) + ... + c(n-1)``, highest degree first."""
    result = _c(coefficients[0])
    for c in coefficients[1:]:
        result = result * x + _c(c)
    return result


def _clamp(x: tirx.PrimExpr, lo: float, hi: float) -> tirx.PrimExpr:
    return tirx.max(tirx.min(x, _c(hi)), _c(lo))


def _pow2(k: tirx.PrimExpr) -> tirx.PrimExpr:
    """``2^k`` for an int32 ``k`` in [-126, 127], from the exponent bits."""
    biased = (k + tirx.const(127, "int32")) << tirx.const(23, "int32")
    return tirx.reinterpret(_F32, biased)


def vector_exp(x: tirx.PrimExpr) -> tirx.PrimExpr:
    """float32 ``exp(x)`` as vectorizable arithmetic (see the module docstring)."""

    def body(v: tirx.Var) -> tirx.PrimExpr:
        def reduced(xc: tirx.Var) -> tirx.PrimExpr:
            def scaled(k: tirx.Var) -> tirx.PrimExpr:
                def poly(r: tirx.Var) -> tirx.PrimExpr:
                    def power(ki: tirx.Var) -> tirx.PrimExpr:
                        half = ki >> tirx.const(1, "int32")
                        e_r = _horner(r, _EXP_P) * r * r + r + _c(1.0)
                        return e_r * _pow2(half) * _pow2(ki - half)

                    return _let(tirx.Cast("int32", k), "exp_k", power)

                return _let(xc - k * _c(_LN2_HI) - k * _c(_LN2_LO), "exp_r", poly)

            return _let(tirx.floor(xc * _c(_LOG2E) + _c(0.5)), "exp_kf", scaled)

        result = _let(_clamp(v, _EXP_LO, _EXP_HI), "exp_xc", reduced)
        return tirx.Select(tirx.isnan(v), v, result)

    return _let(x, "exp_x", body)


def _odd_rational(
    x: tirx.PrimExpr, bound: float, p: Sequence[float], q: Sequence[float], name: str
) -> tirx.PrimExpr:
    """``xc * P(xc^2) / Q(xc^2)`` with ``xc`` = x clamped to [-bound, bound]."""

    def body(xc: tirx.Var) -> tirx.PrimExpr:
        return _let(xc * xc, f"{name}_x2", lambda x2: xc * _horner(x2, p) / _horner(x2, q))

    return _let(_clamp(x, -bound, bound), f"{name}_xc", body)


def vector_erf(x: tirx.PrimExpr) -> tirx.PrimExpr:
    """float32 ``erf(x)`` as a vectorizable rational function (NaN gives NaN)."""
    return _let(
        x,
        "erf_x",
        lambda v: tirx.Select(
            tirx.isnan(v), v, _odd_rational(v, _ERF_CLAMP, _ERF_P, _ERF_Q, "erf")
        ),
    )


def vector_tanh(x: tirx.PrimExpr) -> tirx.PrimExpr:
    """float32 ``tanh(x)`` as a vectorizable rational function (NaN gives NaN)."""
    return _let(
        x,
        "tanh_x",
        lambda v: tirx.Select(
            tirx.isnan(v), v, _odd_rational(v, _TANH_CLAMP, _TANH_P, _TANH_Q, "tanh")
        ),
    )


def vector_sigmoid(x: tirx.PrimExpr) -> tirx.PrimExpr:
    """float32 ``1 / (1 + exp(-x))`` with :func:`vector_exp`."""
    return _c(1.0) / (_c(1.0) + vector_exp(-x))


REWRITES: dict[str, Callable[[tirx.PrimExpr], tirx.PrimExpr]] = {
    "tirx.exp": vector_exp,
    "tirx.erf": vector_erf,
    "tirx.tanh": vector_tanh,
    "tirx.sigmoid": vector_sigmoid,
}
# bfloat16 is left alone: TVM's bfloat16 legalization copies the value it rounds, and
# a copied Let binding fails vectorization.
_UPCAST = ("float16",)


def _rewritten(call: tvm.ir.Call) -> Callable[[tirx.PrimExpr], tirx.PrimExpr] | None:
    """The rewrite of a TIR math call, if it has one (Relax calls share the class)."""
    if not isinstance(call.op, tvm.ir.Op) or not isinstance(call.ty, tvm.ir.PrimType):
        return None
    return REWRITES.get(str(call.op.name))


def _rewrite_call(call: tvm.ir.Call) -> tirx.PrimExpr:
    rewrite = _rewritten(call)
    dtype = str(call.ty.dtype) if rewrite is not None else ""
    if rewrite is None or tvm.DataType(dtype).lanes != 1:
        return call
    if dtype == _F32:
        return rewrite(call.args[0])
    if dtype in _UPCAST:
        return tirx.Cast(dtype, rewrite(tirx.Cast(_F32, call.args[0])))
    return call


# Ops whose LLVM lowering takes vectors (``llvm.nearbyint``, ``fcmp uno``) but which
# TVM 0.27 does not mark vectorizable.
_VECTORIZABLE = ("tirx.nearbyint", "tirx.isnan")


@functools.cache  # once a process: it sets TVM's op registry
def _mark_vectorizable() -> None:
    """Let TVM vectorize :data:`_VECTORIZABLE`.

    Unmarked, a vectorized loop that quantizes (``nearbyint``) or uses the NaN checks
    below is scalarized statement by statement, and scalarizing a statement that holds
    one of the ``Let`` expressions below can fail ("Let cannot bind the same var to two
    different values")."""
    for name in _VECTORIZABLE:
        if tvm.ir.Op.get(name).get_attr("TVectorizable") is None:
            tvm.ir.register_op_attr(name, "TVectorizable", True)


def polynomial_math(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """``func`` with its scalar float32/float16 ``exp``, ``erf``, ``tanh`` and
    ``sigmoid`` calls replaced by :data:`REWRITES` (``func`` itself if it has none)."""
    _mark_vectorizable()
    return tvm_ffi.structural_map(func, (tvm.ir.Call, _rewrite_call), order="post")


def math_calls(func: tirx.PrimFunc) -> list[str]:
    """The names of the calls in :data:`REWRITES` that ``func`` still makes."""
    found: list[str] = []

    def visit(call: tvm.ir.Call) -> None:
        if _rewritten(call) is not None:
            found.append(str(call.op.name))

    tvm_ffi.structural_walk(func, (tvm.ir.Call, visit))
    return found

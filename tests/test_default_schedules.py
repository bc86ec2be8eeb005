"""Default CPU schedules of the memory-bound kernels that stay on TVM: results against
NumPy with schedule verification on, and the structure that makes them run at memory
speed (parallel and vectorized loops, SIMD partial sums, tiles, no scalar libm calls).
Timings are in ``benchmarks/tvm_kernels.py``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import tvm
from scipy.special import erf
from tvm import relax, s_tir, te, tirx

from tvmext.lowering.pipeline import build
from tvmext.lowering.schedules.vector_math import math_calls, polynomial_math
from tvmext.target.spec import parse_target

HOST = parse_target("llvm").host
op = relax.op


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + erf(x.astype(np.float64) / np.sqrt(2)))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * g + b


def _compile(fn: Callable[..., relax.Expr], *types: relax.TensorType):
    """``main = fn(*params)`` built with schedule verification; the VM and the
    scheduled PrimFuncs."""
    bb = relax.BlockBuilder()
    params = [relax.Var(f"x{i}", t) for i, t in enumerate(types)]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(fn(*params))
        bb.emit_func_output(out)
    seen: dict[str, tvm.IRModule] = {}
    executable = build(
        bb.get(), HOST, verify_schedules=True, after_stage=lambda n, m: seen.setdefault(n, m)
    )
    funcs = [f for _, f in seen["schedule"].functions_items() if isinstance(f, tirx.PrimFunc)]
    return relax.VirtualMachine(executable, tvm.cpu()), funcs


def _run(vm: relax.VirtualMachine, *arrays: np.ndarray) -> np.ndarray:
    return vm["main"](*[tvm.runtime.tensor(a) for a in arrays]).numpy()


def _close(got: np.ndarray, want: np.ndarray) -> None:
    """Within 1e-5 of the largest |want| (the ONNX tests' bound is 1e-4)."""
    want = np.asarray(want, dtype=np.float64)
    scale = float(np.max(np.abs(want))) or 1.0
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) / scale < 1e-5


def _f32(*shape: int) -> relax.TensorType:
    return relax.TensorType(shape, "float32")


# name, Relax function, input types, input shapes, NumPy reference, marks in the script
KERNELS = [
    ("add", op.add, [_f32(64, 256)] * 2, [(64, 256)] * 2, np.add, []),
    ("exp", op.exp, [_f32(64, 256)], [(64, 256)], np.exp, []),
    ("gelu", op.nn.gelu, [_f32(64, 256)], [(64, 256)], _gelu, []),
    (
        "gelu_tanh",
        op.nn.gelu_tanh,
        [_f32(64, 256)],
        [(64, 256)],
        lambda x: 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3))),
        [],
    ),
    ("silu", op.nn.silu, [_f32(64, 256)], [(64, 256)], lambda x: x / (1 + np.exp(-x)), []),
    (
        "nchw_to_tokens_gelu",
        lambda x: op.nn.gelu(op.permute_dims(op.reshape(x, (2, 32, 256)), [0, 2, 1])),
        [_f32(2, 32, 16, 16)],
        [(2, 32, 16, 16)],
        lambda x: _gelu(x.reshape(2, 32, 256).transpose(0, 2, 1)),
        ['scope="local"'],  # transposed in tiles through a local buffer
    ),
    (
        "nhwc_to_nchw_gelu",
        lambda x: op.nn.gelu(op.permute_dims(x, [0, 3, 1, 2])),
        [_f32(2, 16, 16, 32)],
        [(2, 16, 16, 32)],
        lambda x: _gelu(x.transpose(0, 3, 1, 2)),
        ['scope="local"'],
    ),
    (
        "nchw_to_nhwc",
        lambda x: op.permute_dims(x, [0, 2, 3, 1]),
        [_f32(2, 32, 16, 16)],
        [(2, 32, 16, 16)],
        lambda x: x.transpose(0, 2, 3, 1),
        [],
    ),
    (
        "nhwc_to_nchw",
        lambda x: op.permute_dims(x, [0, 3, 1, 2]),
        [_f32(2, 16, 16, 32)],
        [(2, 16, 16, 32)],
        lambda x: x.transpose(0, 3, 1, 2),
        [],
    ),
    (
        "attention_heads",
        lambda x: op.permute_dims(op.reshape(x, (2, 64, 4, 32)), [0, 2, 1, 3]),
        [_f32(2, 64, 128)],
        [(2, 64, 128)],
        lambda x: x.reshape(2, 64, 4, 32).transpose(0, 2, 1, 3),
        [],
    ),
    ("softmax", lambda x: op.nn.softmax(x, -1), [_f32(64, 256)], [(64, 256)], _softmax, ["_rf"]),
    (
        "layer_norm",
        lambda x, g, b: op.nn.layer_norm(x, g, b, [-1]),
        [_f32(64, 256), _f32(256), _f32(256)],
        [(64, 256), (256,), (256,)],
        _layer_norm,
        ["_rf"],  # mean and variance in SIMD partial sums
    ),
    (
        "sum_last",
        lambda x: op.sum(x, [-1]),
        [_f32(64, 256)],
        [(64, 256)],
        lambda x: x.sum(-1),
        ["_rf"],
    ),
    (
        "max_last",
        lambda x: op.max(x, [-1]),
        [_f32(64, 256)],
        [(64, 256)],
        lambda x: x.max(-1),
        ["_rf"],
    ),
    (
        "sum_axis0",
        lambda x: op.sum(x, [0]),
        [_f32(256, 64)],
        [(256, 64)],
        lambda x: x.sum(0),
        ["_rf"],
    ),
    (
        "mean_nchw",
        lambda x: op.mean(x, [0, 2, 3]),
        [_f32(2, 32, 16, 16)],
        [(2, 32, 16, 16)],
        lambda x: x.mean((0, 2, 3)),
        ["_rf"],
    ),
    (
        "sum_middle",
        lambda x: op.sum(x, [1]),
        [_f32(16, 32, 64)],
        [(16, 32, 64)],
        lambda x: x.sum(1),
        [],
    ),
    (
        "concat",
        lambda a, b: op.concat([a, b], axis=1),
        [_f32(64, 128)] * 2,
        [(64, 128)] * 2,
        lambda a, b: np.concatenate([a, b], 1),
        [],
    ),
    (
        "strided_slice",
        lambda x: op.strided_slice(x, [0], [0], [64], [2]),
        [_f32(64, 256)],
        [(64, 256)],
        lambda x: x[::2],
        [],
    ),
]


@pytest.mark.parametrize(
    "name, fn, types, shapes, reference, marks", KERNELS, ids=[k[0] for k in KERNELS]
)
def test_kernel_is_parallel_vectorized_and_correct(rng, name, fn, types, shapes, reference, marks):
    vm, funcs = _compile(fn, *types)
    arrays = [rng.standard_normal(s).astype("float32") for s in shapes]
    _close(_run(vm, *arrays), reference(*arrays))
    for func in funcs:
        script = func.script()
        assert "T.parallel" in script and "T.vectorized" in script, script
        assert math_calls(func) == []  # exp/erf/tanh/sigmoid became vectorizable arithmetic
    assert all(any(mark in f.script() for f in funcs) for mark in marks)


def test_embedding_gather_is_parallel_and_correct(rng):
    vm, funcs = _compile(
        lambda w, i: op.take(w, i, axis=0), _f32(100, 64), relax.TensorType((48,), "int64")
    )
    table = rng.standard_normal((100, 64)).astype("float32")
    ids = rng.integers(0, 100, 48).astype("int64")
    np.testing.assert_array_equal(_run(vm, table, ids), table[ids])
    assert all("T.parallel" in f.script() and "T.vectorized" in f.script() for f in funcs)


def test_symbolic_rows_stay_correct(rng):
    batch = tirx.Var("batch", "int64")
    vm, funcs = _compile(op.nn.gelu, relax.TensorType((batch, 64), "float32"))
    (script,) = [f.script() for f in funcs]
    assert "T.parallel" in script and "T.vectorized" in script  # the columns are known
    for rows in (1, 3, 17):
        x = rng.standard_normal((rows, 64)).astype("float32")
        _close(_run(vm, x), _gelu(x))


def test_symbolic_columns_are_parallel_not_vectorized(rng):
    rows, cols = tirx.Var("rows", "int64"), tirx.Var("cols", "int64")
    vm, funcs = _compile(lambda x: op.nn.softmax(x, -1), relax.TensorType((rows, cols), "float32"))
    for func in funcs:
        assert "T.parallel" in func.script()
    x = rng.standard_normal((5, 37)).astype("float32")
    _close(_run(vm, x), _softmax(x))


def test_transposed_operand_beside_a_straight_one(rng):
    vm, funcs = _compile(
        lambda a, b: op.add(a, op.permute_dims(b, [1, 0])), _f32(64, 32), _f32(32, 64)
    )
    a = rng.standard_normal((64, 32)).astype("float32")
    b = rng.standard_normal((32, 64)).astype("float32")
    _close(_run(vm, a, b), a + b.T)
    assert all("T.parallel" in f.script() and "T.vectorized" in f.script() for f in funcs)


def _math_func(name: str, dtype: str, n: int) -> tirx.PrimFunc:
    x = te.placeholder((n,), dtype, name="x")
    y = te.compute((n,), lambda i: getattr(tirx, name)(x[i]), name="y")
    sch = s_tir.Schedule(te.create_prim_func([x, y]))
    (loop,) = sch.get_loops(sch.get_sblock("y"))
    _, lane = sch.split(loop, [None, 16])
    sch.vectorize(lane)
    return polynomial_math(sch.mod["main"])


def _run_math(func: tirx.PrimFunc, x: np.ndarray) -> np.ndarray:
    lib = tvm.tirx.build(func.with_attr("global_symbol", "f"), HOST)
    out = tvm.runtime.empty(x.shape, str(x.dtype), tvm.cpu())
    lib["f"](tvm.runtime.tensor(x), out)
    return out.numpy()


SPECIAL = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 88.7, 89.0, -87.0], "float32"
)
MATH = [
    # name, reference, relative bound (exp-like), absolute bound (bounded functions)
    ("exp", np.exp, 2e-7, 0.0),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x)), 3e-7, 0.0),
    ("erf", erf, 0.0, 5e-7),
    ("tanh", np.tanh, 0.0, 5e-7),
]


@pytest.mark.parametrize("name, reference, rel, abs_", MATH, ids=[m[0] for m in MATH])
def test_polynomial_math_is_float32_accurate(rng, name, reference, rel, abs_):
    x = np.concatenate(
        [
            SPECIAL,
            np.linspace(-100, 90, 4000),
            rng.standard_normal(4000) * 4,
            rng.standard_normal(182) * 1e-3,
        ]
    ).astype("float32")
    func = _math_func(name, "float32", x.size)
    assert math_calls(func) == []
    got = _run_math(func, x).astype(np.float64)
    with np.errstate(over="ignore"):
        want = reference(x.astype(np.float64))
        representable = np.abs(want.astype(np.float32)) < np.inf
    normal = representable & ~np.isnan(want) & (np.abs(want) > np.finfo(np.float32).tiny)
    error = np.abs(got[normal] - want[normal])
    bound = rel * np.abs(want[normal]) + abs_
    assert np.all(error <= bound), (x[normal][np.argmax(error - bound)], np.max(error - bound))
    # special values: NaN stays NaN; infinities and underflow as the reference rounds them
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    overflow = ~np.isnan(want) & ~representable
    np.testing.assert_array_equal(got[overflow], np.sign(want[overflow]) * np.inf)
    tiny = ~np.isnan(want) & (np.abs(want) <= np.finfo(np.float32).tiny)
    assert np.all(np.abs(got[tiny]) <= np.finfo(np.float32).tiny)


def test_half_precision_math_computes_in_float32(rng):
    x = (rng.standard_normal(256) * 3).astype("float16")
    func = _math_func("erf", "float16", x.size)
    assert math_calls(func) == [] and "float32" in func.script()
    np.testing.assert_allclose(_run_math(func, x), erf(x.astype(np.float64)), atol=1e-3)


@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_other_float_math_is_left_to_tvm(dtype):
    func = _math_func("exp", dtype, 64)
    assert math_calls(func) == ["tirx.exp"]
    tvm.tirx.build(func.with_attr("global_symbol", "f"), HOST)  # builds as before


@pytest.mark.parametrize("shape", [(4, 4, 1, 1), (4, 1)])
def test_softmax_over_a_length_one_axis(rng, shape):
    # TVM folds a consumer into a reduction's init once a length-1 reduced axis is
    # gone: exp(x - max) became NaN (MobileViT's last stage attends over one patch)
    vm, _ = _compile(lambda x: op.nn.softmax(x, -1), _f32(*shape))
    x = rng.standard_normal(shape).astype("float32")
    np.testing.assert_array_equal(_run(vm, x), np.ones(shape, "float32"))


def test_quantized_math_stays_vectorized(rng):
    # requantize(gelu(dequantize(q))): the rounding of both quantizations is vectorized
    # with the polynomial erf (TVM scalarized it, and failed on the polynomial's Lets)
    def quantize(v: tirx.PrimExpr, scale: float) -> tirx.PrimExpr:
        return tirx.Cast("int8", tirx.min(tirx.max(tirx.nearbyint(v / scale), -128.0), 127.0))

    def gelu(v: tirx.PrimExpr) -> tirx.PrimExpr:
        return v * (0.5 + 0.5 * tirx.erf(v * 0.70710678))

    x = te.placeholder((1024,), "float32", name="x")
    y = te.compute(
        (1024,),
        lambda i: quantize(gelu(tirx.Cast("float32", quantize(x[i], 0.05)) * 0.05), 0.01),
        name="y",
    )
    sch = s_tir.Schedule(te.create_prim_func([x, y]))
    (loop,) = sch.get_loops(sch.get_sblock("y"))
    sch.vectorize(sch.split(loop, [None, 16])[1])
    func = polynomial_math(sch.mod["main"]).with_attr("global_symbol", "f")
    lib = tvm.tirx.build(func, HOST)
    assert "llvm.nearbyint.v16f32" in lib.inspect_source("ll")
    a = (rng.standard_normal(1024) * 3).astype("float32")
    out = tvm.runtime.empty((1024,), "int8", tvm.cpu())
    lib["f"](tvm.runtime.tensor(a), out)
    q = np.clip(np.round(a / np.float32(0.05)), -128, 127).astype(np.int8)
    v = q.astype(np.float64) * 0.05
    want = np.clip(np.round(v * (0.5 + 0.5 * erf(v * 0.70710678)) / 0.01), -128, 127)
    assert np.max(np.abs(out.numpy() - want)) <= 1  # one step where erf's ulps round apart

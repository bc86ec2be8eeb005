"""A matmul by constant weights on oneDNN gives the same numbers whether it runs as
oneDNN's matmul or as a 1×1 convolution (``$TVMEXT_ONEDNN_DENSE``), with every kind of
post-op input.

The choice is made once per process, so each mode runs in a child process; oneDNN's
verbose log says which primitive each case ran on. Where a binary post-op's input
cannot be viewed as the convolution's pixels the runtime keeps the matmul; the pattern
table does not produce such a fusion today (a partial broadcast runs as a separate
binary primitive, the last case)."""

from __future__ import annotations

import numpy as np
import pytest
from onednn_verbose import executions, run_logged
from tvm import relax

pytestmark = pytest.mark.onednn

K, N = 8, 16


def _dense(bb, x, c):
    return bb.emit(relax.op.matmul(x, c["w"]))


def _bias_gelu(bb, p, c):
    return relax.op.nn.gelu(bb.emit(relax.op.add(_dense(bb, p[0], c), c["b"])))


def _residual_scale_relu(bb, p, c):
    y = bb.emit(relax.op.add(bb.emit(relax.op.add(_dense(bb, p[0], c), c["b"])), p[1]))
    return relax.op.nn.relu(bb.emit(relax.op.multiply(y, c["s"])))


def _cases() -> dict[str, tuple[list[tuple[int, ...]], object, object]]:
    """name: (input shapes, build(bb, params, consts), reference(inputs, consts))."""
    return {
        "batched rows, bias, GELU": (
            [(2, 5, K)],
            _bias_gelu,
            lambda x, c: _gelu(x[0] @ c["w"] + c["b"]),
        ),
        "residual add of a full tensor, scale per column, ReLU": (
            [(6, K), (6, N)],
            _residual_scale_relu,
            lambda x, c: np.maximum((x[0] @ c["w"] + c["b"] + x[1]) * c["s"], 0),
        ),
        "scale per row": (
            [(6, K), (6, 1)],
            lambda bb, p, c: relax.op.multiply(_dense(bb, p[0], c), p[1]),
            lambda x, c: (x[0] @ c["w"]) * x[1],
        ),
        "one row, no bias": (
            [(1, K)],
            lambda bb, p, c: relax.op.matmul(p[0], c["w"]),
            lambda x, c: x[0] @ c["w"],
        ),
        "add broadcast over the batch only": (
            [(2, 3, K), (3, N)],
            lambda bb, p, c: relax.op.add(_dense(bb, p[0], c), p[1]),
            lambda x, c: x[0] @ c["w"] + x[1],
        ),
    }


def _gelu(x: np.ndarray) -> np.ndarray:
    from math import erf

    return x * 0.5 * (1 + np.vectorize(erf)(x / np.sqrt(2))).astype(np.float32)


def run_cases() -> None:
    """Child process: compile and check every case, printing a marker before each run."""
    import tvmext

    rng = np.random.default_rng(7)
    consts = {
        "w": rng.standard_normal((K, N)).astype(np.float32),
        "b": rng.standard_normal(N).astype(np.float32),
        "s": rng.standard_normal(N).astype(np.float32),
    }
    for name, (shapes, build, reference) in _cases().items():
        bb = relax.BlockBuilder()
        params = [relax.Var(f"x{i}", relax.TensorType(s, "float32")) for i, s in enumerate(shapes)]
        with bb.function("main", params):
            with bb.dataflow():
                c = {k: relax.const(v) for k, v in consts.items()}
                out = bb.emit_output(build(bb, params, c))
            bb.emit_func_output(out)
        module = tvmext.compile(bb.get(), "dnnl, llvm")
        assert {o.placement for o in module.reports[0].ops} == {"dnnl"}, name
        inputs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        print(f"=== {name}", flush=True)
        got = module(*inputs)[0]
        np.testing.assert_allclose(got, reference(inputs, consts), rtol=1e-5, atol=1e-5)


def _primitives(mode: str) -> tuple[dict[str, set[str]], str]:
    """{case: oneDNN primitive kinds executed} in a child process with ``mode``, and
    the child's stderr."""
    logs, stderr = run_logged("test_dnnl_dense", "run_cases", TVMEXT_ONEDNN_DENSE=mode)
    return {name: {kind for kind, _ in executions(log)} for name, log in logs.items()}, stderr


def test_matmul_and_convolution_give_the_same_numbers():
    as_matmul, _ = _primitives("matmul")
    as_conv, _ = _primitives("convolution")
    assert set(as_matmul) == set(as_conv) == set(_cases())
    for case in _cases():
        assert "matmul" in as_matmul[case] and "convolution" not in as_matmul[case], case
        assert "convolution" in as_conv[case] and "matmul" not in as_conv[case], case
    # an add broadcast over part of the rows is no post-op: oneDNN's binary primitive
    assert "binary" in as_conv["add broadcast over the batch only"]


def test_an_unknown_choice_is_said_and_runs_as_auto():
    kinds, stderr = _primitives("conv")
    assert (
        "tvmext: TVMEXT_ONEDNN_DENSE=conv is not matmul, convolution or auto; using auto" in stderr
    )
    assert set(kinds) == set(_cases())

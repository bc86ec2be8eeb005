"""The Python-API path: build a Relax model that uses a custom op, compile, run, time.

The model is a two-layer MLP block ``rms_norm(shifted_softplus(x @ W1) @ W2)``: the
activation is the op the acme plugin (``acme_plugin.py``, beside this file) declares
with ``@tvmext.op``, RMSNorm is one of tvmext's shipped ops. The README's main
command does the same through an ONNX file and the command line.
"""

from __future__ import annotations

import time

import numpy as np
import tvm
from acme_plugin import shifted_softplus
from tvm import relax

import tvmext
from tvmext.lowering.pipeline import build
from tvmext.ops import rms_norm

_reference = shifted_softplus.reference_fn


def main() -> None:
    rng = np.random.default_rng(0)
    batch, d_in, d_hidden = 256, 512, 1024
    x = relax.Var("x", relax.TensorType((batch, d_in), "float32"))
    w1 = relax.Var("w1", relax.TensorType((d_in, d_hidden), "float32"))
    w2 = relax.Var("w2", relax.TensorType((d_hidden, d_in), "float32"))
    g = relax.Var("g", relax.TensorType((d_in,), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x, w1, w2, g]):
        with bb.dataflow():
            h = bb.emit(shifted_softplus(relax.op.matmul(x, w1)))
            out = bb.emit_output(rms_norm(relax.op.matmul(h, w2), g, eps=1e-5))
        bb.emit_func_output(out)
    model = bb.get()
    model.show(show_meta=False)

    host = tvmext.parse_target("llvm").host
    start = time.perf_counter()
    vm = relax.VirtualMachine(build(model, host), tvm.cpu())
    print(f"compiled for {host} in {time.perf_counter() - start:.2f} s")

    arrays = [
        rng.standard_normal((batch, d_in)).astype("float32"),
        (rng.standard_normal((d_in, d_hidden)) / np.sqrt(d_in)).astype("float32"),
        (rng.standard_normal((d_hidden, d_in)) / np.sqrt(d_hidden)).astype("float32"),
        rng.standard_normal(d_in).astype("float32"),
    ]
    inputs = [tvm.runtime.tensor(a) for a in arrays]
    result = vm["main"](*inputs).numpy()
    expected = _numpy_model(arrays)
    np.testing.assert_allclose(result, expected, rtol=1e-3, atol=1e-3)

    timer = vm.time_evaluator("main", tvm.cpu(), number=5, repeat=5)
    median_ms = float(np.median(timer(*inputs).results)) * 1e3
    print(
        f"result: shape {result.shape}, mean {result.mean():+.5f}, std {result.std():.5f}; "
        f"first row[:4] {np.round(result[0, :4], 4)}"
    )
    print(f"max abs difference vs NumPy: {np.abs(result - expected).max():.2e}")
    numpy_s = _median_seconds(lambda: _numpy_model(arrays))
    print(f"median time per run: {median_ms:.2f} ms (NumPy: {numpy_s * 1e3:.2f} ms)")


def _numpy_model(arrays: list[np.ndarray]) -> np.ndarray:
    hidden = _reference(arrays[0] @ arrays[1], shift=0.6931472)
    return rms_norm.reference_fn(hidden @ arrays[2], arrays[3], eps=1e-5)


def _median_seconds(fn: object, repeat: int = 10) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return float(np.median(times))


if __name__ == "__main__":
    main()

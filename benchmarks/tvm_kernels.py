"""TVM's own memory-bound kernels (what stays on TVM beside oneDNN) against memory speed.

Run: .venv/bin/python benchmarks/tvm_kernels.py [--scale 1.0] [--rounds 7] [--only NAME]

Each kernel is a Relax function (elementwise chains, activations with ``erf``/``exp``/
``tanh``, layout changes, attention-head splits, softmax, norms, reductions over the
last and the leading axes, a gather, a concat, strided slices; one with a symbolic
batch) compiled with ``tvmext.compile(mod, "llvm")``, checked against NumPy and timed
with TVM's time evaluator. Bandwidth is the bytes each kernel must move (every input
element it reads once, every output element once; no write-allocate) over its time.
The reference is a STREAM-like triad ``a = b + s*c``, measured in the same run twice:
as a TIR function with a perfect schedule (parallel, vectorized), timed in rounds that
alternate with each kernel's, and with NumPy (one ``np.multiply``/``np.add`` pair per
cache-sized chunk, on as many Python threads as TVM has). The table gives each
kernel's fraction of the larger triad. Times are the best of the rounds, which is
robust on a machine shared with other work. Tensors are 32 to 64 MB each at
``--scale 1``, more than the last-level cache.
"""

from __future__ import annotations

import argparse
import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("TVM_NUM_THREADS", "2")

import numpy as np
import tvm
from scipy.special import erf
from tvm import relax, tirx
from tvm.script import tirx as T

import tvmext
from tvmext.runtime.zero_copy import aligned

THREADS = int(os.environ["TVM_NUM_THREADS"])


@dataclass(frozen=True)
class Kernel:
    """A Relax function of one memory-bound op chain, its inputs and its NumPy twin."""

    name: str
    params: list[relax.TensorType]
    build: Callable[..., relax.Expr]
    inputs: Callable[[np.random.Generator], list[np.ndarray]]
    reference: Callable[..., np.ndarray]
    moved: Callable[[list[np.ndarray], np.ndarray], int] | None = None


def _t(shape: tuple[int | tirx.Var, ...], dtype: str = "float32") -> relax.TensorType:
    return relax.TensorType(shape, dtype)


def _randn(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: aligned(rng.standard_normal(shape, dtype=np.float32))


def _gelu(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1 + erf(x64 / np.sqrt(2)))).astype(np.float32)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * g + b


def kernels(scale: float) -> list[Kernel]:
    """The kernels at ``scale`` (1.0: tensors of 2**24 float32 elements)."""
    r = max(64, int(4096 * scale) // 64 * 64)  # rows of [r, 4096] tensors
    n = r * 4096
    b4 = max(1, n // (64 * 128 * 128))  # images of [b4, 64, 128, 128]
    bs = max(1, n // (2048 * 1024))  # sequences of [bs, 2048, 16 * 64]
    rows = n // 1024
    vocab = 32000
    op = relax.op
    batch = tirx.Var("batch", "int64")

    def ids(rng: np.random.Generator) -> list[np.ndarray]:
        return [
            aligned(rng.standard_normal((vocab, 1024), dtype=np.float32)),
            rng.integers(0, vocab, rows).astype("int64"),
        ]

    return [
        Kernel(
            "add",
            [_t((r, 4096))] * 2,
            op.add,
            lambda g: [_randn(r, 4096)(g), _randn(r, 4096)(g)],
            np.add,
        ),
        Kernel(
            "mul",
            [_t((r, 4096))] * 2,
            op.multiply,
            lambda g: [_randn(r, 4096)(g), _randn(r, 4096)(g)],
            np.multiply,
        ),
        Kernel("exp", [_t((r, 4096))], op.exp, lambda g: [_randn(r, 4096)(g)], np.exp),
        Kernel("gelu (erf)", [_t((r, 4096))], op.nn.gelu, lambda g: [_randn(r, 4096)(g)], _gelu),
        Kernel(
            "gelu (tanh)",
            [_t((r, 4096))],
            op.nn.gelu_tanh,
            lambda g: [_randn(r, 4096)(g)],
            lambda x: 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3))),
        ),
        Kernel(
            "sigmoid",
            [_t((r, 4096))],
            op.sigmoid,
            lambda g: [_randn(r, 4096)(g)],
            lambda x: 1 / (1 + np.exp(-x)),
        ),
        Kernel(
            "silu",
            [_t((r, 4096))],
            op.nn.silu,
            lambda g: [_randn(r, 4096)(g)],
            lambda x: x / (1 + np.exp(-x)),
        ),
        Kernel(
            "gelu, symbolic rows",
            [_t((batch, 4096))],
            op.nn.gelu,
            lambda g: [_randn(r, 4096)(g)],
            _gelu,
        ),
        Kernel(
            "NCHW reshape+permute+gelu",
            [_t((b4, 64, 128, 128))],
            lambda x: op.nn.gelu(op.permute_dims(op.reshape(x, (b4, 64, 128 * 128)), [0, 2, 1])),
            lambda g: [_randn(b4, 64, 128, 128)(g)],
            lambda x: _gelu(x.reshape(b4, 64, -1).transpose(0, 2, 1)),
        ),
        Kernel(
            "NCHW->NHWC",
            [_t((b4, 64, 128, 128))],
            lambda x: op.permute_dims(x, [0, 2, 3, 1]),
            lambda g: [_randn(b4, 64, 128, 128)(g)],
            lambda x: x.transpose(0, 2, 3, 1),
        ),
        Kernel(
            "NHWC->NCHW",
            [_t((b4, 128, 128, 64))],
            lambda x: op.permute_dims(x, [0, 3, 1, 2]),
            lambda g: [_randn(b4, 128, 128, 64)(g)],
            lambda x: x.transpose(0, 3, 1, 2),
        ),
        Kernel(
            "heads [B,S,H,D]->[B,H,S,D]",
            [_t((bs, 2048, 1024))],
            lambda x: op.permute_dims(op.reshape(x, (bs, 2048, 16, 64)), [0, 2, 1, 3]),
            lambda g: [_randn(bs, 2048, 1024)(g)],
            lambda x: x.reshape(bs, 2048, 16, 64).transpose(0, 2, 1, 3),
        ),
        Kernel(
            "softmax last axis",
            [_t((rows, 1024))],
            lambda x: op.nn.softmax(x, -1),
            lambda g: [_randn(rows, 1024)(g)],
            _softmax,
        ),
        Kernel(
            "layer_norm",
            [_t((rows, 1024)), _t((1024,)), _t((1024,))],
            lambda x, g, b: op.nn.layer_norm(x, g, b, [-1]),
            lambda g: [_randn(rows, 1024)(g), _randn(1024)(g), _randn(1024)(g)],
            _layer_norm,
        ),
        Kernel(
            "sum last axis",
            [_t((rows, 1024))],
            lambda x: op.sum(x, [-1]),
            lambda g: [_randn(rows, 1024)(g)],
            lambda x: x.sum(-1),
        ),
        Kernel(
            "max last axis",
            [_t((rows, 1024))],
            lambda x: op.max(x, [-1]),
            lambda g: [_randn(rows, 1024)(g)],
            lambda x: x.max(-1),
        ),
        Kernel(
            "sum axis 0",
            [_t((rows, 1024))],
            lambda x: op.sum(x, [0]),
            lambda g: [_randn(rows, 1024)(g)],
            lambda x: x.sum(0),
        ),
        Kernel(
            "mean axes 0,2,3 (NCHW)",
            [_t((b4, 64, 128, 128))],
            lambda x: op.mean(x, [0, 2, 3]),
            lambda g: [_randn(b4, 64, 128, 128)(g)],
            lambda x: x.mean((0, 2, 3)),
        ),
        Kernel(
            "take (embedding)",
            [_t((vocab, 1024)), _t((rows,), "int64")],
            lambda w, i: op.take(w, i, axis=0),
            ids,
            lambda w, i: w[i],
            moved=lambda ins, out: 2 * out.nbytes + ins[1].nbytes,
        ),
        Kernel(
            "concat last axis",
            [_t((r, 2048))] * 2,
            lambda a, b: op.concat([a, b], axis=1),
            lambda g: [_randn(r, 2048)(g), _randn(r, 2048)(g)],
            lambda a, b: np.concatenate([a, b], 1),
        ),
        Kernel(
            "strided slice rows ::2",
            [_t((2 * r, 4096))],
            lambda x: op.strided_slice(x, [0], [0], [2 * r], [2]),
            lambda g: [_randn(2 * r, 4096)(g)],
            lambda x: x[::2],
            moved=lambda ins, out: 2 * out.nbytes,
        ),
        Kernel(
            "strided slice cols ::2",
            [_t((r, 8192))],
            lambda x: op.strided_slice(x, [1], [0], [8192], [2]),
            lambda g: [_randn(r, 8192)(g)],
            lambda x: x[:, ::2],
            moved=lambda ins, out: ins[0].nbytes + out.nbytes,
        ),
    ]


def relax_module(kernel: Kernel) -> tvm.IRModule:
    bb = relax.BlockBuilder()
    params = [relax.Var(f"x{i}", t) for i, t in enumerate(kernel.params)]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(kernel.build(*params))
        bb.emit_func_output(out)
    return bb.get()


class Triad:
    """``a = b + s*c`` on ``n`` float32 as a perfectly scheduled TIR loop (parallel over
    blocks of 1024, vectorized 16 wide), timed on demand."""

    def __init__(self, n: int, target: tvm.target.Target) -> None:
        lanes, block = 16, 1024

        @T.prim_func
        def triad(a: T.handle, b: T.handle, c: T.handle, s: T.float32):
            A = T.match_buffer(a, (n,), "float32")
            B = T.match_buffer(b, (n,), "float32")
            C = T.match_buffer(c, (n,), "float32")
            for i in T.parallel(n // block):
                for j in T.serial(block // lanes):
                    for v in T.vectorized(lanes):
                        A[i * block + j * lanes + v] = (
                            B[i * block + j * lanes + v] + s * C[i * block + j * lanes + v]
                        )

        mod = tvm.IRModule({"triad": triad.with_attr("global_symbol", "triad")})
        lib = tvm.tirx.build(mod, target)
        rng = np.random.default_rng(0)
        dev = tvm.cpu()
        b, c = (tvm.runtime.tensor(rng.standard_normal(n, dtype=np.float32), dev) for _ in "bc")
        a = tvm.runtime.empty((n,), "float32", dev)
        lib["triad"](a, b, c, 3.0)
        np.testing.assert_allclose(a.numpy(), b.numpy() + 3 * c.numpy(), rtol=1e-5, atol=1e-5)
        self.bytes = 3 * n * 4
        self._args = (a, b, c, 3.0)
        self._timer = lib.time_evaluator("triad", dev, number=3, repeat=1)

    def seconds(self) -> float:
        return float(self._timer(*self._args).results[0])


def numpy_triad(n: int, repeat: int, chunk: int = 1 << 15) -> float:
    """Best bytes/s of ``a = b + s*c`` on ``n`` float32 with NumPy on ``THREADS``
    threads, in cache-sized chunks (the temporary ``s*c`` stays in cache)."""
    rng = np.random.default_rng(0)
    b, c = (aligned(rng.standard_normal(n, dtype=np.float32)) for _ in "bc")
    a = np.empty_like(b)

    def part(lo: int, hi: int) -> None:
        tmp = np.empty(chunk, np.float32)
        for i in range(lo, hi, chunk):
            j = min(hi, i + chunk)
            np.multiply(c[i:j], np.float32(3.0), out=tmp[: j - i])
            np.add(b[i:j], tmp[: j - i], out=a[i:j])

    def run() -> None:
        bounds = np.linspace(0, n, THREADS + 1).astype(int) // chunk * chunk
        bounds[-1] = n
        threads = [
            threading.Thread(target=part, args=(int(lo), int(hi)))
            for lo, hi in itertools.pairwise(bounds)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run()
    np.testing.assert_allclose(a, b + 3 * c, rtol=1e-5, atol=1e-5)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 3 * n * 4 / min(times)


def check(name: str, got: np.ndarray, want: np.ndarray) -> float:
    """Error relative to the largest |want|; raises above 1e-4 (the test suite's bound)."""
    want = np.asarray(want)
    scale = float(np.max(np.abs(want))) or 1.0
    err = float(np.max(np.abs(got.astype(np.float64) - want))) / scale
    if not err <= 1e-4:
        raise AssertionError(f"{name}: relative error {err:.3g}")
    return err


@dataclass(frozen=True)
class Timing:
    """Best seconds of a kernel and of the triad in rounds that alternate them."""

    kernel: float
    triad: float
    moved: int
    error: float


def time_kernel(
    kernel: Kernel, target: str, triad: Triad, rng: np.random.Generator, rounds: int
) -> Timing:
    """Compile ``kernel``, check it against NumPy, then time it and the triad in
    alternating rounds (3 runs each): the best of each, so that a machine shared with
    other work compares the two at the same moments."""
    module = tvmext.compile(relax_module(kernel), target)
    inputs = kernel.inputs(rng)
    out = module.run(*inputs)
    out = out[0] if isinstance(out, list | tuple) else out
    out = np.asarray(out.numpy() if hasattr(out, "numpy") else out)
    err = check(kernel.name, out, kernel.reference(*inputs))
    moved = (
        kernel.moved(inputs, out) if kernel.moved else sum(a.nbytes for a in inputs) + out.nbytes
    )
    kernel_times, triad_times = [], []
    for _ in range(rounds):
        triad_times.append(triad.seconds())
        kernel_times.append(module.benchmark(*inputs, repeat=1, number=3).median)
    return Timing(min(kernel_times), min(triad_times), moved, err)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="tensor size factor")
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds per kernel")
    parser.add_argument("--only", default="", help="run kernels whose name contains this")
    parser.add_argument("--target", default="llvm")
    args = parser.parse_args()

    host = tvmext.parse_target(args.target).host
    n_triad = 1 << 24
    triad = Triad(n_triad, host)
    triad_tvm = triad.bytes / min(triad.seconds() for _ in range(args.rounds))
    triad_np = numpy_triad(n_triad, args.rounds)
    print(f"host: {host}, threads: {THREADS}")
    print(
        f"triad a = b + s*c, 3 x {n_triad * 4 >> 20} MB: TVM TIR {triad_tvm / 1e9:.1f} GB/s, "
        f"NumPy {triad_np / 1e9:.1f} GB/s (best of {args.rounds}). Each kernel's fraction is "
        "of the larger: NumPy's, or TVM's in the rounds beside the kernel's.\n"
    )
    print("| kernel | MB moved | ms | GB/s | triad GB/s | of triad | rel. error |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for kernel in kernels(args.scale):
        if args.only and args.only not in kernel.name:
            continue
        t = time_kernel(kernel, args.target, triad, rng, args.rounds)
        rate = t.moved / t.kernel
        reference = max(triad.bytes / t.triad, triad_np)
        print(
            f"| {kernel.name} | {t.moved / 1e6:.0f} | {t.kernel * 1e3:.2f} | {rate / 1e9:.1f} | "
            f"{reference / 1e9:.1f} | {rate / reference:.2f} | {t.error:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

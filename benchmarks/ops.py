"""Shipped ops vs NumPy and PyTorch CPU, and vs the machine's memory bandwidth.

Run: .venv/bin/python benchmarks/ops.py [--size 4096]

For each op at a realistic size it prints the median time of the compiled op (eager
call: what a user gets, output allocation included), NumPy and PyTorch eager, the
ratios (>1 means tvmext is faster), and the bandwidth the op achieves as a fraction
of a STREAM-like triad (a = b + s*c, compiled and parallel) measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from tvm import te, tirx

sys.path.insert(0, os.path.dirname(__file__))
from timing import median_seconds

import tvmext
from tvmext.ops import moments, rms_norm, swish
from tvmext.runtime.zero_copy import aligned


@tvmext.op("bench.triad")
def triad(b: te.Tensor, c: te.Tensor, *, s: float = 3.0) -> te.Tensor:
    """STREAM triad: a = b + s * c."""
    return te.compute(b.shape, lambda i: b[i] + tirx.const(s, b.dtype) * c[i], name="triad")


def triad_bandwidth(n: int) -> float:
    """Bytes per second of the compiled, parallel triad on ``n`` float32 elements."""
    rng = np.random.default_rng(0)
    b = aligned(rng.standard_normal(n, dtype=np.float32))
    c = aligned(rng.standard_normal(n, dtype=np.float32))
    np.testing.assert_allclose(triad(b, c), b + 3 * c, rtol=1e-5, atol=1e-6)
    return 3 * n * 4 / median_seconds(lambda: triad(b, c))


def _outputs(value: object) -> list[np.ndarray]:
    return [np.asarray(v) for v in value] if isinstance(value, tuple) else [np.asarray(value)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="rows = cols of the input")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    import torch

    n = args.size
    rng = np.random.default_rng(0)
    x = aligned(rng.standard_normal((n, n), dtype=np.float32))
    w = aligned(rng.standard_normal(n, dtype=np.float32))
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    bandwidth = triad_bandwidth(n * n)
    print(f"host: {tvmext.parse_target('llvm').host}, threads: torch {torch.get_num_threads()}")
    print(f"STREAM-like triad (compiled, parallel): {bandwidth / 1e9:.1f} GB/s\n")

    cases = [
        (
            f"swish {n}x{n} fp32",
            lambda: swish(x),
            lambda: x / (1 + np.exp(-x)),
            lambda: torch.nn.functional.silu(xt),
            2 * x.nbytes,
        ),
        (
            f"rms_norm {n}x{n} fp32",
            lambda: rms_norm(x, w, eps=1e-6),
            lambda: x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6) * w,
            lambda: torch.nn.functional.rms_norm(xt, (n,), wt, eps=1e-6),
            2 * x.nbytes,
        ),
        (
            f"moments {n}x{n} fp32",
            lambda: moments(x),
            lambda: (x.mean(-1), x.var(-1)),
            lambda: torch.var_mean(xt, dim=-1, correction=0),
            x.nbytes,
        ),
    ]
    header = f"{'op':24} {'tvmext ms':>10} {'numpy ms':>10} {'torch ms':>10} "
    header += f"{'vs numpy':>9} {'vs torch':>9} {'GB/s':>7} {'of triad':>9}"
    print(header)
    for name, ours, ref_np, ref_torch, nbytes in cases:
        for a, b in zip(_outputs(ours()), _outputs(ref_np()), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
        t_ours = median_seconds(ours, args.repeat)
        t_np = median_seconds(ref_np, max(3, args.repeat // 4))
        t_torch = median_seconds(ref_torch, args.repeat)
        achieved = nbytes / t_ours
        print(
            f"{name:24} {t_ours * 1e3:10.2f} {t_np * 1e3:10.2f} {t_torch * 1e3:10.2f} "
            f"{t_np / t_ours:8.2f}x {t_torch / t_ours:8.2f}x {achieved / 1e9:7.1f} "
            f"{achieved / bandwidth:8.0%}"
        )

    small = rng.standard_normal((1, 8), dtype=np.float32)
    swish(small)
    overhead = median_seconds(lambda: swish(small), repeat=2000)
    print(
        f"\neager call of a cached op on a 1x8 input: {overhead * 1e6:.1f} us "
        f"(upper bound of the per-call overhead)"
    )


if __name__ == "__main__":
    main()

"""The zoo from PyTorch: tvmext through ``torch.export`` against tvmext through ONNX,
PyTorch eager and ``torch.compile`` (inductor, CPU), in one run.

Run: .venv/bin/python benchmarks/torch_models.py [--models bert,resnet] [--threads 2]
     [--repeat 10] [--rounds 3] [--target "dnnl, llvm"]

For each ``transformers`` model of ``tests/model_zoo.py`` at its published size, the
same module (random, well-scaled weights) is compiled by tvmext from
``torch.export`` (``tvmext.compile(module, example_inputs=...)``) and from its
``torch.onnx`` export, both for ``--target`` (default: tvmext's default target),
and run by PyTorch eager and by ``torch.compile`` with inductor. Every output is
checked against eager PyTorch's first. Runtimes are timed in interleaved rounds after
the previous one's threads settled; the time is the median of the round medians.
Printed: median ms, then onnx/export (the ONNX artifact's time over the
``torch.export`` one's: 1.0 is the same speed), inductor/export and eager/export (above
1: tvmext from ``torch.export`` is faster), and per family the geometric means.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from model_zoo import MODELS, export, torch_model
from real_models import family, geomean, timed

RUNTIMES = ("export", "onnx", "eager", "inductor")
TOLERANCE = 1e-3  # max |error| / max |eager output|


def runners(name: str, folder: str, target: str | None) -> tuple[dict[str, Callable[[], Any]], Any]:
    """A call per runtime for model ``name`` at its published size, and eager's output."""
    import torch

    import tvmext

    module, inputs = torch_model(name, full=True)
    tensors = tuple(torch.from_numpy(v) for v in inputs.values())
    arrays = list(inputs.values())
    from_export = tvmext.compile(module, target, example_inputs=tensors)
    path, _, _ = export(name, folder, full=True)
    from_onnx = tvmext.compile(path, target)
    inductor = torch.compile(module, backend="inductor")

    def eager() -> np.ndarray:
        with torch.no_grad():
            return module(*tensors).numpy()

    def compiled() -> np.ndarray:
        with torch.no_grad():
            return inductor(*tensors).numpy()

    calls = {
        "export": lambda: from_export.run(*arrays)[0],
        "onnx": lambda: from_onnx.run(*arrays)[0],
        "eager": eager,
        "inductor": compiled,
    }
    return calls, eager()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", default=None, help="tvmext's target (default: its default)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TVM_NUM_THREADS", str(args.threads))
    folder = tempfile.mkdtemp(prefix="tvmext_torch_")
    ratios = ("onnx", "inductor", "eager")
    print(f"{args.threads} threads; median ms; x/export: x's time / tvmext-from-torch.export's")
    print(f"{'model':13}" + "".join(f"{r:>11}" for r in RUNTIMES)
          + "".join(f"{r + '/export':>16}" for r in ratios) + f"{'compile s':>11}")  # fmt: skip
    rows: dict[str, dict[str, float]] = {}
    for name in args.models.split(","):
        start = time.perf_counter()
        try:
            calls, want = runners(name, folder, args.target)
            errors = {r: _error(np.asarray(c()), want) for r, c in calls.items()}
        except Exception as err:  # one model's failure is a row, not the end of the run
            print(f"{name:13}failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            continue
        seconds = time.perf_counter() - start
        wrong = [f"{r} ({e:.1e})" for r, e in errors.items() if not e <= TOLERANCE]
        if wrong:
            print(f"{name:13}differs from PyTorch eager: {', '.join(wrong)}", flush=True)
            continue
        times = timed(calls, args.repeat, args.rounds)
        rows[name] = {r: times[r] / times["export"] for r in ratios}
        print(f"{name:13}" + "".join(f"{times[r] * 1e3:11.2f}" for r in RUNTIMES)
              + "".join(f"{rows[name][r]:16.2f}" for r in ratios) + f"{seconds:11.0f}",
              flush=True)  # fmt: skip
    print()
    print(f"{'family':24}{'models':>7}" + "".join(f"{r + '/export':>16}" for r in ratios))
    groups: dict[str, list[str]] = {}
    for name in rows:
        groups.setdefault(family(name), []).append(name)
    groups["overall"] = list(rows)
    for group, names in groups.items():
        means = [geomean([rows[n][r] for n in names]) or 0.0 for r in ratios]
        print(f"{group:24}{len(names):7}" + "".join(f"{m:16.2f}" for m in means))


def _error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-6))


if __name__ == "__main__":
    main()

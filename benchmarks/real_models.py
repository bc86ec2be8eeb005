"""Real architectures at realistic sizes: tvmext against ONNX Runtime, PyTorch eager
and OpenVINO, in one run.

Run: .venv/bin/python benchmarks/real_models.py [--models resnet,vit] [--threads 2]
     [--repeat 10] [--rounds 3]
     (OpenVINO is a benchmark-only dependency: pip install -e '.[bench]')

For each ``transformers`` model of ``tests/model_zoo.py`` at its published size
(``full=True``: 224² images; BERT 2×128, GPT-2 1×128 tokens) it exports the ONNX file
and times, with the same thread count: tvmext ``"dnnl, llvm"`` and ``"llvm"``, ONNX
Runtime, PyTorch eager (the module the ONNX file was exported from) and OpenVINO with
``INFERENCE_PRECISION_HINT: f32`` (its default on CPUs with AMX or AVX512-BF16 is bf16,
a different accuracy contract). Each runtime's output is checked against ONNX
Runtime's first. Runtimes are timed in interleaved rounds, each after the previous
one's threads settled; a runtime's time is the median of its round medians. Ratios are
ORT time / runtime time (above 1: faster than ONNX Runtime), with their geometric mean.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from model_zoo import MODELS, export, torch_model
from timing import median_seconds, settle

RUNTIMES = ("dnnl, llvm", "llvm", "ORT", "torch", "OpenVINO")
ROUND_SECONDS = 2.0  # a slow runtime (plain llvm convolutions) gets fewer repeats
TOLERANCE = 1e-3  # max |error| / max |ORT output|


def runners(name: str, folder: str, threads: int) -> tuple[dict[str, Callable[[], Any]], Any]:
    """A call per runtime for model ``name``, and ONNX Runtime's output."""
    import onnxruntime as ort
    import openvino as ov
    import torch

    import tvmext

    path, inputs, _ = export(name, folder, full=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    dnnl = tvmext.compile(path, "dnnl, llvm")
    tvm_only = tvmext.compile(path, "llvm")
    module, _ = torch_model(name, full=True)
    tensors = tuple(torch.from_numpy(v) for v in inputs.values())
    compiled = ov.Core().compile_model(path, "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
    })  # fmt: skip
    request = compiled.create_infer_request()

    def eager() -> np.ndarray:
        with torch.no_grad():
            return module(*tensors).numpy()

    calls: dict[str, Callable[[], Any]] = {
        "dnnl, llvm": lambda: dnnl.run(**inputs)[0],
        "llvm": lambda: tvm_only.run(**inputs)[0],
        "ORT": lambda: session.run(None, inputs)[0],
        "torch": eager,
        "OpenVINO": lambda: request.infer(inputs)[0],
    }
    return calls, calls["ORT"]()


def check(name: str, calls: dict[str, Callable[[], Any]], want: np.ndarray) -> None:
    """Every runtime's output against ONNX Runtime's (relative to its largest value)."""
    for runtime, call in calls.items():
        error = float(np.max(np.abs(np.asarray(call()) - want)) / np.max(np.abs(want)))
        if error > TOLERANCE:
            raise SystemExit(f"{name}: {runtime} differs from ONNX Runtime by {error:.1e}")


def timed(calls: dict[str, Callable[[], Any]], repeat: int, rounds: int) -> dict[str, float]:
    """Median seconds per runtime over interleaved rounds."""
    repeats = {}
    for runtime, call in calls.items():
        start = time.perf_counter()
        call()
        once = time.perf_counter() - start
        repeats[runtime] = max(3, min(repeat, int(ROUND_SECONDS / max(once, 1e-6))))
    medians: dict[str, list[float]] = {runtime: [] for runtime in calls}
    for _ in range(rounds):
        for runtime, call in calls.items():
            settle()
            medians[runtime].append(median_seconds(call, repeats[runtime]))
    return {runtime: statistics.median(values) for runtime, values in medians.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    folder = tempfile.mkdtemp(prefix="tvmext_real_")
    print(f"{args.threads} threads; median ms; ORT/x: ORT time / x's time (> 1: faster than ORT)")
    print(f"{'model':13}" + "".join(f"{r:>11}" for r in RUNTIMES)
          + "".join(f"{'ORT/' + r.split(',')[0]:>11}" for r in RUNTIMES if r != "ORT"))  # fmt: skip
    ratios: dict[str, list[float]] = {r: [] for r in RUNTIMES if r != "ORT"}
    for name in args.models.split(","):
        calls, want = runners(name, folder, args.threads)
        check(name, calls, want)
        times = timed(calls, args.repeat, args.rounds)
        for runtime in ratios:
            ratios[runtime].append(times["ORT"] / times[runtime])
        print(f"{name:13}" + "".join(f"{times[r] * 1e3:11.2f}" for r in RUNTIMES)
              + "".join(f"{ratios[r][-1]:11.2f}" for r in ratios), flush=True)  # fmt: skip
    geomean = {r: math.exp(statistics.fmean(map(math.log, v))) for r, v in ratios.items()}
    print(f"{'geomean':13}" + " " * 11 * len(RUNTIMES)
          + "".join(f"{geomean[r]:11.2f}" for r in ratios))  # fmt: skip


if __name__ == "__main__":
    main()

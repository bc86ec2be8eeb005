"""Real architectures at realistic sizes: tvmext against ONNX Runtime, PyTorch eager
and OpenVINO, in one run.

Run: .venv/bin/python benchmarks/real_models.py [--models resnet,vit] [--threads 2]
     [--repeat 10] [--rounds 3] [--runtimes dnnl,llvm,ORT,torch,OpenVINO]
     (OpenVINO is a benchmark-only dependency: pip install -e '.[bench]')

For each ``transformers`` model of ``tests/model_zoo.py`` at its published size
(``full=True``: 224² images; BERT 2×128, GPT-2 1×128 tokens), and for two small models
of our own shapes (a 2-block residual CNN at 64×56², an MLP 64×512→1024→64), it exports
the ONNX file and times, with the same thread count: tvmext ``"dnnl, llvm"`` and ``"llvm"``, ONNX
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
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from model_zoo import MODELS, export, torch_model
from timing import median_seconds, settle

RUNTIMES = ("dnnl", "llvm", "ORT", "torch", "OpenVINO")  # dnnl: tvmext "dnnl, llvm"
ROUND_SECONDS = 2.0  # a slow runtime (plain llvm convolutions) gets fewer repeats
TOLERANCE = 1e-3  # max |error| / max |ORT output|


def _small_cnn() -> tuple[Any, dict[str, np.ndarray]]:
    """Two residual blocks (conv 3×3, batch norm, ReLU) at 64×56×56, batch 1."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.body(x))

    model = nn.Sequential(Block(), Block())
    x = np.random.default_rng(0).standard_normal((1, 64, 56, 56), dtype=np.float32)
    return model.eval(), {"x": x}


def _small_mlp() -> tuple[Any, dict[str, np.ndarray]]:
    """512 → 1024 → 64 with ReLU, batch 64."""
    from torch import nn

    model = nn.Sequential(nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 64))
    x = np.random.default_rng(0).standard_normal((64, 512), dtype=np.float32)
    return model.eval(), {"x": x}


# Our own shapes, small enough that the fixed cost per oneDNN call shows.
SMALL = {"cnn56": _small_cnn, "mlp64": _small_mlp}


def model(name: str, folder: str) -> tuple[str, dict[str, np.ndarray], Any]:
    """(ONNX path, inputs, PyTorch module) of a zoo model at full size or a small one."""
    import torch

    if name in MODELS:
        path, inputs, _ = export(name, folder, full=True)
        return path, inputs, torch_model(name, full=True)[0]
    module, inputs = SMALL[name]()
    path = os.path.join(folder, f"{name}.onnx")
    args = tuple(torch.from_numpy(v) for v in inputs.values())
    with torch.no_grad():
        torch.onnx.export(module, args, path, input_names=list(inputs), dynamo=False)
    return path, inputs, module


def runners(
    name: str, folder: str, threads: int, wanted: Sequence[str]
) -> tuple[dict[str, Callable[[], Any]], Any]:
    """A call per runtime of ``wanted`` (ORT always) for model ``name``, and ONNX
    Runtime's output."""
    import onnxruntime as ort

    import tvmext

    path, inputs, module = model(name, folder)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    calls: dict[str, Callable[[], Any]] = {"ORT": lambda: session.run(None, inputs)[0]}
    for runtime, target in (("dnnl", "dnnl, llvm"), ("llvm", "llvm")):
        if runtime in wanted:
            compiled = tvmext.compile(path, target)
            calls[runtime] = lambda m=compiled: m.run(**inputs)[0]
    if "torch" in wanted:
        import torch

        tensors = tuple(torch.from_numpy(v) for v in inputs.values())

        def eager() -> np.ndarray:
            with torch.no_grad():
                return module(*tensors).numpy()

        calls["torch"] = eager
    if "OpenVINO" in wanted:
        openvino = _openvino(name, path, threads)
        if openvino is not None:
            calls["OpenVINO"] = lambda: openvino.infer(inputs)[0]
    return {r: calls[r] for r in RUNTIMES if r in calls}, calls["ORT"]()


def _openvino(name: str, path: str, threads: int) -> Any:
    """An OpenVINO infer request at fp32, or None (said why) when it rejects the model."""
    import openvino as ov

    try:
        compiled = ov.Core().compile_model(path, "CPU", {
            "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False,
        })  # fmt: skip
    except RuntimeError as err:  # OpenVINO's ONNX frontend rejects some valid models
        reason = next((line for line in str(err).splitlines() if "While validating" in line), "")
        print(f"{name}: OpenVINO cannot compile it: {reason[:200]}", flush=True)
        return None
    return compiled.create_infer_request()


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
    parser.add_argument("--models", default=",".join([*MODELS, *SMALL]))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="dnnl: tvmext 'dnnl, llvm'")
    args = parser.parse_args()
    wanted = args.runtimes.split(",")
    if "torch" in wanted:
        import torch

        torch.set_num_threads(args.threads)
    folder = tempfile.mkdtemp(prefix="tvmext_real_")
    print(f"{args.threads} threads; median ms; ORT/x: ORT time / x's time (> 1: faster than ORT)")
    print(f"{'model':13}" + "".join(f"{r:>11}" for r in RUNTIMES)
          + "".join(f"{'ORT/' + r:>13}" for r in RUNTIMES if r != "ORT"))  # fmt: skip
    peers = [r for r in RUNTIMES if r != "ORT"]
    ratios: dict[str, dict[str, list[float]]] = {"zoo": {}, "small": {}}
    for name in args.models.split(","):
        calls, want = runners(name, folder, args.threads, wanted)
        check(name, calls, want)
        times = timed(calls, args.repeat, args.rounds)
        group = ratios["zoo" if name in MODELS else "small"]
        row = {r: times["ORT"] / times[r] for r in peers if r in times}
        for runtime, ratio in row.items():
            group.setdefault(runtime, []).append(ratio)
        print(f"{name:13}" + "".join(_cell(times.get(r), 1e3, 11) for r in RUNTIMES)
              + "".join(_cell(row.get(r), 1, 13) for r in peers), flush=True)  # fmt: skip
    for group, by_runtime in ratios.items():
        if by_runtime:
            geomean = {
                r: math.exp(statistics.fmean(map(math.log, v))) for r, v in by_runtime.items()
            }
            print(f"{'geomean ' + group:13}" + " " * 11 * len(RUNTIMES)
                  + "".join(_cell(geomean.get(r), 1, 13) for r in peers))  # fmt: skip


def _cell(value: float | None, scale: float, width: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value * scale:{width}.2f}"


if __name__ == "__main__":
    main()

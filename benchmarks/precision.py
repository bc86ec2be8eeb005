"""Reduced precision on real architectures: tvmext fp32 and bf16 against OpenVINO's
default (bf16 on CPUs with AMX or AVX512-BF16) and f32, and ONNX Runtime fp32, in one
run, with each runtime's error against PyTorch fp32.

Run: .venv/bin/python benchmarks/precision.py [--models resnet,vit,bert] [--threads 2]
     [--repeat 10] [--rounds 3]
     (OpenVINO is a benchmark-only dependency: pip install -e '.[bench]')

Models are those of ``tests/model_zoo.py`` at their published sizes (see
``benchmarks/real_models.py``). The error of a runtime is max |output - PyTorch's| /
max |PyTorch's| on the first output. Ratios are ORT fp32 time / runtime time (above 1:
faster than ONNX Runtime in fp32); the last line is their geometric mean. tvmext bf16
needs a CPU with AVX512-BF16 (or AMX): elsewhere the compile refuses and the column is
left out.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from real_models import geomean, model, timed

RUNTIMES = ("ORT", "tvmext", "tvmext-bf16", "OV-f32", "OV-default")
DEFAULT_MODELS = "resnet,mobilenet_v2,convnext,vit,deit,swin,bert,distilbert,llama,whisper"


def _openvino(path: str, threads: int, precision: str | None) -> Any:
    """An OpenVINO infer request (``precision`` None: OpenVINO's default), or None."""
    import openvino as ov

    config: dict[str, Any] = {
        "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
        "ENABLE_CPU_PINNING": False,
    }  # fmt: skip
    if precision is not None:
        config["INFERENCE_PRECISION_HINT"] = precision
    try:
        return ov.Core().compile_model(path, "CPU", config).create_infer_request()
    except RuntimeError as err:  # OpenVINO's ONNX frontend rejects some valid models
        print(f"{path}: OpenVINO cannot compile it: {str(err).splitlines()[0][:200]}")
        return None


def runners(name: str, folder: str, threads: int) -> tuple[dict[str, Callable[[], Any]], Any]:
    """A call per runtime for model ``name``, and PyTorch's fp32 output."""
    import onnxruntime as ort
    import torch

    import tvmext
    from tvmext.errors import CompileError

    path, inputs, module = model(name, folder)
    with torch.no_grad():
        want = module(*(torch.from_numpy(v) for v in inputs.values()))
    want = (want if isinstance(want, torch.Tensor) else want[0]).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    calls: dict[str, Callable[[], Any]] = {"ORT": lambda: session.run(None, inputs)[0]}
    fp32 = tvmext.compile(path, "dnnl, llvm")
    calls["tvmext"] = lambda: fp32.run(**inputs)[0]
    try:
        bf16 = tvmext.compile(path, "dnnl, llvm", precision="bf16", calibration_inputs=None)
        calls["tvmext-bf16"] = lambda: bf16.run(**inputs)[0]
    except CompileError as err:
        print(f"{name}: no tvmext bf16: {err}")
    for runtime, precision in (("OV-f32", "f32"), ("OV-default", None)):
        request = _openvino(path, threads, precision)
        if request is not None:
            calls[runtime] = lambda r=request: r.infer(inputs)[0]
    return calls, want


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    folder = tempfile.mkdtemp(prefix="tvmext_precision_")
    print(f"{args.threads} threads; ORT/x: ORT fp32 time / x's time; err: vs PyTorch fp32")
    print(f"{'model':13}" + "".join(f"{'ORT/' + r:>17}{'err':>9}" for r in RUNTIMES[1:])
          + f"{'ORT ms':>9}{'ORT err':>9}")  # fmt: skip
    ratios: dict[str, list[float]] = {r: [] for r in RUNTIMES}
    for name in args.models.split(","):
        calls, want = runners(name, folder, args.threads)
        scale = float(np.max(np.abs(want)))
        errors = {
            r: float(np.max(np.abs(np.asarray(c()) - want))) / scale for r, c in calls.items()
        }
        times = timed(calls, args.repeat, args.rounds)
        line = f"{name:13}"
        for runtime in RUNTIMES[1:]:
            if runtime in times:
                ratio = times["ORT"] / times[runtime]
                ratios[runtime].append(ratio)
                line += f"{ratio:>17.2f}{errors[runtime]:>9.1e}"
            else:
                line += f"{'-':>17}{'-':>9}"
        print(line + f"{times['ORT'] * 1e3:>9.2f}{errors['ORT']:>9.1e}", flush=True)
    means = [geomean(ratios[r]) for r in RUNTIMES[1:]]
    print(f"{'geomean':13}" + "".join(f"{m:>17.2f}{'':>9}" if m else f"{'-':>26}" for m in means))


if __name__ == "__main__":
    main()

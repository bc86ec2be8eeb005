"""Real architectures at their published sizes: compile time, error and speed against
ONNX Runtime, on both CPU targets, in one run.

Run: .venv/bin/python benchmarks/model_zoo.py [--models resnet,vit] [--repeat 10]
     [--verify-schedules] [--profile MODEL]

For each ``transformers`` model of ``tests/model_zoo.py`` (``full=True``: ResNet-50,
MobileNetV2, EfficientNet-B0, ConvNeXt-T, a 6-layer ViT, a 4-layer BERT, a 4-layer
GPT-2) it exports the ONNX file, compiles it with ``tvmext.compile`` for ``"llvm"`` and
``"dnnl, llvm"`` (each compile in the same process, timed), checks the output against
ONNX Runtime's, and prints the median latency of ``Module.run`` and of ONNX Runtime
(same thread count) and their ratio (ORT time / tvmext time: above 1 is faster than
ORT). ``--profile MODEL`` also prints the per-kernel profile of that model.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from model_zoo import MODELS, export
from timing import median_seconds, settle

import tvmext

TARGETS = ("llvm", "dnnl, llvm")


def bench(name: str, folder: str, args: argparse.Namespace) -> float:
    """Print one line per target for model ``name``; returns the slowest compile."""
    path, inputs, _ = export(name, folder, full=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(path, options)
    want = session.run(None, inputs)[0]
    ort_time = median_seconds(lambda: session.run(None, inputs), args.repeat)
    slowest = 0.0
    for target in TARGETS:
        settle()
        start = time.perf_counter()
        module = tvmext.compile(path, target, verify_schedules=args.verify_schedules)
        seconds = time.perf_counter() - start
        slowest = max(slowest, seconds)
        got = module.run(**inputs)[0]
        error = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
        tvm_time = median_seconds(lambda m=module: m.run(**inputs), args.repeat)
        print(f"{name:14} {target:11} {seconds:7.1f}s {error:10.1e} "
              f"{tvm_time * 1e3:8.2f}ms {ort_time * 1e3:8.2f}ms "
              f"{ort_time / tvm_time:10.2f}", flush=True)  # fmt: skip
        if name == args.profile:
            print(module.profile(**inputs, repeat=args.repeat))
    return slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--verify-schedules", action="store_true")
    parser.add_argument("--profile", default=None, metavar="MODEL")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="tvmext_zoo_")
    print(f"{'model':14} {'target':11} {'compile':>8} {'rel. error':>10} "
          f"{'tvmext':>10} {'ORT':>10} {'ORT/tvmext':>10}")  # fmt: skip
    slowest = max(bench(name, folder, args) for name in args.models.split(","))
    print(f"slowest compile: {slowest:.1f} s")


if __name__ == "__main__":
    main()

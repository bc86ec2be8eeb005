"""Quantized (QDQ) zoo models: tvmext on both CPU targets against ONNX Runtime's int8
kernels, in one run.

Run: .venv/bin/python benchmarks/qdq.py [--models resnet,bert] [--repeat 10]
[--targets "dnnl, llvm;llvm"]

Each model of ``tests/model_zoo.py`` at its published size (ResNet-50, a 4-layer BERT)
is quantized by ``onnxruntime.quantization.quantize_static`` (``tests/qdq_models.py``:
QDQ format, int8 weights per tensor or per channel, uint8 or int8 activations). For
each configuration and target it prints the compile time, the largest difference from
ONNX Runtime's output in quantization steps (``steps``) and from the model's definition
(``def``: ONNX Runtime with its graph optimizations off, each DequantizeLinear, float op
and QuantizeLinear as written), the median latency of ``Module.run`` and
of ONNX Runtime on the same quantized model (same thread count), their ratio (ORT time
/ tvmext time: above 1 is faster than ORT), and the share of the model's FLOPs that
ran on oneDNN (``Module.reports``). On a CPU without VNNI, ONNX Runtime's int8 kernels
saturate (``steps`` of 3 and more are its error: compare ``def``), and tvmext's dnnl
target runs the model's float products on oneDNN's f32 kernels instead of int8 ones.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from qdq_models import output_step, quantized
from timing import median_seconds, settle

import tvmext

# oneDNN first: TVM's thread pool keeps the spin setting of the first artifact that
# starts it, and an artifact that calls oneDNN needs idle TVM workers to sleep (see
# target/dnnl/README.md); started by the llvm artifact first, the pool's spinning
# workers took the oneDNN threads' cores and made BERT's "dnnl, llvm" run 7x slower.
TARGETS = ("dnnl, llvm", "llvm")
CONFIGS = ((False, "uint8"), (True, "int8"))


def _on_onednn(module: tvmext.Module) -> str:
    """The share of the model's FLOPs that ran on oneDNN."""
    if not module.reports:
        return "-"
    return f"{100 * module.reports[0].offloaded_fraction():.0f}%"


def bench(name: str, folder: str, args: argparse.Namespace) -> None:
    """Print one line per configuration and target for model ``name``."""
    for per_channel, activations in CONFIGS:
        path, inputs = quantized(
            name, folder, per_channel=per_channel, activations=activations, full=True
        )
        step = output_step(onnx.load(path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        want = session.run(None, inputs)[0]
        options_unfused = ort.SessionOptions()
        options_unfused.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        defined = ort.InferenceSession(
            path, options_unfused, providers=["CPUExecutionProvider"]
        ).run(None, inputs)[0]
        ort_time = median_seconds(lambda s=session, x=inputs: s.run(None, x), args.repeat)
        config = f"{'per-channel' if per_channel else 'per-tensor'} {activations}"
        for target in args.targets.split(";"):
            settle()
            start = time.perf_counter()
            module = tvmext.compile(path, target)
            seconds = time.perf_counter() - start
            got = module.run(**inputs)[0]
            steps = float(np.max(np.abs(got - want))) / step
            from_definition = float(np.max(np.abs(got - defined))) / step
            tvm_time = median_seconds(lambda m=module, x=inputs: m.run(**x), args.repeat)
            print(f"{name:8} {config:17} {target:11} {seconds:7.1f}s {steps:6.2f} "
                  f"{from_definition:6.2f} "
                  f"{tvm_time * 1e3:8.2f}ms {ort_time * 1e3:8.2f}ms "
                  f"{ort_time / tvm_time:10.2f} {_on_onednn(module):>8}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet,bert")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--targets", default=";".join(TARGETS), help="';'-separated")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="tvmext_qdq_")
    print(f"{'model':8} {'quantization':17} {'target':11} {'compile':>8} {'steps':>6} "
          f"{'def':>6} {'tvmext':>10} {'ORT':>10} {'ORT/tvmext':>10} {'oneDNN':>8}")  # fmt: skip
    for name in args.models.split(","):
        bench(name, folder, args)


if __name__ == "__main__":
    main()

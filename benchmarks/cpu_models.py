"""CPU models: tvmext with oneDNN vs TVM's lowering, ONNX Runtime and PyTorch eager.

Run: .venv/bin/python benchmarks/cpu_models.py [--threads 2] [--repeat 30]

For a ResNet-style CNN, an MLP and a transformer encoder block (fp32, real ONNX
files built in tests/onnx_cpu_models.py) it prints the median latency of tvmext with
``"dnnl, llvm"``, tvmext with ``"llvm"`` (TVM lowering with tvmext's schedules, no
oneDNN), stock TVM (``tvm.compile(mod, "llvm")``: TVM's default pipeline and plain
``llvm``), ONNX Runtime and PyTorch eager, all with the same thread count; it checks
that the outputs agree and prints each peer's time divided by tvmext-with-oneDNN's
time (> 1 means tvmext with oneDNN is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from onnx_cpu_models import mlp, resnet_cnn, transformer_encoder
from onnx_torch_eager import TorchEager
from timing import median_seconds, settle

ROUNDS = 3
MODELS = {
    "resnet_cnn 1x3x112x112 w32": lambda: resnet_cnn(batch=1, size=112, width=32),
    "mlp 64x784-1024-1024-10": lambda: mlp(batch=64, d_in=784, d_hidden=1024),
    "encoder 4x128x256 h4 ff1024": lambda: transformer_encoder(
        batch=4, seq=128, d_model=256, heads=4, d_ff=1024
    ),
}


def stock_tvm(model: onnx.ModelProto) -> Callable[[np.ndarray], np.ndarray]:
    """The model compiled by stock TVM: its ONNX frontend, default pipeline, plain llvm."""
    import tvm
    from tvm import relax

    from tvmext.onnx.importer import from_onnx

    mod = relax.transform.DecomposeOpsForInference()(from_onnx(model, {}, {}))
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    return lambda x: vm["main"](tvm.runtime.tensor(x)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    import onnxruntime as ort
    import torch

    import tvmext

    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    print(f"host {tvmext.parse_target('llvm').host}; {args.threads} threads for every runtime")
    print(
        f"{'model':28} {'dnnl,llvm':>9} {'llvm':>9} {'stockTVM':>9} {'ORT':>9} {'torch':>9}  "
        f"{'ORT/':>6} {'llvm/':>6} {'stock/':>7} {'torch/':>7}  (median ms; ratios / dnnl)"
    )
    for name, build in MODELS.items():
        times = measure(build(), options, args.repeat)
        ms = {k: v * 1e3 for k, v in times.items()}
        ratio = {k: v / times["dnnl"] for k, v in times.items()}
        print(
            f"{name:28} {ms['dnnl']:9.3f} {ms['llvm']:9.3f} {ms['stock']:9.2f} {ms['ort']:9.3f} "
            f"{ms['torch']:9.3f}  {ratio['ort']:6.2f} {ratio['llvm']:6.2f} {ratio['stock']:7.1f} "
            f"{ratio['torch']:7.2f}"
        )


def measure(model: onnx.ModelProto, options: Any, repeat: int) -> dict[str, float]:
    """Median seconds of each runtime on ``model``, after checking their outputs agree."""
    import onnxruntime as ort

    import tvmext
    from tvmext.runtime.zero_copy import aligned

    dnnl = tvmext.compile(model, "dnnl, llvm")
    tvm_only = tvmext.compile(model, "llvm")
    stock = stock_tvm(model)
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    eager = TorchEager(model)
    # 64-byte aligned, as a serving loop would keep its input buffer: TVM then takes it
    # in place, as ONNX Runtime takes any NumPy array (tvmext.runtime.zero_copy).
    x = aligned(np.random.default_rng(0).standard_normal(dnnl.inputs[0].shape).astype(np.float32))
    reference = session.run(None, {"x": x})[0]
    outputs = {
        "dnnl": dnnl(x)[0],
        "llvm": tvm_only(x)[0],
        "stock": stock(x),
        "torch": eager(x=x)[0],
    }
    for label, out in outputs.items():
        np.testing.assert_allclose(out, reference, rtol=1e-3, atol=1e-4, err_msg=label)
    runs: dict[str, Callable[[], Any]] = {
        "dnnl": lambda: dnnl(x),
        "llvm": lambda: tvm_only(x),
        "ort": lambda: session.run(None, {"x": x}),
        "torch": lambda: eager(x=x),
    }
    # Interleaved rounds, each after the previous runtime's threads settled.
    rounds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            settle()
            rounds[name].append(median_seconds(run, repeat=max(3, repeat // ROUNDS)))
    times = {name: statistics.median(values) for name, values in rounds.items()}
    times["stock"] = median_seconds(lambda: stock(x), repeat=3, warmup=1)
    return times


if __name__ == "__main__":
    main()

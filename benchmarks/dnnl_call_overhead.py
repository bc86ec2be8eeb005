"""Fixed cost per oneDNN call: chains of tiny layers, tvmext ``"dnnl, llvm"`` vs ``"llvm"``
vs ONNX Runtime.

Run: .venv/bin/python benchmarks/dnnl_call_overhead.py [--threads 2]

Each model is a chain of L layers ``relu(x @ W + b)`` on a 1x16 input, so the arithmetic
is negligible and the time per layer is the runtime's fixed cost per op. The slope of
the median latency over L (least squares over L = 1, 4, 16, 32) is printed per runtime:
with oneDNN it is the cost of one primitive execution (the PyPI oneDNN runs its CPU
engine through SYCL), which bounds how close many small ops (a batch-1 CNN's pooling,
1x1 convolutions, the classifier) can come to ONNX Runtime's MLAS kernels.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from timing import median_seconds

WIDTH = 16
LAYERS = (1, 4, 16, 32)


def chain(layers: int) -> onnx.ModelProto:
    """``layers`` x (MatMul, Add, Relu) on a 1x16 input."""
    rng = np.random.default_rng(0)
    nodes, weights, x = [], [], "x"
    for i in range(layers):
        w = (rng.standard_normal((WIDTH, WIDTH)) / 4).astype(np.float32)
        b = (rng.standard_normal(WIDTH) * 0.1).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [
            helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
            helper.make_node("Relu", [f"a{i}"], [f"y{i}"]),
        ]
        x = f"y{i}"
    graph = helper.make_graph(
        nodes,
        f"chain{layers}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, WIDTH])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, WIDTH])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    import onnxruntime as ort

    import tvmext

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    x = np.random.default_rng(1).standard_normal((1, WIDTH)).astype(np.float32)
    times: dict[str, list[float]] = {"dnnl, llvm": [], "llvm": [], "ORT": []}
    for layers in LAYERS:
        model = chain(layers)
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        expected = session.run(None, {"x": x})[0]
        runs = {"ORT": lambda s=session: s.run(None, {"x": x})}
        for target in ("dnnl, llvm", "llvm"):
            module = tvmext.compile(model, target)
            np.testing.assert_allclose(module(x)[0], expected, rtol=1e-5, atol=1e-6)
            runs[target] = lambda m=module: m(x)
        for name, run in runs.items():
            times[name].append(median_seconds(run, repeat=300, warmup=20))
    print(f"{args.threads} threads; median us per call for L layers of relu(x @ W + b), 1x{WIDTH}")
    print(f"{'runtime':12}" + "".join(f"{f'L={n}':>9}" for n in LAYERS) + f"{'per layer':>11}")
    for name, seconds in times.items():
        slope = np.polyfit(LAYERS, seconds, 1)[0]
        cells = "".join(f"{s * 1e6:9.1f}" for s in seconds)
        print(f"{name:12}{cells}{slope * 1e6:11.1f}")


if __name__ == "__main__":
    main()

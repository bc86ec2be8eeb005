"""Fixed cost per oneDNN call: chains of tiny layers, tvmext ``"dnnl, llvm"`` vs ``"llvm"``
vs ONNX Runtime.

Run: .venv/bin/python benchmarks/dnnl_call_overhead.py [--threads 2]
     [--onednn-roots default,/path/to/other/prefix]

Each model is a chain of L layers ``relu(x @ W + b)`` on a 1x16 input, so the arithmetic
is negligible and the time per layer is the runtime's fixed cost per op. The slope of
the median latency over L (least squares over L = 1, 4, 16, 32) is printed per runtime:
with oneDNN it is the cost of one primitive execution, which bounds how close many
small ops (a batch-1 CNN's pooling, 1x1 convolutions, the classifier) can come to ONNX
Runtime's MLAS kernels. Each oneDNN install of ``--onednn-roots`` (prefixes holding
``include/dnnl.hpp`` and ``lib/libdnnl.so``, e.g. the SYCL build:
``pip install --prefix DIR onednn==2026.1.0 onednn-devel==2026.1.0``) is measured in its
own child process, in the same run, labelled with its version and CPU runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from timing import median_seconds

from tvmext import environment
from tvmext.target.dnnl.library import find_onednn

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


def measure(targets: tuple[str, ...], threads: int) -> dict[str, list[float]]:
    """Median seconds per call for each L, per runtime (``targets`` and ORT)."""
    import onnxruntime as ort

    import tvmext

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    x = np.random.default_rng(1).standard_normal((1, WIDTH)).astype(np.float32)
    times: dict[str, list[float]] = {name: [] for name in (*targets, "ORT")}
    for layers in LAYERS:
        model = chain(layers)
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        expected = session.run(None, {"x": x})[0]
        runs = {"ORT": lambda s=session: s.run(None, {"x": x})}
        for target in targets:
            module = tvmext.compile(model, target)
            np.testing.assert_allclose(module(x)[0], expected, rtol=1e-5, atol=1e-6)
            runs[target] = lambda m=module: m(x)
        for name, run in runs.items():
            times[name].append(median_seconds(run, repeat=300, warmup=20))
    return times


def in_child(root: str, threads: int) -> tuple[str, list[float]]:
    """``"dnnl, llvm"`` with the oneDNN under ``root`` (``default``: the environment's),
    measured in a child process, since a process loads one libdnnl.so; (label, times)."""
    env = dict(os.environ)
    env.pop(environment.ONEDNN_ROOT.name, None)
    if root != "default":
        env[environment.ONEDNN_ROOT.name] = root
    child = subprocess.run(
        [sys.executable, __file__, "--threads", str(threads), "--child"],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    result = json.loads(child.stdout.splitlines()[-1])
    return f"dnnl {result['version']}", result["times"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--onednn-roots", default="default",
        help="comma-separated oneDNN install prefixes to compare (default: the environment's)",
    )  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        version = find_onednn().version()
        times = measure(("dnnl, llvm",), args.threads)["dnnl, llvm"]
        print(json.dumps({"version": version, "times": times}))
        return
    rows = dict(in_child(root, args.threads) for root in args.onednn_roots.split(","))
    rows.update(measure(("llvm",), args.threads))
    print(f"{args.threads} threads; median us per call for L layers of relu(x @ W + b), 1x{WIDTH}")
    print(f"{'runtime':24}" + "".join(f"{f'L={n}':>9}" for n in LAYERS) + f"{'per layer':>11}")
    for name, seconds in rows.items():
        slope = np.polyfit(LAYERS, seconds, 1)[0]
        cells = "".join(f"{s * 1e6:9.1f}" for s in seconds)
        print(f"{name:24}{cells}{slope * 1e6:11.1f}")


if __name__ == "__main__":
    main()

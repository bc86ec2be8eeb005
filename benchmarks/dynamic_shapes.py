"""Dynamic-shape artifacts against static ones and ONNX Runtime, at three sizes.

Each model of the zoo is exported at its published size with dynamic axes (text
models batch and sequence, the others batch; ``model_zoo.export_dynamic``) and
compiled once with tvmext's default target. At each size the same ONNX file is also
compiled with that size fixed (``input_shapes``): the static artifact the dynamic one
should match in speed. ONNX Runtime runs the dynamic model. Printed per size: median
ms of each, static/dynamic (at or above 1: the dynamic artifact is as fast), ORT/dynamic,
and the first run of the dynamic artifact at that size (oneDNN primitives are created
then) minus a warm run, per dynamic oneDNN partition.

    .venv/bin/python benchmarks/dynamic_shapes.py [--models bert,llama,resnet] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from model_zoo import MODELS, export_dynamic, resized_inputs
from timing import median_seconds, settle

DEFAULT_MODELS = "bert,distilbert,roberta,t5_encoder,gpt2,llama,qwen2,resnet,mobilenet_v2,vit,swin"
TEXT_SIZES = ((1, 32), (2, 128), (4, 256))  # (batch, tokens)
VISION_SIZES = ((1, 0), (2, 0), (4, 0))  # batch; the image size is the published one
TOLERANCE = 1e-3


def _dynamic_partitions(module: Any) -> int:
    """How many oneDNN composites of ``module`` have symbolic shapes."""
    names = {o.detail.split(" ")[0] for r in module.reports for o in r.ops if "dynamic" in o.detail}
    return len(names) or 1


def _timed(calls: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    out = {}
    for runtime, call in calls.items():
        settle()
        out[runtime] = median_seconds(call, repeat)
    return out


def _error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-6))


def _measure(
    name: str, path: str, dynamic: Any, session: Any, batch: int, seq: int, repeat: int
) -> tuple[dict[str, float], float]:
    """Seconds per run of the dynamic artifact, a static one of this size and ORT, and
    the dynamic artifact's first run at this size; each output checked against ORT's."""
    import tvmext

    inputs = resized_inputs(name, batch, seq, full=True)
    static = tvmext.compile(path, input_shapes={k: list(v.shape) for k, v in inputs.items()})
    start = time.perf_counter()
    got = dynamic.run(**inputs)[0]
    first = time.perf_counter() - start
    want = session.run(None, inputs)[0]
    for runtime, value in (("dynamic", got), ("static", static.run(**inputs)[0])):
        if _error(value, want) > TOLERANCE:
            raise SystemExit(f"{name} at {batch}x{seq}: the {runtime} artifact differs from ORT")
    calls = {
        "dyn": lambda: dynamic.run(**inputs),
        "static": lambda: static.run(**inputs),
        "ORT": lambda: session.run(None, inputs),
    }
    return _timed(calls, repeat), first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    import onnxruntime as ort

    import tvmext

    folder = tempfile.mkdtemp(prefix="tvmext_dynamic_")
    print(f"{args.threads} threads; median ms; static/dyn and ORT/dyn above 1: dyn is faster")
    print(f"{'model':13}{'size':>10}{'dyn':>9}{'static':>9}{'ORT':>9}"
          f"{'static/dyn':>12}{'ORT/dyn':>9}{'first run, ms/partition':>25}")  # fmt: skip
    static_ratios: list[float] = []
    ort_ratios: list[float] = []
    for name in args.models.split(","):
        path, _ = export_dynamic(name, folder, full=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        dynamic = tvmext.compile(path)
        partitions = _dynamic_partitions(dynamic)
        text = MODELS[name].family.startswith("text")
        for batch, seq in TEXT_SIZES if text else VISION_SIZES:
            times, first = _measure(name, path, dynamic, session, batch, seq, args.repeat)
            static_ratios.append(times["static"] / times["dyn"])
            ort_ratios.append(times["ORT"] / times["dyn"])
            creation = max(first - times["dyn"], 0.0) / partitions
            size = f"{batch}x{seq}" if text else f"{batch}"
            print(f"{name:13}{size:>10}" + "".join(f"{times[r] * 1e3:9.2f}" for r in times)
                  + f"{static_ratios[-1]:12.2f}{ort_ratios[-1]:9.2f}{creation * 1e3:25.2f}",
                  flush=True)  # fmt: skip
    print(f"geometric mean: static/dyn {_geomean(static_ratios):.2f} "
          f"(lowest {min(static_ratios):.2f}), ORT/dyn {_geomean(ort_ratios):.2f}")  # fmt: skip


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


if __name__ == "__main__":
    main()

"""MetaSchedule tuning on plain "llvm": untuned, tuned and ONNX Runtime, same run.

Run: .venv/bin/python benchmarks/tuning.py [--models resnet_cnn,resnet,bert] [--trials 256]
     .venv/bin/python benchmarks/tuning.py --rpc-scaling [--trials 64]

For each model (``resnet_cnn``: the residual CNN of ``tests/onnx_cpu_models.py`` at
64x56x56 input width 32; ``resnet``, ``mobilenet_v2``, ...: the ``transformers`` zoo of
``tests/model_zoo.py`` at published size; ``bert``: its 4-layer encoder) it compiles
the ONNX file for ``"llvm"`` untuned (tvmext's default schedules), tunes it with
``--trials`` candidates (``tvmext.tune``, on this machine) and compiles it with the
records, checks the tuned output against the untuned one, and times both and ONNX
Runtime with the same thread count (median of interleaved rounds). ``ORT/tuned`` above
1 means faster than ONNX Runtime.

``--rpc-scaling`` tunes ``resnet_cnn`` over a loopback tracker with one, then two
``tvmext rpc-server`` processes (each pinned to its own core) and prints the wall
times; candidates are built here, on the same cores.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from model_zoo import MODELS, export
from onnx_cpu_models import resnet_cnn
from rpc_pool import Pool
from timing import median_seconds, settle

import tvmext

OWN = {"resnet_cnn": lambda: resnet_cnn(size=56, width=32)}


def model(name: str, folder: str) -> tuple[str, dict[str, np.ndarray]]:
    """The ONNX file of ``name`` and its inputs."""
    if name in OWN:
        path = os.path.join(folder, f"{name}.onnx")
        proto = OWN[name]()
        onnx.save(proto, path)
        dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
        x = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
        return path, {"x": x}
    path, inputs, _ = export(name, folder, full=True)
    return path, inputs


def timed(calls: dict[str, Any], rounds: int = 5, repeat: int = 10) -> dict[str, float]:
    """Median over ``rounds`` interleaved rounds of each call's median time."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            settle()
            times[name].append(median_seconds(call, repeat=repeat, warmup=2))
    return {name: statistics.median(t) for name, t in times.items()}


def bench(name: str, folder: str, trials: int, threads: int) -> None:
    path, inputs = model(name, folder)
    records = os.path.join(folder, f"{name}.records.json")
    if os.path.exists(records):
        os.unlink(records)
    untuned = tvmext.compile(path)
    result = tvmext.tune(path, records=records, trials=trials)
    tuned = tvmext.compile(path, tuning_records=records)
    arrays = list(inputs.values())
    want = untuned(*arrays)[0]
    got = tuned(*arrays)[0]
    error = float(np.max(np.abs(got - want)) / max(1e-30, float(np.max(np.abs(want)))))
    assert error < 1e-3, f"{name}: tuned output differs from untuned by {error:.2e}"
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    t = timed(
        {
            "untuned": lambda: untuned(*arrays),
            "tuned": lambda: tuned(*arrays),
            "ORT": lambda: session.run(None, inputs),
        },
        rounds=3 if _slow(untuned, arrays) else 5,
    )
    print(
        f"{name:14} {len(result.tasks):5d} {result.trials:6d} {result.seconds:8.0f} "
        f"{t['untuned'] * 1e3:11.2f} {t['tuned'] * 1e3:9.2f} {t['ORT'] * 1e3:7.2f} "
        f"{t['ORT'] / t['tuned']:9.2f} {t['untuned'] / t['tuned']:8.1f}x",
        flush=True,
    )


def _slow(module: Any, arrays: list[np.ndarray]) -> bool:
    """Whether one call takes over 0.2 s (then fewer timing rounds)."""
    start = time.perf_counter()
    module(*arrays)
    return time.perf_counter() - start > 0.2


def rpc_scaling(folder: str, trials: int) -> None:
    path, _ = model("resnet_cnn", folder)
    walls = {}
    for servers in (1, 2):
        pool = Pool(pathlib.Path(folder), servers, f"bench{servers}")
        try:
            records = os.path.join(folder, f"rpc{servers}.json")
            start = time.perf_counter()
            result = tvmext.tune(path, records=records, trials=trials, rpc=pool.tracker)
            walls[servers] = time.perf_counter() - start
            print(
                f"{servers} server(s): {trials} trials ({result.failed} failed) in "
                f"{walls[servers]:.1f} s",
                flush=True,
            )
        finally:
            pool.close()
    print(f"two servers / one: {walls[2] / walls[1]:.2f} of the wall time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet_cnn,resnet,bert")
    parser.add_argument("--trials", type=int, default=256)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rpc-scaling", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.rpc_scaling:
            rpc_scaling(folder, args.trials)
            return
        print(f"{args.threads} threads; {os.cpu_count()} cores; trials: --trials per model")
        print(
            f"{'model':14} {'tasks':>5} {'trials':>6} {'tune s':>8} {'untuned ms':>11} "
            f"{'tuned ms':>9} {'ORT ms':>7} {'ORT/tuned':>9} {'speed-up':>9}"
        )
        for name in args.models.split(","):
            if name not in OWN and name not in MODELS:
                parser.error(f"unknown model {name!r}; models: {', '.join([*OWN, *MODELS])}")
            bench(name, folder, args.trials, args.threads)


if __name__ == "__main__":
    main()

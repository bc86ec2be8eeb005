"""The standalone application's per-call time against Python's ``Module.run``.

Run: .venv/bin/python benchmarks/deploy_app.py [--models resnet,bert,resnet_cnn]
     [--targets "llvm;dnnl, llvm"] [--full] [--repeat 30]

For each model (``transformers`` models of ``tests/model_zoo.py``, small unless
``--full``; ``resnet_cnn``: our ResNet-style CNN of ``tests/onnx_cpu_models.py``) and
target it compiles the model, writes the application folder (``Module.export_app``)
and prints the median and minimum time per call of ``Module.run(**inputs)`` (NumPy in,
NumPy out) and of ``DIR/run --inputs in.npz --print-time`` (the runner's own timing of
``main``, inputs already in memory) over 10 alternated rounds (the median of the
rounds' medians, the least minimum), with the ratios Python / app (above 1: the app is
faster); the largest difference between their outputs; the folder's size.
Both run with the same thread count (``TVM_NUM_THREADS``, default the physical cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import tvmext
from tvmext.runtime.cpu_threads import physical_cores

ROUNDS = 10


@dataclass(frozen=True)
class Times:
    """Median and minimum milliseconds per call."""

    median: float
    min: float


def _summary(rounds: list[Times]) -> Times:
    """Over alternated rounds: the median of their medians, the least minimum."""
    return Times(statistics.median(t.median for t in rounds), min(t.min for t in rounds))


def _model(name: str, folder: str, full: bool) -> tuple[str, dict[str, np.ndarray]]:
    if name == "resnet_cnn":
        import onnx
        from onnx_cpu_models import resnet_cnn

        size = 112 if full else 64
        path = os.path.join(folder, "resnet_cnn.onnx")
        onnx.save(resnet_cnn(batch=1, size=size, width=32), path)
        x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
        return path, {"x": x}
    from model_zoo import export

    path, inputs, _ = export(name, folder, full=full)
    return path, inputs


def _python_ms(module: tvmext.Module, inputs: dict[str, np.ndarray], repeat: int) -> Times:
    for _ in range(3):  # warm-up
        module.run(**inputs)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        module.run(**inputs)
        times.append((time.perf_counter() - start) * 1e3)
    return Times(statistics.median(times), min(times))


def _app_ms(app: str, inputs: str, repeat: int, threads: str) -> Times:
    done = subprocess.run(
        [os.path.join(app, "run"), "--inputs", inputs, "--print-time", "--repeat", str(repeat)],
        capture_output=True, text=True, env={"TVM_NUM_THREADS": threads}, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{app}/run failed: {done.stderr.strip()}")
    lines = done.stdout.splitlines()
    row = lines[next(i for i, line in enumerate(lines) if line.startswith("Execution")) + 2]
    _, median, _, least, _ = (float(v) for v in row.split())  # mean median max min std
    return Times(median, least)


def _folder_mb(folder: str) -> float:
    sizes = (os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
    return sum(sizes) / 1e6


def bench(name: str, target: str, folder: str, args: argparse.Namespace) -> None:
    path, inputs = _model(name, folder, args.full)
    module = tvmext.compile(path, target)
    app = module.export_app(os.path.join(folder, f"{name}_{target.split(',')[0]}_app"))
    npz = os.path.join(folder, f"{name}_inputs.npz")
    np.savez(npz, **inputs)
    out = os.path.join(folder, "out.npz")
    subprocess.run([os.path.join(app, "run"), "--inputs", npz, "--outputs", out], check=True,
                   capture_output=True, env={"TVM_NUM_THREADS": args.threads})  # fmt: skip
    want = module.run(**inputs)[0]
    diff = float(np.max(np.abs(np.load(out)["output_0"] - want)))
    python_rounds, app_rounds = [], []
    for _ in range(ROUNDS):  # short alternated rounds: other load on the machine hits both
        python_rounds.append(_python_ms(module, inputs, args.repeat))
        app_rounds.append(_app_ms(app, npz, args.repeat, args.threads))
    python, native = _summary(python_rounds), _summary(app_rounds)
    print(f"{name:12} {target:11} {python.median:8.3f} {native.median:8.3f} "
          f"{python.median / native.median:6.2f} {python.min:8.3f} {native.min:8.3f} "
          f"{python.min / native.min:6.2f} {diff:9.1e} {_folder_mb(app):6.1f}",
          flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnet_cnn,resnet,bert")
    parser.add_argument("--targets", default="llvm;dnnl, llvm", help="';'-separated")
    parser.add_argument("--full", action="store_true", help="published sizes")
    parser.add_argument("--repeat", type=int, default=30, help="calls per round")
    parser.add_argument("--threads", default=os.environ.get("TVM_NUM_THREADS",
                                                           str(physical_cores())))  # fmt: skip
    args = parser.parse_args()
    os.environ["TVM_NUM_THREADS"] = args.threads  # this process too, before TVM starts
    print(f"threads: {args.threads}; ms per call, {ROUNDS} alternated rounds of {args.repeat} "
          f"calls; py/app above 1: the app is faster")  # fmt: skip
    print(f"{'':24} {'median':^22} {'min':^22}")
    print(f"{'model':12} {'target':11} {'Python':>8} {'app':>8} {'py/app':>6} {'Python':>8} "
          f"{'app':>8} {'py/app':>6} {'max|diff|':>9} {'MB':>6}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            for target in args.targets.split(";"):
                bench(name, target.strip(), folder, args)


if __name__ == "__main__":
    main()

"""Tuned vs untuned: the same ONNX models compiled with and without tuning records.

Run: .venv/bin/python benchmarks/tuning.py [--trials 24]

For each model it prints the untuned and tuned median latency (TVM time evaluator,
same run), the speed-up, and ONNX Runtime's latency as the peer.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from onnx_models import mlp

sys.path.insert(0, os.path.dirname(__file__))
from timing import median_seconds

import tvmext

MODELS = {
    "mlp b6 784-512-10": dict(batch=6, d_in=784, d_hidden=512, d_out=10),
    "mlp b64 784-256-10": dict(batch=64, d_in=784, d_hidden=256, d_out=10),
    "ffn b128 512-2048-512": dict(batch=128, d_in=512, d_hidden=2048, d_out=512),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    args = parser.parse_args()
    print(
        f"{'model':24} {'untuned ms':>11} {'tuned ms':>9} {'speed-up':>9} {'ORT ms':>8} "
        f"{'tune s':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in MODELS.items():
            model = mlp(**shape)
            x = np.random.default_rng(0).standard_normal((shape["batch"], shape["d_in"]))
            x = x.astype(np.float32)
            untuned = tvmext.compile(model)
            start = time.perf_counter()
            records = tvmext.tune(model, trials=args.trials)
            tune_s = time.perf_counter() - start
            path = os.path.join(tmp, "records.json")
            records.save(path)
            tuned = tvmext.compile(model, tuning_records=path)
            np.testing.assert_allclose(tuned(x)[0], untuned(x)[0], rtol=1e-4, atol=1e-5)
            t_untuned = untuned.benchmark(x, repeat=30, number=10).median
            t_tuned = tuned.benchmark(x, repeat=30, number=10).median
            session = ort.InferenceSession(model.SerializeToString())
            t_ort = median_seconds(lambda s=session, x=x: s.run(None, {"x": x}), repeat=100)
            print(
                f"{name:24} {t_untuned * 1e3:11.3f} {t_tuned * 1e3:9.3f} "
                f"{t_untuned / t_tuned:8.2f}x {t_ort * 1e3:8.3f} {tune_s:7.1f}"
            )


if __name__ == "__main__":
    main()

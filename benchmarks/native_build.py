"""How long a native layer takes to build: cold, cached, and from an edit to a run.

Run: .venv/bin/python benchmarks/native_build.py

The layer is examples/native/layer_norm.cc (~100 lines of C++, forward and backward).
Each figure is measured in a fresh cache folder in this run:
  cold build      declare the op with an empty cache (compile, link, load)
  cached          declare it again unchanged (no compile)
  edit-to-run     change the source, declare again, run it once eagerly
For comparison, rebuilding TVM from source — what adding a C++ op to TVM itself
takes — is about an hour on this 2-core machine (the figure the project brief
reports for this workplace; `cmake --build` of TVM compiles ~1,500 C++ files).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import time

import numpy as np

import tvmext

SOURCE = pathlib.Path(__file__).parent.parent / "examples" / "native" / "layer_norm.cc"
TVM_REBUILD_SECONDS = 3600.0


def declare(source: pathlib.Path, name: str) -> tvmext.NativeOp:
    return tvmext.native_op(
        name,
        sources=[source],
        forward="layer_norm_fwd",
        backward="layer_norm_bwd",
        infer=lambda x, gamma, beta, **_: x,
        attrs={"eps": 1e-5},
        replace=True,
    )


def main() -> None:
    x = np.random.default_rng(0).standard_normal((64, 128)).astype(np.float32)
    gamma, beta = np.ones(128, np.float32), np.zeros(128, np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TVMEXT_CACHE_DIR"] = os.path.join(tmp, "cache")
        source = pathlib.Path(tmp) / "layer_norm.cc"
        shutil.copy(SOURCE, source)

        start = time.perf_counter()
        declare(source, "bench.layer_norm")
        cold = time.perf_counter() - start

        start = time.perf_counter()
        declare(source, "bench.layer_norm")
        cached = time.perf_counter() - start

        source.write_text(source.read_text() + "\n// edited\n")
        start = time.perf_counter()
        op = declare(source, "bench.layer_norm")
        op(x, gamma, beta)
        edit_to_run = time.perf_counter() - start

    lines = SOURCE.read_text().count("\n")
    print(f"layer: {SOURCE.name} ({lines} lines, forward + backward)")
    print(f"{'cold build':16} {cold:7.2f} s")
    print(f"{'cached':16} {cached:7.2f} s")
    print(f"{'edit-to-run':16} {edit_to_run:7.2f} s   (includes compiling the eager call)")
    print(f"{'TVM rebuild':16} {TVM_REBUILD_SECONDS:7.0f} s   (reported figure, not measured here)")
    print(f"edit-to-run is {TVM_REBUILD_SECONDS / edit_to_run:.0f}x shorter than a TVM rebuild")


if __name__ == "__main__":
    main()

"""tvmext.runtime.cpu_threads: TVM's thread pool gets one thread per physical core."""

from __future__ import annotations

import os
import subprocess
import sys

from tvmext.runtime.cpu_threads import physical_cores


def _num_threads(env: dict[str, str]) -> int:
    code = "import tvmext, tvm; print(tvm.get_global_func('runtime.NumThreads')())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


def test_physical_cores_within_affinity():
    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))


def test_import_sizes_the_pool_by_physical_cores():
    env = {k: v for k, v in os.environ.items() if k != "TVM_NUM_THREADS"}
    assert _num_threads(env) == physical_cores()


def test_user_setting_wins():
    assert _num_threads({**os.environ, "TVM_NUM_THREADS": "1"}) == 1

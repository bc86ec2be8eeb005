"""tvmext.runtime.cpu_threads: TVM's thread pool gets one thread per physical core, not
pinned, set when tvmext first compiles or loads, not at import."""

from __future__ import annotations

import os
import subprocess
import sys

from tvmext.runtime.cpu_threads import physical_cores

_COMPILE = """
import os, tvm, tvmext
from tvm import relax
assert "TVM_NUM_THREADS" not in os.environ or os.environ["TVM_NUM_THREADS"] == "1", "import set it"
bb = relax.BlockBuilder()
x = relax.Var("x", relax.TensorType((4,), "float32"))
with bb.function("main", [x]):
    bb.emit_func_output(bb.emit(relax.op.add(x, x)))
tvmext.compile(bb.get())
print(tvm.get_global_func("runtime.NumThreads")())
"""


def _num_threads(env: dict[str, str], code: str = _COMPILE) -> int:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


def test_physical_cores_within_affinity():
    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))


def test_compiling_sizes_the_pool_by_physical_cores():
    env = {k: v for k, v in os.environ.items() if k != "TVM_NUM_THREADS"}
    assert _num_threads(env) == physical_cores()


def test_import_changes_no_environment():
    env = {k: v for k, v in os.environ.items() if k not in ("TVM_NUM_THREADS", "TVM_BIND_THREADS")}
    code = (
        "import os, tvmext, tvmext.ops; "
        "print(int('TVM_NUM_THREADS' in os.environ or 'TVM_BIND_THREADS' in os.environ))"
    )
    assert _num_threads(env, code) == 0


def test_user_setting_wins():
    assert _num_threads({**os.environ, "TVM_NUM_THREADS": "1"}) == 1


_PINNING = """
import glob, os, numpy as np, tvmext
from tvm import relax
bb = relax.BlockBuilder()
x = relax.Var("x", relax.TensorType((1 << 20,), "float32"))
with bb.function("main", [x]):
    bb.emit_func_output(bb.emit(relax.op.exp(x)))
tvmext.compile(bb.get())(np.ones(1 << 20, np.float32))  # starts TVM's thread pool
lists = {open(f"{t}/status").read().split("Cpus_allowed_list:")[1].split()[0]
         for t in glob.glob("/proc/self/task/*")}
print(os.environ["TVM_BIND_THREADS"], len(lists))
"""


def test_tvm_workers_are_not_pinned_unless_asked():
    env = {k: v for k, v in os.environ.items() if k != "TVM_BIND_THREADS"}
    out = subprocess.run([sys.executable, "-c", _PINNING], env=env, capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    assert out == ["0", "1"]  # every thread may run on every CPU of the process
    out = subprocess.run([sys.executable, "-c", _PINNING], capture_output=True, text=True,
                         env={**env, "TVM_BIND_THREADS": "1", "TVM_NUM_THREADS": "2"},
                         check=True).stdout.split()  # fmt: skip
    assert out[0] == "1" and (int(out[1]) > 1 or len(os.sched_getaffinity(0)) == 1)

"""TVM's JSON serialization of IR nodes works in this environment.

MetaSchedule's databases, ``tvm.ir.save_json`` and metadata printing go through
``apache-tvm-ffi``'s ``ToJSONGraph``, which segfaults in 0.1.15.post2 on type nodes;
``pyproject.toml`` pins 0.1.14.post0. Each check runs in a child process, so that an
upgrade that brings the crash back fails here with the signal, not as a dead worker.
"""

from __future__ import annotations

import subprocess
import sys

_ROUND_TRIP = """
import tvm
from tvm import relax
node = tvm.ir.PrimType("int32")
tvm.ir.assert_structural_equal(tvm.ir.load_json(tvm.ir.save_json(node)), node)
bb = relax.BlockBuilder()
x = relax.Var("x", relax.TensorType((2, 3), "float32"))
with bb.function("main", [x]):
    bb.emit_func_output(bb.emit(relax.op.nn.relu(x)))
mod = relax.transform.LegalizeOps()(bb.get())
tvm.ir.assert_structural_equal(tvm.ir.load_json(tvm.ir.save_json(mod)), mod)
print("ok")
"""


def test_save_json_round_trips_type_nodes_and_modules():
    done = subprocess.run(
        [sys.executable, "-c", _ROUND_TRIP], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (
        f"tvm.ir.save_json crashed or failed (exit {done.returncode}); apache-tvm-ffi must be "
        f"0.1.14.post0: {done.stderr[-2000:]}"
    )
    assert done.stdout.split() == ["ok"]


def test_the_pinned_ffi_is_installed():
    from importlib.metadata import version

    assert version("apache-tvm-ffi") == "0.1.14.post0"

"""Tuning over TVM's RPC tracker on loopback: a tracker and ``tvmext rpc-server``
processes, servers that die or whose sessions die, and an empty pool."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tvm_ffi
from onnx_cpu_models import resnet_cnn
from onnx_models import mlp
from rpc_pool import Pool, free_port, wait

import tvmext
from tvmext.lowering.tuning_records import TuningRecords
from tvmext.target.spec import host_cpu
from tvmext.tuning.rpc import CPU_CORES_FUNC, RpcTracker, server_count, with_deadline

pytestmark = pytest.mark.native  # MetaSchedule's builder links each candidate with the C++ compiler

BIN = pathlib.Path(sys.executable).parent
KEY = "tvmext-test"


@pytest.fixture
def pool(tmp_path):
    pools = []

    def start(servers: int) -> Pool:
        pools.append(Pool(tmp_path, servers, KEY))
        return pools[-1]

    yield start
    for p in pools:
        p.close()


@pytest.mark.full  # two minutes on 2 cores; the servers' own failures are tested below
def test_two_servers_tune_and_one_killed_mid_run_does_not_stop_it(pool, tmp_path, rng):
    p = pool(2)
    killed = []

    def kill_second_server(progress):
        if not killed:
            p.servers[1].kill()
            killed.append(progress.trials)

    model = mlp(batch=16, d_in=64, d_hidden=128)  # small tasks: two batches of 16 trials
    records = str(tmp_path / "records.json")
    result = tvmext.tune(model, records=records, trials=32, rpc=p.tracker,
                         progress=kill_second_server, timeout_s=20)  # fmt: skip
    assert killed and killed[0] < 32 and result.trials == 32
    assert result.failed < result.trials
    assert server_count(p.tracker) == 1  # the tracker dropped the dead one
    target = TuningRecords.load(records).target
    assert f'"mcpu":"{host_cpu()}"' in target.replace(" ", "")  # built for the server's CPU
    if len(os.sched_getaffinity(0)) > 1:
        assert '"num-cores":1' in target.replace(" ", "")  # each server has one core

    # What the servers measured builds a correct model (how much faster it runs is
    # benchmarks/tuning.py's to say).
    x = rng.standard_normal((16, 64)).astype("float32")
    naive = tvmext.compile(model, "llvm", schedule=False)
    tuned = tvmext.compile(model, "llvm", tuning_records=records, verify_schedules=True)
    np.testing.assert_allclose(tuned(x)[0], naive(x)[0], rtol=1e-4, atol=1e-5)


def _crashing_module(folder: pathlib.Path) -> str:
    source = folder / "crash.cc"
    source.write_text(
        "#include <cstdlib>\n#include <tvm/ffi/function.h>\n"
        "static int crash(int code) { std::abort(); return code; }\n"
        "TVM_FFI_DLL_EXPORT_TYPED_FUNC(crash, crash);\n"
    )
    return tvm_ffi.cpp.build("crash", cpp_files=[str(source)], build_directory=str(folder))


def test_a_candidate_that_kills_its_session_leaves_the_server_serving(pool, tmp_path):
    from tvm import rpc

    p = pool(1)
    library = _crashing_module(tmp_path)
    tracker = rpc.connect_tracker("127.0.0.1", p.tracker.port)
    remote = with_deadline(30, "a session", lambda: tracker.request(KEY, session_timeout=20))
    remote.upload(library)
    crash = remote.load_module(os.path.basename(library)).get_function("crash")
    with pytest.raises(Exception):  # noqa: B017 (the session's process is gone)
        crash(1)
    wait(lambda: "a candidate ended its session; serving on" in p.log("server0"), 20,
          "the server did not log the ended session")  # fmt: skip
    wait(lambda: server_count(p.tracker) == 1, 30, "the server did not register again")
    again = with_deadline(30, "a session", lambda: tracker.request(KEY, session_timeout=20))
    assert again.get_function(CPU_CORES_FUNC)() >= 1


def test_no_server_under_the_key_is_a_clear_error_at_once(pool, tmp_path):
    p = pool(0)
    start = time.monotonic()
    empty = RpcTracker("127.0.0.1", p.tracker.port, "nobody", session_timeout=20)
    with pytest.raises(tvmext.CompileError, match="no RPC server is registered at the tracker"):
        tvmext.tune(resnet_cnn(size=16, width=8), records=str(tmp_path / "r.json"), trials=4,
                    rpc=empty)  # fmt: skip
    assert time.monotonic() - start < 30
    assert not (tmp_path / "r.json").exists()


def test_no_tracker_is_a_clear_error_within_the_deadline(tmp_path):
    start = time.monotonic()
    nowhere = RpcTracker("127.0.0.1", free_port(), KEY, connect_timeout=5)
    with pytest.raises(tvmext.CompileError, match=r"connecting to the RPC tracker 127\.0\.0\.1"):
        server_count(nowhere)
    assert time.monotonic() - start < 20


def test_rpc_server_stops_on_sigterm(pool):
    p = pool(1)
    server = p.servers[0]
    server.send_signal(signal.SIGTERM)
    assert server.wait(15) == 0
    assert "stopping on SIGTERM" in p.log("server0")
    wait(lambda: server_count(p.tracker) == 0, 30, "the tracker kept the stopped server")


def test_cli_rpc_flags_are_checked_before_any_work(tmp_path):
    done = subprocess.run(
        [str(BIN / "tvmext"), "tune", "m.onnx", "-o", "r.json", "--rpc-key", "k"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "RPC tracker '': expected HOST:PORT" in done.stderr

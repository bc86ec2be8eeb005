"""Whole-model tuning with MetaSchedule on this machine: tasks, records, resuming, crashes."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx_cpu_models import resnet_cnn
from tvm import relax, tirx

import tvmext
from tvmext.cli import main
from tvmext.compiler import compile_state, run_pipeline
from tvmext.lowering.tuning_records import TuningRecords
from tvmext.ops.swish import swish
from tvmext.target.spec import parse_target
from tvmext.tuning.tasks import tuning_tasks

pytestmark = pytest.mark.native  # MetaSchedule's builder links each candidate with the C++ compiler

BIN = pathlib.Path(sys.executable).parent
TRIALS = 8  # half a measured batch: the tests check records, not speed
# Small candidates build and run in a second; a hang inside TVM then fails the test
# within a few minutes instead of the default bound's 18.
TIMEOUT_S = 20


def _fused(model):
    """``model`` after the compile pipeline's fuse stage, as ``tvmext.tune`` sees it."""
    return run_pipeline(compile_state(model, "llvm"), through="fuse").mod


def _cnn():
    return resnet_cnn(size=16, width=8)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A small CNN tuned with a few trials by ``tvmext tune``: (model, its ONNX file, the
    records written, the finished command)."""
    folder = tmp_path_factory.mktemp("tuned")
    model = _cnn()
    onnx.save(model, folder / "cnn.onnx")
    done = subprocess.run(
        [BIN / "tvmext", "tune", "cnn.onnx", "--trials", str(TRIALS), "--timeout", str(TIMEOUT_S),
         "-o", "records.json"],
        capture_output=True, text=True, cwd=folder, check=False,
    )  # fmt: skip
    return model, folder / "cnn.onnx", str(folder / "records.json"), done


def test_tasks_are_the_functions_with_the_default_schedule():
    n = tirx.Var("n", "int64")
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((8, 64), "float32"))
    x2 = relax.Var("x2", relax.TensorType((8, 64), "float32"))
    y = relax.Var("y", relax.TensorType((n, 64), "float32"))
    w = relax.Var("w", relax.TensorType((64, 32), "float32"))
    with bb.function("main", [x, x2, y, w]):
        with bb.dataflow():
            a = bb.emit(relax.op.matmul(x, w))  # a task
            b = bb.emit(relax.op.matmul(x2, w))  # the same workload: weight 2
            c = bb.emit(relax.op.matmul(y, w))  # symbolic rows: not timed
            d = bb.emit(swish(x))  # the op's own llvm schedule: not re-tuned
            out = bb.emit_output(relax.Tuple([a, b, c, d]))
        bb.emit_func_output(out)
    tasks = tuning_tasks(_fused(bb.get()), parse_target("llvm").host)
    assert [(t.name.startswith("matmul"), t.weight) for t in tasks] == [(True, 2)]


def test_tune_command_reports_progress_and_writes_metaschedule_records(tuned):
    _, _, path, done = tuned
    assert done.returncode == 0, done.stderr
    assert "tuning" in done.stderr and "trial" in done.stderr  # the progress bar
    summary = re.search(rf"{TRIALS} trials \(0 failed\) over (\d+) tasks", done.stdout)
    assert summary, done.stdout
    assert re.search(r"^  fused_conv2d\w*: best ", done.stdout, re.M), done.stdout
    records = TuningRecords.load(path)
    assert len(records.records) == TRIALS
    assert len(records.workloads) >= 1 and "num-cores" in records.target
    assert len(records.baselines) == int(summary.group(1))  # each default schedule was timed


def test_compile_command_applies_the_records_and_checks_paths(tuned, tmp_path, monkeypatch, capsys):
    _, onnx_path, path, _ = tuned
    monkeypatch.chdir(tmp_path)  # in process: the fixture ran the installed command
    assert main(["compile", str(onnx_path), "--tuning-records", path, "-o", "m.so"]) == 0
    assert main(["compile", str(onnx_path), "--tuning-records", "nope.json"]) == 1
    assert "tuning records 'nope.json' cannot be read" in capsys.readouterr().err
    assert main(["tune", str(onnx_path), "-o", "no/such/dir/rec.json"]) == 1
    assert "cannot write 'no/such/dir/rec.json'" in capsys.readouterr().err


def test_records_apply_and_the_tuned_model_is_correct(tuned, tmp_path, rng):
    model, _, path, _ = tuned
    x = rng.standard_normal((1, 3, 16, 16)).astype("float32")
    plain = tvmext.compile(model, schedule=False)
    module = tvmext.compile(model, tuning_records=path, verify_schedules=True,
                            dump_ir=tmp_path / "ir")  # fmt: skip
    np.testing.assert_allclose(module(x)[0], plain(x)[0], rtol=1e-4, atol=1e-5)
    scheduled = next((tmp_path / "ir").glob("*_schedule.py")).read_text()
    assert "meta_schedule.tiling_structure" in scheduled  # MetaSchedule's tiling applied


def test_a_record_slower_than_the_default_schedule_is_not_used(tuned, tmp_path):
    model, _, path, _ = tuned
    records = TuningRecords.load(path)
    records.baselines = dict.fromkeys(records.baselines, 0.0)  # defaults that no record beats
    records.save(str(tmp_path / "slow.json"))
    tvmext.compile(model, tuning_records=str(tmp_path / "slow.json"), dump_ir=tmp_path / "ir")
    scheduled = next((tmp_path / "ir").glob("*_schedule.py")).read_text()
    assert "meta_schedule.tiling_structure" not in scheduled  # every function kept its default


def test_records_of_another_target_are_not_extended(tuned, tmp_path):
    model, _, path, _ = tuned
    with pytest.raises(tvmext.CompileError, match="were tuned for target"):
        tvmext.tune(model, "llvm -mcpu=skylake", records=path, trials=1)


def test_records_apply_only_to_their_target_kind(tuned):
    model, _, path, _ = tuned
    with pytest.raises(tvmext.CompileError, match="were tuned for a 'llvm' target; this compile"):
        tvmext.compile(model, "cuda", tuning_records=path)


def test_tuning_resumes_from_its_records_and_a_crash_keeps_what_was_measured(tuned, tmp_path):
    """Tuning again extends the records it is given (the command's) without timing their
    default schedules again, and a crash inside TVM after a batch keeps that batch."""
    model, _, tuned_path, _ = tuned
    path = tmp_path / "records.json"
    shutil.copy(tuned_path, path)
    before = TuningRecords.load(str(path))
    batches = []

    def crash_worker(progress):
        # Kill the tuning child as a segfault inside TVM would, after its first batch.
        batches.append(progress.trials)
        for pid in os.listdir("/proc"):
            mine = pid.isdigit() and _parent(pid) == os.getpid()
            if mine and b"tvmext.tuning.worker" in _cmdline(pid):
                os.kill(int(pid), signal.SIGSEGV)

    with pytest.raises(tvmext.TuningError) as err:
        tvmext.tune(
            model, records=str(path), trials=4 * TRIALS, progress=crash_worker,
            timeout_s=TIMEOUT_S,
        )  # fmt: skip
    message = str(err.value)
    assert "crashed (SIGSEGV, inside TVM)" in message and "resumes" in message
    after = TuningRecords.load(str(path))
    assert batches and len(after.records) >= len(before.records) + batches[0]
    assert after.records[: len(before.records)] == before.records
    assert after.baselines == before.baselines  # not measured again


def _parent(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rpartition(")")[2].split()[1])
    except OSError:
        return -1


def _cmdline(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def test_timeout_must_be_positive(tmp_path):
    with pytest.raises(tvmext.TuningError, match="--timeout must be positive, got 0 s"):
        tvmext.tune(_cnn(), records=str(tmp_path / "r.json"), trials=1, timeout_s=0)


def test_bad_records_file(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"something": 1}))
    with pytest.raises(tvmext.CompileError, match="are not tvmext records"):
        TuningRecords.load(str(tmp_path / "r.json"))
    (tmp_path / "r.json").write_text("{")
    with pytest.raises(tvmext.CompileError, match="are not JSON"):
        TuningRecords.load(str(tmp_path / "r.json"))
    old = {"format": "tvmext-metaschedule", "version": 1, "target": "llvm"}
    (tmp_path / "r.json").write_text(json.dumps(old))
    with pytest.raises(tvmext.CompileError, match="version 1; this tvmext reads version 2"):
        TuningRecords.load(str(tmp_path / "r.json"))

"""Tuning the tile parameters of tvmext's schedules, and using the records."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tvm import relax, tirx

import tvmext
from tvmext.compiler import compile_state, run_pipeline
from tvmext.lowering.schedules.cpu_matmul import MatmulTiles
from tvmext.lowering.tuning import candidate_tiles, tunable_funcs, tune_module
from tvmext.lowering.tuning_records import TuningRecords, workload_key
from tvmext.target.spec import parse_target


def _fused(mod):
    """``mod`` after the compile pipeline's fuse stage, as ``tvmext.tune`` tunes it."""
    return run_pipeline(compile_state(mod, "llvm"), through="fuse").mod


def _matmul_module(m=24, k=64, n=48):
    bb = relax.BlockBuilder()
    a = relax.Var("a", relax.TensorType((m, k), "float32"))
    b = relax.Var("b", relax.TensorType((k, n), "float32"))
    with bb.function("main", [a, b]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.matmul(a, b))
        bb.emit_func_output(out)
    return bb.get()


def test_candidates_start_with_the_default():
    tiles = candidate_tiles(5)
    assert tiles[0] == MatmulTiles() and len(tiles) == 5 and len(set(tiles)) == 5


def test_tune_records_only_improvements_and_they_apply(tmp_path, rng):
    host = parse_target("llvm").host
    mod = _matmul_module()
    (func,) = tunable_funcs(_fused(mod), host)
    records = tune_module(_fused(mod), host, trials=6)
    for entry in records.entries.values():
        assert entry["seconds"] < entry["default_seconds"]
    # Force a known choice and check the compiled model uses it and stays correct.
    forced = TuningRecords(str(host), {workload_key(func): {"tiles": {"mr": 6, "vectors": 1,
                                                                      "kc": 2}}})  # fmt: skip
    forced.save(str(tmp_path / "rec.json"))
    assert TuningRecords.load(str(tmp_path / "rec.json")).lookup(func) == MatmulTiles(6, 1, 2)
    module = tvmext.compile(mod, tuning_records=str(tmp_path / "rec.json"),
                            dump_ir=tmp_path / "ir")  # fmt: skip
    scheduled = next((tmp_path / "ir").glob("*_schedule.py")).read_text()
    assert "T.int64(6)" in scheduled or "in range(6)" in scheduled or "T.unroll(6)" in scheduled
    a = rng.standard_normal((24, 64)).astype("float32")
    b = rng.standard_normal((64, 48)).astype("float32")
    np.testing.assert_allclose(module(a, b)[0], a @ b, rtol=1e-4, atol=1e-4)


def test_symbolic_workloads_are_not_timed():
    host = parse_target("llvm").host
    n = tirx.Var("n", "int64")
    bb = relax.BlockBuilder()
    a = relax.Var("a", relax.TensorType((n, 64), "float32"))
    b = relax.Var("b", relax.TensorType((64, 32), "float32"))
    with bb.function("main", [a, b]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.matmul(a, b))
        bb.emit_func_output(out)
    assert tune_module(_fused(bb.get()), host, trials=2).entries == {}


def test_bad_records_file(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"something": 1}))
    with pytest.raises(tvmext.CompileError, match="are not tvmext records"):
        TuningRecords.load(str(tmp_path / "r.json"))
    (tmp_path / "r.json").write_text("{")
    with pytest.raises(tvmext.CompileError, match="are not JSON"):
        TuningRecords.load(str(tmp_path / "r.json"))

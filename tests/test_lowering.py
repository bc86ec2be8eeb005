"""The lowering pipeline: op schedules, default schedules, opaque marking, errors."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from conftest import run_module, single_op_module
from tvm import relax, te, tirx

import tvmext
from tvmext.lowering.pipeline import run_stages, stages
from tvmext.ops import rms_norm
from tvmext.target.spec import parse_target


def _stage_ir(mod: tvm.IRModule, stage: str, target: str = "llvm") -> tvm.IRModule:
    seen: dict[str, tvm.IRModule] = {}
    host = parse_target(target).host
    run_stages(mod, host, stages(host), after_stage=lambda name, m: seen.setdefault(name, m))
    return seen[stage]


def _prim_funcs(mod: tvm.IRModule) -> dict[str, tirx.PrimFunc]:
    return {gv.name_hint: f for gv, f in mod.functions_items() if isinstance(f, tirx.PrimFunc)}


def test_every_prim_func_is_scheduled():
    mod = single_op_module(
        rms_norm, relax.TensorType((64, 256), "float32"), relax.TensorType((256,), "float32")
    )
    funcs = _prim_funcs(_stage_ir(mod, "schedule"))
    assert funcs and all(f.attrs["tirx.is_scheduled"] for f in funcs.values())


def test_op_schedule_is_applied_and_op_stays_unfused():
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((64, 256), "float32"))
    w = relax.Var("w", relax.TensorType((256,), "float32"))
    with bb.function("main", [x, w]):
        with bb.dataflow():
            y = bb.emit(relax.op.add(x, x))
            out = bb.emit_output(rms_norm(y, w))
        bb.emit_func_output(out)
    funcs = _prim_funcs(_stage_ir(bb.get(), "schedule"))
    script = funcs["tvmext_rms_norm"].script()
    assert "T.parallel" in script and "T.vectorized" in script
    assert "sumsq_rf" in script  # the op's SIMD reduction, not a generic rule
    assert any("add" in name for name in funcs)  # the add was not fused into it


def test_default_schedule_parallelizes_and_vectorizes_unscheduled_ops():
    @tvmext.op("test_sched.double", replace=True)
    def double(x):
        return te.compute(x.shape, lambda *i: x[i] * tirx.const(2, x.dtype), name="double")

    funcs = _prim_funcs(
        _stage_ir(single_op_module(double, relax.TensorType((64, 64), "float32")), "schedule")
    )
    script = next(iter(funcs.values())).script()
    assert "T.parallel" in script and "T.vectorized" in script


def test_default_schedule_for_a_reduction_is_parallel(rng):
    @tvmext.op("test_sched.colsum", replace=True)
    def colsum(x):
        k = te.reduce_axis((0, x.shape[0]), "k")
        return te.compute((x.shape[1],), lambda j: te.sum(x[k, j], axis=k), name="colsum")

    mod = single_op_module(colsum, relax.TensorType((32, 48), "float32"))
    script = next(iter(_prim_funcs(_stage_ir(mod, "schedule")).values())).script()
    assert "T.parallel" in script
    x = rng.standard_normal((32, 48)).astype("float32")
    # summed in parallel chunks: float32 rounding of another order, bounded by sum |x|
    bound = 1e-6 * np.abs(x).sum(0).max()
    np.testing.assert_allclose(run_module(mod, x).numpy(), x.sum(0, dtype=np.float64), atol=bound)


def test_user_schedule_receives_attributes_and_target():
    seen = {}

    @tvmext.op("test_sched.scaled", replace=True)
    def scaled(x, *, k: float = 2.0):
        return te.compute(x.shape, lambda *i: x[i] * tirx.const(k, x.dtype), name="scaled")

    @scaled.schedule("llvm")
    def _schedule(sch, target, k):
        seen.update(k=k, kind=target.kind.name)
        sch.parallel(sch.get_loops(sch.get_sblock("scaled"))[0])

    mod = single_op_module(scaled, relax.TensorType((8, 8), "float32"), k=4.0)
    x = np.arange(64, dtype="float32").reshape(8, 8)
    np.testing.assert_allclose(run_module(mod, x).numpy(), 4 * x)
    assert seen == {"k": 4.0, "kind": "llvm"}


def test_failing_schedule_names_op_and_target():
    @tvmext.op("test_sched.broken", replace=True)
    def broken(x):
        return te.compute(x.shape, lambda *i: x[i], name="broken")

    @broken.schedule("llvm")
    def _schedule(sch):
        sch.get_sblock("no_such_block")

    mod = single_op_module(broken, relax.TensorType((4,), "float32"))
    with pytest.raises(
        tvmext.CompileError,
        match=r"op 'test_sched.broken': its 'llvm' "
        r"schedule failed",
    ):
        run_module(mod, np.zeros(4, "float32"))


def test_schedule_needs_a_target_kind():
    with pytest.raises(
        tvmext.OpDefinitionError,
        match=r"schedule\(\) needs a TVM target kind, got ''; known kinds: .*llvm",
    ):
        rms_norm.schedule("")


def test_host_target_has_the_cpu_features():
    host = parse_target("llvm").host
    assert str(host.attrs["mcpu"]) == tvm.target.codegen.llvm_get_system_cpu()
    assert parse_target("llvm -mcpu=native").host.attrs["mcpu"] == host.attrs["mcpu"]
    spec = parse_target("dnnl, llvm -mcpu=x86-64")
    assert spec.externals == ("dnnl",) and str(spec.host.attrs["mcpu"]) == "x86-64"
    with pytest.raises(tvmext.CompileError, match="option 'fast' is not of the form"):
        parse_target("llvm fast")


@pytest.mark.parametrize(
    ("m", "k", "n", "tiled"),
    [(16, 32, 64, True), (6, 8, 32, True), (5, 7, 9, True), (4, 8, 100, False)],
)
def test_default_matmul_schedule_is_tiled_and_correct(rng, m, k, n, tiled):
    """Tiled where j splits into SIMD-wide tiles (or is narrow), else the generic rule."""
    bb = relax.BlockBuilder()
    a = relax.Var("a", relax.TensorType((m, k), "float32"))
    b = relax.Var("b", relax.TensorType((k, n), "float32"))
    with bb.function("main", [a, b]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.nn.relu(relax.op.matmul(a, b)))
        bb.emit_func_output(out)
    mod = bb.get()
    script = "\n".join(f.script() for f in _prim_funcs(_stage_ir(mod, "schedule")).values())
    assert ('"local"' in script) == tiled  # the register accumulator
    assert "T.parallel" in script
    av = rng.standard_normal((m, k)).astype("float32")
    bv = rng.standard_normal((k, n)).astype("float32")
    np.testing.assert_allclose(
        run_module(mod, av, bv).numpy(), np.maximum(av @ bv, 0), rtol=1e-4, atol=1e-4
    )


def test_mattr_lists_in_target_strings():
    spec = parse_target("dnnl, llvm -mcpu=x86-64 -mattr=+avx2,+fma")
    assert spec.externals == ("dnnl",)
    assert list(spec.host.attrs["mattr"]) == ["+avx2", "+fma"]


@pytest.mark.parametrize(("target", "small_parallel"), [("llvm", True), ("dnnl, llvm", False)])
def test_small_kernels_beside_onednn_run_on_one_thread(target, small_parallel, tmp_path, rng):
    """In an artifact that calls oneDNN (whose TVM workers sleep when idle) a kernel of
    at most 2 MiB of buffers has no parallel loop; a larger one keeps its threads."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((64, 256), "float32"))
    big = relax.Var("big", relax.TensorType((1024, 1024), "float32"))
    w = relax.const(rng.standard_normal((256, 64)).astype("float32"))
    with bb.function("main", [x, big]):
        with bb.dataflow():
            small = bb.emit(relax.op.exp(relax.op.matmul(x, w)))  # 16 KiB after the matmul
            large = bb.emit(relax.op.exp(big))  # 4 MiB in and out
            out = bb.emit_output(relax.Tuple([small, large]))
        bb.emit_func_output(out)
    module = tvmext.compile(bb.get(), target, dump_ir=str(tmp_path))
    scheduled = (next(tmp_path.glob("*_schedule.py"))).read_text()
    bodies = {
        part.split("(", 1)[0]: part
        for part in scheduled.split("    def ")[1:]
        if "T.Buffer" in part
    }
    exp_kernels = {name: body for name, body in bodies.items() if "exp" in name}
    small_kernel = next(b for n, b in exp_kernels.items() if "64), T.int64(64)" in b)
    large_kernel = next(b for n, b in exp_kernels.items() if "1024" in b)
    assert ("T.parallel" in small_kernel) == small_parallel
    assert "T.parallel" in large_kernel
    args = [
        rng.standard_normal((64, 256)).astype("float32"),
        rng.standard_normal((1024, 1024)).astype("float32"),
    ]
    got = module.run(*args)
    np.testing.assert_allclose(got[0], np.exp(args[0] @ w.value.numpy()), rtol=1e-4)
    np.testing.assert_allclose(got[1], np.exp(args[1]), rtol=1e-5)

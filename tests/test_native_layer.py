"""Native layers: C++ forward/backward built on the fly, cached, linked into artifacts."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tvm
from tvm import relax
from vendor_library import build_vendor_library

import tvmext
from tvmext.lowering.pipeline import build
from tvmext.opdef.native_build import BuildFlags, compile_object
from tvmext.target.spec import parse_target
from tvmext.testing import check_op

pytestmark = pytest.mark.native  # every layer here is C++ (or CUDA) built with a compiler

NATIVE = pathlib.Path(__file__).parent / "native"


def _same_type(x, **_):
    return x


@pytest.fixture(scope="module")
def leaky():
    op = tvmext.native_op(
        "test_native.leaky_relu",
        sources=[NATIVE / "leaky_relu.cc"],
        forward="leaky_fwd",
        backward="leaky_bwd",
        infer=_same_type,
        attrs={"alpha": 0.1},
        replace=True,
    )

    @op.reference
    def _reference(x, *, alpha):
        return np.where(x > 0, x, alpha * x).astype(x.dtype)

    return op


def _away_from_zero(rng, shape):
    x = rng.standard_normal(shape).astype("float32")
    return x + np.sign(x) * 0.1  # finite differences do not straddle the kink


def test_check_op_forward_backward_export(leaky, rng):
    check_op(leaky, _away_from_zero(rng, (4, 16)), alpha=0.25)


def test_eager_and_relax_graph(leaky, rng):
    x = rng.standard_normal((3, 5)).astype("float32")
    np.testing.assert_allclose(leaky(x, alpha=0.5), np.where(x > 0, x, 0.5 * x))
    bb = relax.BlockBuilder()
    v = relax.Var("x", relax.TensorType((3, 5), "float32"))
    with bb.function("main", [v]):
        with bb.dataflow():
            y = bb.emit(leaky(v, alpha=0.5))
            out = bb.emit_output(relax.op.multiply(y, y))
        bb.emit_func_output(out)
    assert "R.tvmext.test_native.leaky_relu(x, alpha=0.5)" in bb.get().script()
    np.testing.assert_allclose(tvmext.compile(bb.get())(x)[0], np.where(x > 0, x, 0.5 * x) ** 2,
                               rtol=1e-6)  # fmt: skip


def test_two_outputs_int_and_bool_attributes(rng):
    op = tvmext.native_op(
        "test_native.split",
        sources=[NATIVE / "two_outputs.cc"],
        forward="split_fwd",
        backward="split_bwd",
        infer=lambda x, **_: (x, x),
        attrs={"scale": 3, "clamp": True},
        replace=True,
    )

    @op.reference
    def _reference(x, *, scale, clamp):
        return x * scale, np.maximum(x, 0) if clamp else x

    x = _away_from_zero(rng, (2, 7))
    check_op(op, x, scale=2, clamp=True)
    check_op(op, x, scale=-1, clamp=False)
    with pytest.raises(tvmext.OpCallError, match="attribute 'scale' expects int"):
        op(x, scale=1.5)


def test_artifact_loads_in_a_process_without_tvmext(leaky, rng, tmp_path):
    bb = relax.BlockBuilder()
    v = relax.Var("x", relax.TensorType((2, 8), "float32"))
    with bb.function("main", [v]):
        with bb.dataflow():
            out = bb.emit_output(leaky(v, alpha=0.3))
        bb.emit_func_output(out)
    artifact = tvmext.compile(bb.get()).export(tmp_path / "layer.so")
    x = rng.standard_normal((2, 8)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    x_path, y_path = str(tmp_path / "x.npy"), str(tmp_path / "y.npy")
    code = f"""
import sys, numpy as np, tvm
from tvm import relax
vm = relax.VirtualMachine(tvm.runtime.load_module({str(artifact)!r}), tvm.cpu())
np.save({y_path!r}, vm["main"](tvm.runtime.tensor(np.load({x_path!r}))).numpy())
assert "tvmext" not in sys.modules
"""
    env = {**os.environ, "TVM_DEVICE_BACKEND_AUTOLOAD": "0"}
    env["TVMEXT_CACHE_DIR"] = str(tmp_path / "empty-cache")  # the artifact needs no cache
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), np.where(x > 0, x, 0.3 * x))


def test_cache_reuses_objects_and_rebuilds_only_changed_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("TVMEXT_CACHE_DIR", str(tmp_path / "cache"))
    a, b = tmp_path / "a.cc", tmp_path / "b.cc"
    shutil.copy(NATIVE / "leaky_relu.cc", a)
    shutil.copy(NATIVE / "throwing.cc", b)
    obj_a, obj_b = compile_object(str(a), BuildFlags()), compile_object(str(b), BuildFlags())
    stamp_a, stamp_b = os.stat(obj_a).st_mtime_ns, os.stat(obj_b).st_mtime_ns
    assert compile_object(str(a), BuildFlags()) == obj_a
    assert os.stat(obj_a).st_mtime_ns == stamp_a  # not rebuilt
    a.write_text(a.read_text() + "\n// edited\n")
    new_a = compile_object(str(a), BuildFlags())
    assert new_a != obj_a
    assert compile_object(str(b), BuildFlags()) == obj_b
    assert os.stat(obj_b).st_mtime_ns == stamp_b
    assert compile_object(str(a), BuildFlags(extra_cflags=("-DTVMEXT_TEST_FLAG=1",))) != new_a


def test_compile_error_shows_diagnostics_command_and_source(tmp_path):
    bad = tmp_path / "bad.cc"
    bad.write_text(
        "#include <tvmext/layer.h>\nvoid f(tvmext::TensorView x) { undefined_call(x); }\n"
    )
    with pytest.raises(tvmext.NativeBuildError) as info:
        tvmext.native_op("test_native.bad", sources=[bad], forward="f", infer=_same_type)
    message = str(info.value)
    assert "compiling" in message and "failed" in message
    assert "undefined_call" in message and "error" in message
    assert "command: " in message and str(bad) in message
    assert "test_native.bad" not in tvmext.opdef.declaration.OPS


def test_missing_symbol_lists_exported_ones():
    with pytest.raises(
        tvmext.NativeBuildError,
        match=r"symbol 'leaky_forwrd' is not exported by its sources; exported: leaky_bwd, "
        r"leaky_fwd",
    ):
        tvmext.native_op(
            "test_native.typo", sources=[NATIVE / "leaky_relu.cc"], forward="leaky_forwrd",
            infer=_same_type, attrs={"alpha": 0.1},
        )  # fmt: skip


def test_exception_inside_the_layer_reaches_python(rng):
    op = tvmext.native_op(
        "test_native.checked", sources=[NATIVE / "throwing.cc"], forward="checked_fwd",
        infer=_same_type, replace=True,
    )  # fmt: skip
    np.testing.assert_allclose(op(np.ones((2, 4), "float32")), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"checked: input 'x' must be non-negative, got -1"):
        op(-np.ones((2, 4), "float32"))
    with pytest.raises(
        ValueError, match=r"checked: input 'x' has shape \[2, 3\], expected \[\?, 4\]"
    ):
        op(np.ones((2, 3), "float32"))


def test_declaration_errors():
    with pytest.raises(tvmext.OpDefinitionError, match="give either sources= or objects="):
        tvmext.native_op("test_native.none", forward="f", infer=_same_type)
    with pytest.raises(tvmext.OpDefinitionError, match="attribute 'mode' default 'fast' must be"):
        tvmext.native_op("test_native.s", sources=[NATIVE / "leaky_relu.cc"], forward="leaky_fwd",
                         infer=_same_type, attrs={"mode": "fast"})  # fmt: skip
    with pytest.raises(
        tvmext.NativeBuildError, match=r"native source .*missing\.cc' does not exist"
    ):
        tvmext.native_op("test_native.m", sources=["missing.cc"], forward="f", infer=_same_type)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_cuda_source_compiles_to_an_object():
    obj = compile_object(str(NATIVE / "scale.cu"), BuildFlags())
    symbols = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    assert "__tvm_ffi_scale_fwd" in symbols


def _has_gpu() -> bool:
    import tvm

    return bool(tvm.cuda(0).exist)


@pytest.mark.device
@pytest.mark.skipif(shutil.which("nvcc") is None or not _has_gpu(), reason="needs nvcc and a GPU")
def test_cuda_layer_runs_on_the_gpu(rng):
    import tvm

    op = tvmext.native_op(
        "test_native.cuda_scale", sources=[NATIVE / "scale.cu"], forward="scale_fwd",
        infer=_same_type, attrs={"alpha": 2.0}, replace=True,
    )  # fmt: skip
    x = rng.standard_normal((4, 256)).astype("float32")
    bb = relax.BlockBuilder()
    v = relax.Var("x", relax.TensorType((4, 256), "float32"))
    with bb.function("main", [v]):
        with bb.dataflow():
            out = bb.emit_output(op(v, alpha=3.0))
        bb.emit_func_output(out)
    module = tvmext.compile(bb.get(), "cuda")
    got = module._vm["main"](tvm.runtime.tensor(x, tvm.cuda(0))).numpy()
    np.testing.assert_allclose(got, 3 * x, rtol=1e-6)


def test_failed_redeclaration_leaves_the_first_op_working(leaky, rng):
    with pytest.raises(tvmext.OpDefinitionError, match="already registered"):
        tvmext.native_op("test_native.leaky_relu", sources=[NATIVE / "throwing.cc"],
                         forward="checked_fwd", infer=_same_type)  # fmt: skip
    x = rng.standard_normal((2, 4)).astype("float32")
    np.testing.assert_allclose(leaky(x, alpha=0.5), np.where(x > 0, x, 0.5 * x))


def test_prebuilt_static_library(tmp_path, rng):
    """A vendor ships a static library (.a) of its kernels: no sources needed."""
    obj = compile_object(str(NATIVE / "leaky_relu.cc"), BuildFlags())
    archive = tmp_path / "libleaky.a"
    subprocess.run(["ar", "rcs", str(archive), obj], check=True)
    op = tvmext.native_op(
        "test_native.from_archive", library=archive, forward="leaky_fwd", backward="leaky_bwd",
        infer=_same_type, attrs={"alpha": 0.1}, replace=True,
    )  # fmt: skip

    @op.reference
    def _reference(x, *, alpha):
        return np.where(x > 0, x, alpha * x).astype(x.dtype)

    check_op(op, _away_from_zero(rng, (3, 8)), alpha=0.2)


def test_bad_static_library_is_a_clear_error(tmp_path):
    with pytest.raises(tvmext.NativeBuildError, match=r"static library .*missing\.a' does not"):
        tvmext.native_op("test_native.noarchive", library=tmp_path / "missing.a",
                         forward="f", infer=_same_type)  # fmt: skip
    fake = tmp_path / "fake.a"
    fake.write_text("not an archive")
    with pytest.raises(tvmext.NativeBuildError, match=r"fake\.a' is not a static library"):
        tvmext.native_op("test_native.fake", library=fake, forward="f", infer=_same_type)


@pytest.fixture(scope="module")
def vendor_leaky(tmp_path_factory):
    """A native op whose forward and backward live in a vendor's prebuilt .so."""
    library = build_vendor_library(tmp_path_factory.mktemp("vendor"))
    op = tvmext.native_op(
        "test_native.vendor_leaky", shared_library=library, forward="leaky_fwd",
        backward="leaky_bwd", infer=_same_type, attrs={"alpha": 0.1}, replace=True,
    )  # fmt: skip

    @op.reference
    def _reference(x, *, alpha):
        return np.where(x > 0, x, alpha * x).astype(x.dtype)

    return op


def _leaky_module(op, shape=(2, 8), alpha=0.3):
    bb = relax.BlockBuilder()
    v = relax.Var("x", relax.TensorType(shape, "float32"))
    with bb.function("main", [v]):
        with bb.dataflow():
            out = bb.emit_output(op(v, alpha=alpha))
        bb.emit_func_output(out)
    return bb.get()


def _dynamic_section(path) -> tuple[list[str], list[str]]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", out)
    rpath = re.findall(r"\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.*)\]", out)
    return needed, rpath


def test_shared_library_eager_graph_gradient_and_export(vendor_leaky, rng):
    """check_op: eager call vs the reference, the vendor's backward through
    relax.transform.Gradient vs finite differences, export and reload."""
    check_op(vendor_leaky, _away_from_zero(rng, (3, 8)), alpha=0.2)
    x = rng.standard_normal((2, 8)).astype("float32")
    np.testing.assert_allclose(tvmext.compile(_leaky_module(vendor_leaky))(x)[0],
                               np.where(x > 0, x, 0.3 * x))  # fmt: skip


def test_shared_library_trains(vendor_leaky, rng):
    """A few SGD steps on w in loss = sum((leaky(x @ w) - t)^2), gradients through the
    vendor's backward (relax.transform.Gradient, then TVM's own VM over the executable,
    which links it without tvmext's linker options)."""
    n, d = 16, 4
    bb = relax.BlockBuilder()
    xv, wv, tv = (relax.Var(name, relax.TensorType(s, "float32"))
                  for name, s in (("x", (n, d)), ("w", (d, d)), ("t", (n, d))))  # fmt: skip
    with bb.function("loss", [xv, wv, tv]):
        with bb.dataflow():
            h = bb.emit(vendor_leaky(relax.op.matmul(xv, wv), alpha=0.1))
            err = bb.emit(relax.op.subtract(h, tv))
            out = bb.emit_output(relax.op.sum(relax.op.multiply(err, err)))
        bb.emit_func_output(out)
    train = relax.transform.Gradient("loss", require_grads=[wv])(bb.get())
    x = rng.standard_normal((n, d)).astype("float32")
    t = np.maximum(x @ rng.standard_normal((d, d)).astype("float32"), 0)
    w = np.full((d, d), 0.1, "float32")
    losses = []
    step = relax.VirtualMachine(build(train, parse_target("llvm").host), tvm.cpu())["loss_adjoint"]
    for _ in range(30):
        loss, (grad,) = step(*(tvm.runtime.tensor(a) for a in (x, w, t)))
        losses.append(float(loss.numpy()))
        w -= 0.01 * grad.numpy()
    assert losses[-1] < 0.5 * losses[0], losses


def test_artifact_records_the_shared_library(vendor_leaky, rng, tmp_path):
    library = pathlib.Path(vendor_leaky.shared_library)
    module = tvmext.compile(_leaky_module(vendor_leaky))
    elsewhere = module.export(tmp_path / "m.so")
    assert library.name in _dynamic_section(elsewhere)[0]  # needed, not embedded
    assert _dynamic_section(elsewhere)[1] == [str(library.parent)]
    beside = module.export(library.parent / "m.so")
    assert _dynamic_section(beside)[1] == ["$ORIGIN"]
    x = rng.standard_normal((2, 8)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    code = f"""
import sys, numpy as np, tvm
from tvm import relax
for artifact in sys.argv[1:]:
    vm = relax.VirtualMachine(tvm.runtime.load_module(artifact), tvm.cpu())
    y = vm["main"](tvm.runtime.tensor(np.load({str(tmp_path / "x.npy")!r}))).numpy()
    np.save(artifact + ".npy", y)
assert "tvmext" not in sys.modules
"""
    env = {**os.environ, "TVM_DEVICE_BACKEND_AUTOLOAD": "0"}
    subprocess.run([sys.executable, "-c", code, elsewhere, beside], check=True, env=env)
    for artifact in (elsewhere, beside):
        np.testing.assert_allclose(np.load(artifact + ".npy"), np.where(x > 0, x, 0.3 * x))


def test_artifact_without_its_shared_library_names_it(tmp_path):
    library = build_vendor_library(tmp_path / "vendor", "throwing.cc")
    op = tvmext.native_op("test_native.vendor_checked", shared_library=library,
                          forward="checked_fwd", infer=_same_type, replace=True)  # fmt: skip
    bb = relax.BlockBuilder()
    v = relax.Var("x", relax.TensorType((2, 4), "float32"))
    with bb.function("main", [v]):
        with bb.dataflow():
            out = bb.emit_output(op(v))
        bb.emit_func_output(out)
    artifact = tvmext.compile(bb.get()).export(tmp_path / "m.so")
    library.rename(tmp_path / "elsewhere.so")
    # In a fresh process: this one has the library loaded already.
    done = subprocess.run([sys.executable, "-m", "tvmext", "run", artifact], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"run: error: artifact '{artifact}' needs the shared library 'libthrowing.so', which "
        f"is not found in the folders it was linked with (its RPATH)"
    ), done.stderr


def test_shared_library_errors_name_the_op_and_the_library(vendor_leaky, tmp_path):
    library = vendor_leaky.shared_library
    with pytest.raises(
        tvmext.NativeBuildError,
        match=rf"op 'test_native.v1': symbol 'leaky_forwrd' is not exported by shared library "
        rf"'{re.escape(library)}'; exported: leaky_bwd, leaky_fwd",
    ):
        tvmext.native_op("test_native.v1", shared_library=library, forward="leaky_forwrd",
                         infer=_same_type, attrs={"alpha": 0.1})  # fmt: skip
    missing = str(tmp_path / "libnone.so")
    with pytest.raises(
        tvmext.NativeBuildError,
        match=rf"op 'test_native.v2': shared library '{re.escape(missing)}' does not exist",
    ):
        tvmext.native_op("test_native.v2", shared_library=missing, forward="f", infer=_same_type)
    text = tmp_path / "libtext.so"
    text.write_text("not a library")
    with pytest.raises(tvmext.NativeBuildError, match=r"libtext\.so' is not a shared library"):
        tvmext.native_op("test_native.v3", shared_library=text, forward="f", infer=_same_type)
    with pytest.raises(tvmext.NativeBuildError, match=r"goes to shared_library="):
        tvmext.native_op("test_native.v4", library=library, forward="f", infer=_same_type)
    for name in ("v1", "v2", "v3", "v4"):
        assert f"test_native.{name}" not in tvmext.opdef.declaration.OPS

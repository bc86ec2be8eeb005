"""Standalone applications (``Module.export_app``, ``tvmext compile --emit-app``): built,
moved to another folder, run without Python in an empty environment, compared with
``tvmext.load(...).run``."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from onnx_models import custom_node_model, mlp, save
from tvm import relax
from vendor_library import build_vendor_library

import tvmext
from tvmext.target.host_default import default_target

pytestmark = pytest.mark.native  # a C++ compiler builds the runner

NATIVE = pathlib.Path(__file__).parent / "native"
PLUGINS = pathlib.Path(__file__).parent / "plugins"
BIN = pathlib.Path(sys.executable).parent
# What an application may load from outside its folder: the C and C++ runtime.
SYSTEM = re.compile(
    r"^(linux-vdso|ld-linux-x86-64|libc|libm|libstdc\+\+|libgcc_s|libgomp|libpthread|libdl"
    r"|librt)\.so(\.[\d.]+)?$"
)


def _move(folder: pathlib.Path, to: pathlib.Path) -> pathlib.Path:
    """``folder`` moved to ``to/deeper/app`` (another path than the one it was built at)."""
    target = to / "deeper" / "app"
    target.parent.mkdir(parents=True)
    shutil.move(folder, target)
    assert not folder.exists()
    return target


def _app(module: tvmext.Module, tmp: pathlib.Path, **kwargs) -> pathlib.Path:
    (tmp / "build").mkdir()
    built = pathlib.Path(module.export_app(tmp / "build" / "app", **kwargs))
    assert built == tmp / "build" / "app"
    assert sorted(os.listdir(tmp / "build")) == ["app"]  # no temporary folder left
    return _move(built, tmp / "moved")


def run_app(app: pathlib.Path, *args, env=None, cwd=None) -> subprocess.CompletedProcess:
    """``app/run args`` with an empty environment (as ``env -i``) unless ``env`` is given."""
    return subprocess.run([str(app / "run"), *map(str, args)], capture_output=True, text=True,
                          env=env or {}, cwd=cwd, timeout=120, check=False)  # fmt: skip


def _outside(app: pathlib.Path, paths: list[str]) -> list[str]:
    inside = str(app.resolve()) + os.sep
    return [
        p
        for p in paths
        if not os.path.realpath(p).startswith(inside) and not SYSTEM.match(os.path.basename(p))
    ]


def assert_self_contained(app: pathlib.Path, *args) -> None:
    """``ldd`` of run, and the files the loader opens while run runs with ``args`` (its
    ``LD_DEBUG`` log: model.so and what it loads too), find nothing outside ``app`` but
    the C/C++ runtime."""
    out = subprocess.run(["ldd", str(app / "run")], capture_output=True, text=True, env={},
                         check=True).stdout  # fmt: skip
    assert "not found" not in out, out
    assert not _outside(app, re.findall(r"=> (\S+)", out)), out
    done = run_app(app, *args, env={"LD_DEBUG": "libs"})
    assert done.returncode == 0, done.stderr
    loaded = re.findall(r"calling init: (\S+)", done.stderr)
    assert str((app / "model.so").resolve()) in loaded, loaded
    assert not _outside(app, loaded), loaded


def _check_layout(app: pathlib.Path, libs: set[str]) -> None:
    assert {p.name for p in app.iterdir()} >= {"run", "model.so", "lib", "src", "README.md"}
    assert {p.name for p in (app / "lib").iterdir()} == libs
    assert {"run.cc", "npy.h", "Makefile", "include"} <= {p.name for p in (app / "src").iterdir()}
    assert (app / "src" / "include" / "tvm" / "ffi" / "function.h").is_file()
    readme = (app / "README.md").read_text()
    stated = re.search(r"glibc (\d+)\.(\d+) or newer \((\S+) needs it\)", readme)
    assert stated, readme
    versions = []  # the GLIBC_x.y versions of the symbols each binary imports
    for binary in [app / "run", app / "model.so", *(app / "lib").iterdir()]:
        symbols = subprocess.run(["objdump", "-T", str(binary)], capture_output=True, text=True,
                                 check=True).stdout  # fmt: skip
        found = re.findall(r"\*UND\*\s+\S+\s+\(?GLIBC_(\d+)\.(\d+)", symbols)
        versions += [(int(a), int(b), binary.relative_to(app).as_posix()) for a, b in found]
    highest = max(v[:2] for v in versions)
    assert (int(stated.group(1)), int(stated.group(2))) == highest, readme
    assert stated.group(3) in {v[2] for v in versions if v[:2] == highest}, readme
    for lib in libs:
        assert f"`lib/{lib}`" in readme


def _relax_main(params: list[relax.Var], body) -> relax.Function:
    bb = relax.BlockBuilder()
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(body(bb, *params))
        bb.emit_func_output(out)
    return bb.get()


@pytest.fixture(scope="module")
def custom_op_app(tmp_path_factory):
    """An ONNX model whose custom node is a Python op (the plugin's plugintest.triple):
    the app folder, moved, and the loaded artifact."""
    tmp = tmp_path_factory.mktemp("custom")
    path = save(custom_node_model(domain="com.plugintest", op_type="Triple"), tmp, "c.onnx")
    module = tvmext.compile(path, plugins=[str(PLUGINS / "good_plugin.py")],
                            input_shapes="x:[4,16]")  # fmt: skip
    return _app(module, tmp)


def test_python_custom_op_app_runs_without_python(custom_op_app, tmp_path, rng):
    app = custom_op_app
    _check_layout(app, {"libtvm_runtime.so", "libtvm_ffi.so"})
    x = rng.standard_normal((4, 16)).astype("float32")
    np.savez(tmp_path / "in.npz", x=x)
    done = run_app(app, "--inputs", "in.npz", "--outputs", "out.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "wrote 1 output(s) to out.npz"
    assert done.stderr == ""  # TVM's per-scope load log is filtered
    with np.load(tmp_path / "out.npz") as out:
        assert out.files == ["output_0"]
        got = out["output_0"]
    np.testing.assert_array_equal(got, tvmext.load(app / "model.so").run(x)[0])
    np.testing.assert_allclose(got, 6 * x, rtol=1e-6)
    assert_self_contained(app, "--inputs", tmp_path / "in.npz")


def test_random_inputs_summary_time_and_help(custom_op_app):
    done = run_app(custom_op_app, "--print-time", "--repeat", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "random inputs: x: [4, 16] float32"
    assert re.match(r"  output_0: \[4, 16\] float32  mean \S+  values( \S+){6} \.\.\.$", lines[2])
    header = lines.index("Execution time summary (3 calls):")
    assert lines[header + 1].split() == ["mean", "(ms)", "median", "(ms)", "max", "(ms)", "min",
                                         "(ms)", "std", "(ms)"]  # fmt: skip
    assert all(float(v) > 0 for v in lines[header + 2].split()[:4])
    done = run_app(custom_op_app, "--help")
    assert done.returncode == 0 and "--inputs IN.npz" in done.stdout and "--repeat N" in done.stdout
    assert done.stdout.rstrip().endswith("input  x: [4, 16] float32")


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda d: np.save(d / "x.npy", np.zeros((3, 16), "float32")), ["--input", "x=x.npy"],
         "input 'x': expected float32 of shape [4, 16], got float32 of shape [3, 16]"),
        (lambda d: np.save(d / "x.npy", np.zeros((4, 16))), ["--input", "x=x.npy"],
         "input 'x': expected float32 of shape [4, 16], got float64 of shape [4, 16]"),
        (lambda d: np.savez(d / "i.npz", y=np.zeros(2)), ["--inputs", "i.npz"],
         "inputs file 'i.npz' lacks input(s) x; it holds y"),
        (lambda d: np.savez_compressed(d / "i.npz", x=np.zeros((4, 16), "float32")),
         ["--inputs", "i.npz"], "'i.npz[x]' is compressed (zip method 8)"),
        (lambda d: np.save(d / "x.npy", np.zeros((4, 16), ">f4")), ["--input", "x=x.npy"],
         "'x.npy' is big-endian (>f4)"),
        (lambda d: None, ["--input", "z=z.npy"], "unknown input 'z'; inputs are x"),
        (lambda d: None, ["--inputs", "none.npz"], "inputs file 'none.npz' does not exist"),
        (lambda d: None, ["--params", "w.npz"], "the model takes no weights at run time"),
    ],
)  # fmt: skip
def test_input_errors_are_one_line_exit_1(custom_op_app, tmp_path, make, args, message):
    make(tmp_path)
    before = set(os.listdir(tmp_path))
    done = run_app(custom_op_app, *args, "--outputs", "o.npz", cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("run: error: ") and message in lines[0], lines
    assert set(os.listdir(tmp_path)) == before  # no output written


def test_usage_errors_exit_2(custom_op_app):
    for args in (["--repeat", "0"], ["--bogus"], ["--input", "x"], ["--inputs"],
                 ["--inputs", "a.npz", "--input", "x=x.npy"]):  # fmt: skip
        done = run_app(custom_op_app, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert "run: usage error:" in done.stderr and "see run --help" in done.stderr


def test_every_dtype_and_nested_outputs_round_trip(tmp_path, rng):
    """The runner's .npy reader and .npz writer: each dtype, 0-d and 1-d shapes, a
    nested tuple of outputs flattened in order, bit-exact."""
    dtypes = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
              "bool"]  # fmt: skip
    shapes = [(), (3,), (2, 3), (1, 2, 2), (5,), (2, 1), (4,), (3, 3), (2, 2)]
    params = [relax.Var(f"a{i}", relax.TensorType(s, d))
              for i, (s, d) in enumerate(zip(shapes, dtypes, strict=True))]  # fmt: skip
    mod = _relax_main(params, lambda bb, *ps: relax.Tuple([relax.Tuple(list(ps[:2])), *ps[2:]]))
    app = _app(tvmext.compile(mod), tmp_path)
    arrays = {}
    for p, shape, dtype in zip(params, shapes, dtypes, strict=True):
        arrays[p.name] = np.abs(rng.standard_normal(shape) * 50).astype(dtype)
    np.savez(tmp_path / "in.npz", **arrays)
    done = run_app(app, "--inputs", "in.npz", "--outputs", "out.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "out.npz") as out:
        assert out.files == [f"output_{i}" for i in range(len(dtypes))]
        for i, want in enumerate(arrays.values()):
            assert out[f"output_{i}"].dtype == want.dtype and out[f"output_{i}"].shape == want.shape
            np.testing.assert_array_equal(out[f"output_{i}"], want)


@pytest.fixture(scope="module")
def leaky():
    return tvmext.native_op(
        "test_deploy.leaky_relu", sources=[NATIVE / "leaky_relu.cc"], forward="leaky_fwd",
        backward="leaky_bwd", infer=lambda x, **_: x, attrs={"alpha": 0.1}, replace=True,
    )  # fmt: skip


def test_native_layer_app_with_npy_inputs(leaky, tmp_path, rng):
    x, y = (relax.Var(n, relax.TensorType((3, 8), "float32")) for n in ("x", "y"))
    mod = _relax_main([x, y], lambda bb, x, y: relax.op.add(bb.emit(leaky(x, alpha=0.3)), y))
    app = _app(tvmext.compile(mod), tmp_path)
    _check_layout(app, {"libtvm_runtime.so", "libtvm_ffi.so"})  # the layer is in model.so
    a, b = (rng.standard_normal((3, 8)).astype("float32") for _ in range(2))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    done = run_app(app, "--input", "y=b.npy", "--input", "x=a.npy", "--outputs", "o.npz",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = np.load(tmp_path / "o.npz")["output_0"]
    np.testing.assert_array_equal(got, tvmext.load(app / "model.so").run(a, b)[0])
    np.testing.assert_allclose(got, np.where(a > 0, a, 0.3 * a) + b, rtol=1e-6)
    assert_self_contained(app, "--input", f"x={tmp_path / 'a.npy'}", "--input",
                          f"y={tmp_path / 'b.npy'}")  # fmt: skip


@pytest.mark.onednn
def test_onednn_app_ships_libdnnl(tmp_path, rng):
    path = save(mlp(), tmp_path, "mlp.onnx")
    module = tvmext.compile(path, "dnnl, llvm", input_shapes="x:[3,32]")
    assert "dnnl" in str(module.reports[0])
    app = _app(module, tmp_path)
    _check_layout(app, {"libtvm_runtime.so", "libtvm_ffi.so", "libdnnl.so.3"})
    x = rng.standard_normal((3, 32)).astype("float32")
    np.savez(tmp_path / "in.npz", x=x)
    done = run_app(app, "--inputs", "in.npz", "--outputs", "o.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    got = np.load(tmp_path / "o.npz")["output_0"]
    np.testing.assert_array_equal(got, tvmext.load(app / "model.so").run(x)[0])
    assert_self_contained(app, "--inputs", tmp_path / "in.npz")
    done = run_app(app, env={"LD_DEBUG": "libs"})
    assert re.search(rf"calling init: {re.escape(str(app))}/lib/libdnnl\.so\.3", done.stderr)


def test_vendor_shared_library_is_copied_into_the_app(tmp_path, rng):
    library = build_vendor_library(tmp_path / "vendor")
    op = tvmext.native_op(
        "test_deploy.vendor_leaky", shared_library=library, forward="leaky_fwd",
        infer=lambda x, **_: x, attrs={"alpha": 0.1}, replace=True,
    )  # fmt: skip
    x = relax.Var("x", relax.TensorType((2, 8), "float32"))
    app = _app(tvmext.compile(_relax_main([x], lambda bb, x: op(x, alpha=0.5))), tmp_path)
    _check_layout(app, {"libtvm_runtime.so", "libtvm_ffi.so", "libleaky_relu.so"})
    library.unlink()  # the app uses its own copy
    a = rng.standard_normal((2, 8)).astype("float32")
    np.save(tmp_path / "a.npy", a)
    done = run_app(app, "--input", "x=a.npy", "--outputs", "o.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "o.npz")["output_0"], np.where(a > 0, a, 0.5 * a))
    assert_self_contained(app, "--input", f"x={tmp_path / 'a.npy'}")


def test_cli_emit_app_with_runtime_weights(tmp_path, rng):
    """ONNX file -> folder: weights kept out of the artifact travel as params.npz, which
    run binds (main_transform_params) unless given --params."""
    save(mlp(), tmp_path, "mlp.onnx")
    done = subprocess.run(
        [str(BIN / "tvmext"), "compile", "mlp.onnx", "--input-shapes", "x:[3,32]", "-o", "m.so",
         "--keep-params-in-input", "--emit-app", "app"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    onednn = "libdnnl.so.3, " if default_target().target != "llvm" else ""
    libraries = f"lib/: {onednn}libtvm_ffi.so, libtvm_runtime.so"
    assert f"wrote app/ ({libraries}); run it: app/run --help" in done.stdout
    app = _move(tmp_path / "app", tmp_path / "moved")
    assert sorted(np.load(app / "params.npz").files) == ["W1", "W2", "b1", "b2"]
    x = rng.standard_normal((3, 32)).astype("float32")
    np.savez(tmp_path / "in.npz", x=x)
    done = run_app(app, "--inputs", "in.npz", "--outputs", "o.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    module = tvmext.load(app / "model.so", params=dict(np.load(app / "params.npz")))
    np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["output_0"], module.run(x)[0])
    weights = dict(np.load(app / "params.npz"))
    weights["W2"] = np.zeros_like(weights["W2"])
    np.savez(tmp_path / "w.npz", **weights)
    done = run_app(app, "--inputs", "in.npz", "--params", "w.npz", "--outputs", "o.npz",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    module.set_params(**weights)
    np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["output_0"], module.run(x)[0])
    (app / "params.npz").unlink()
    done = run_app(app, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "run: error: the model takes its weights at run time (W1, b1, W2, b2): pass them with "
        "--params FILE.npz"
    )


def test_makefile_rebuilds_the_runner_against_lib(custom_op_app, tmp_path):
    app = tmp_path / "app"
    shutil.copytree(custom_op_app, app, symlinks=True)
    (app / "run").unlink()
    done = subprocess.run(["make", "-C", str(app / "src")], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-L../lib" in done.stdout
    done = run_app(app)
    assert done.returncode == 0 and "output_0: [4, 16] float32" in done.stdout, done.stderr


def test_failed_build_leaves_no_folder(tmp_path, monkeypatch):
    x = relax.Var("x", relax.TensorType((2, 2), "float32"))
    module = tvmext.compile(_relax_main([x], lambda bb, x: relax.op.add(x, x)))
    monkeypatch.setenv("CXX", "false")  # a compiler that fails: the runner does not build
    with pytest.raises(tvmext.NativeBuildError, match=r"building the application runner failed "
                       r"\(exit 1\)\.\ncommand: false -std=c\+\+17"):  # fmt: skip
        module.export_app(tmp_path / "app")
    assert os.listdir(tmp_path) == []
    monkeypatch.delenv("CXX")
    module.export_app(tmp_path / "app")
    before = sorted(p.name for p in (tmp_path / "app").rglob("*"))
    monkeypatch.setenv("CXX", "false")
    with pytest.raises(tvmext.NativeBuildError, match="building the application runner failed"):
        module.export_app(tmp_path / "app")
    assert os.listdir(tmp_path) == ["app"]  # the earlier application is left as it was
    assert sorted(p.name for p in (tmp_path / "app").rglob("*")) == before
    (tmp_path / "other").mkdir()
    with pytest.raises(tvmext.TvmextError, match=r"it exists and is not an application folder"):
        module.export_app(tmp_path / "other")


def test_symbolic_batch_takes_any_batch_in_its_bound_but_needs_inputs(tmp_path, rng):
    path = save(mlp(batch="N"), tmp_path, "mlp.onnx")
    app = _app(tvmext.compile(path, shape_bounds="N=1..8"), tmp_path)
    done = run_app(app)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "run: error: input 'x' ([N, 32] float32) is not fully known (symbolic or unknown "
        "shape or dtype): give inputs with --inputs or --input"
    )
    module = tvmext.load(app / "model.so")
    for batch in (1, 5):
        x = rng.standard_normal((batch, 32)).astype("float32")
        np.savez(tmp_path / "in.npz", x=x)
        done = run_app(app, "--inputs", "in.npz", "--outputs", "o.npz", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["output_0"], module.run(x)[0])
    np.savez(tmp_path / "in.npz", x=np.zeros((9, 32), np.float32))
    done = run_app(app, "--inputs", "in.npz", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "run: error: input 'x': dim 0 (N) is 9, outside the bound N=1..8 the model was compiled for"
    )

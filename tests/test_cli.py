"""The command line on real ONNX files: through subprocesses of the installed command,
and in process (``tvmext.cli.main``) where a case checks one error message."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from onnx_models import custom_node_model, mlp, save

from tvmext.cli import main

pytestmark = pytest.mark.native  # compile writes a .so, linked by the C++ compiler

PLUGINS = pathlib.Path(__file__).parent / "plugins"
BIN = pathlib.Path(sys.executable).parent


def cli(*args: str, cwd: pathlib.Path, tool: str = "tvmext") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / tool), *map(str, args)], capture_output=True, text=True, cwd=cwd, check=False
    )


@pytest.fixture
def mlp_path(tmp_path):
    return save(mlp(), tmp_path, "mlp.onnx")


def test_compile_and_run_match_onnxruntime(tmp_path, mlp_path, rng):
    done = cli("compile", mlp_path, "--input-shapes", "x:[3,32]", "-o", "m.so", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote m.so (inputs x: [3, 32] float32)" in done.stdout
    assert "Scope Saving" not in done.stderr  # TVM's per-scope log lines are filtered
    x = rng.standard_normal((3, 32)).astype("float32")
    np.savez(tmp_path / "in.npz", x=x)
    done = cli("run", "m.so", "--inputs", "in.npz", "--outputs", "out.npz", "--print-top", "2",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Scope Loaded" not in done.stderr
    expected = ort.InferenceSession(str(mlp_path)).run(None, {"x": x})[0]
    got = np.load(tmp_path / "out.npz")["output_0"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    best = int(np.argmax(expected.reshape(-1)))
    assert f"output_0 top-2 (index: value): {best}:" in done.stdout


def test_weights_kept_out_of_the_artifact(tmp_path, mlp_path, rng):
    done = cli("compile", mlp_path, "--input-shapes", "x:[3,32]", "-o", "m.so",
               "--keep-params-in-input", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote m.params.npz (4 weights; run --params binds them)" in done.stdout
    assert sorted(np.load(tmp_path / "m.params.npz").files) == ["W1", "W2", "b1", "b2"]
    x = rng.standard_normal((3, 32)).astype("float32")
    np.savez(tmp_path / "in.npz", x=x)
    done = cli("run", "m.so", "--inputs", "in.npz", cwd=tmp_path)
    assert done.returncode == 1
    assert "takes its weights at run time (W1, b1, W2, b2): pass them with --params" in done.stderr
    done = cli("run", "m.so", "--inputs", "in.npz", "--params", "m.params.npz", "--outputs",
               "out.npz", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = ort.InferenceSession(str(mlp_path)).run(None, {"x": x})[0]
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["output_0"], expected, rtol=1e-5,
                               atol=1e-6)  # fmt: skip


def test_tvmc_alias_and_print_time(tmp_path, mlp_path):
    assert cli("compile", mlp_path, "--input-shapes", "x:[2,32]", cwd=tmp_path,
               tool="tvmc").returncode == 0  # fmt: skip
    done = cli("run", "mlp.so", "--print-time", "--repeat", "3", "--number", "2",
               cwd=tmp_path, tool="tvmc")  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = lines.index("Execution time summary:")
    assert lines[header + 1].split() == ["mean", "(ms)", "median", "(ms)", "max", "(ms)", "min",
                                         "(ms)", "std", "(ms)"]  # fmt: skip
    assert all(float(v) > 0 for v in lines[header + 2].split()[:4])


def test_random_inputs_when_none_given(tmp_path, mlp_path):
    cli("compile", mlp_path, "--input-shapes", "x:[2,32]", cwd=tmp_path)
    done = cli("run", "mlp.so", "--outputs", "o.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    y = np.load(tmp_path / "o.npz")["output_0"]
    np.testing.assert_allclose(y.sum(-1), 1, rtol=1e-5)  # a softmax


def test_plugin_file_defines_custom_node(tmp_path, rng):
    path = save(custom_node_model(domain="com.plugintest", op_type="Triple"), tmp_path, "c.onnx")
    done = cli("compile", path, "--plugin", PLUGINS / "good_plugin.py",
               "--input-shapes", "x:[2,16]", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    x = rng.standard_normal((2, 16)).astype("float32")
    np.savez(tmp_path / "in.npz", x=x)
    assert cli("run", "c.so", "--inputs", "in.npz", "--outputs", "o.npz",
               cwd=tmp_path).returncode == 0  # fmt: skip
    np.testing.assert_allclose(np.load(tmp_path / "o.npz")["output_0"], 6 * x, rtol=1e-6)


def test_ops_lists_ops_passes_and_origins(tmp_path):
    done = cli("ops", "--plugin", PLUGINS / "good_plugin.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "tvmext.rms_norm" in out and "tvmext/ops/rms_norm.py" in out
    assert "plugintest.triple" in out and "good_plugin.py" in out
    assert "com.plugintest::Triple" in out
    assert "tvmext.simplify_for_inference" in out and "plugintest.identity" in out


@pytest.fixture(scope="module")
def error_case_dir(tmp_path_factory):
    """A folder with a good artifact and the bad inputs the error cases use."""
    folder = tmp_path_factory.mktemp("errors")
    save(mlp(), folder, "mlp.onnx")
    (folder / "junk.onnx").write_bytes(b"garbage")
    save(custom_node_model(domain="com.none", op_type="Frob"), folder, "c.onnx")
    done = cli("compile", "mlp.onnx", "--input-shapes", "x:[2,32]", "-o", "good.so", cwd=folder)
    assert done.returncode == 0, done.stderr
    np.savez(folder / "wrong.npz", x=np.zeros((2, 5), "float32"))
    np.savez(folder / "other.npz", y=np.zeros((2, 32), "float32"))
    np.save(folder / "single.npy", np.zeros((2, 32), "float32"))
    return folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compile", "missing.onnx"], "compile: error: model file 'missing.onnx' does not exist"),
        (["compile", "junk.onnx"], "compile: error: model file 'junk.onnx' is not a readable"),
        (["compile", "mlp.onnx", "--target", "npu, llvm"], "unknown external target 'npu'"),
        (["compile", "mlp.onnx", "--plugin", "no_such_plugin_module"],
         "plugin 'no_such_plugin_module' not found"),
        (["compile", "mlp.onnx", "--plugin", str(PLUGINS / "broken_plugin.py")],
         "failed to load: RuntimeError: the vendor library is missing"),
        (["compile", "c.onnx"], "node 'custom' (com.none::Frob): no converter"),
        (["run", "missing.so"], "run: error: artifact 'missing.so' does not exist"),
        (["run", "good.so", "--device", "tpu"], "unknown device 'tpu'"),
        (["run", "good.so", "--inputs", "missing.npz"], "inputs file 'missing.npz' does not exist"),
        (["run", "good.so", "--inputs", "wrong.npz"],
         "input 'x': expected float32 of shape [2, 32], got float32 of shape [2, 5]"),
        (["run", "good.so", "--inputs", "other.npz"], "lacks input(s) x; it holds y"),
        (["run", "good.so", "--inputs", "single.npy"], "holds one array; expected an .npz"),
    ],
)  # fmt: skip
def test_user_errors_one_line_exit_1_no_output(error_case_dir, args, message, monkeypatch, capfd):
    # In process: the subprocess tests show that the installed command exits with what
    # main returns, and each case here would otherwise spend its time importing TVM.
    monkeypatch.chdir(error_case_dir)
    before = set(os.listdir(error_case_dir))
    status = main([*args, "-o" if args[0] == "compile" else "--outputs", "result.out"])
    stderr = capfd.readouterr().err
    assert status == 1
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], stderr
    assert "Traceback" not in stderr
    assert set(os.listdir(error_case_dir)) == before


def test_verbose_shows_traceback(tmp_path):
    done = cli("compile", "missing.onnx", "--verbose", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" in done.stderr


def test_usage_errors_exit_2(tmp_path):
    assert cli("compile", cwd=tmp_path).returncode == 2
    assert cli("frobnicate", cwd=tmp_path).returncode == 2
    assert cli("run", "x.so", "--repeat", "many", cwd=tmp_path).returncode == 2
    assert cli("run", "x.so", "--repeat", "0", cwd=tmp_path).returncode == 2


def test_help_does_not_import_tvm():
    code = (
        "import sys; from tvmext.cli import build_parser; build_parser(); "
        "print('tvm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_native_flags_name_the_layer_header_and_tvm_ffi(tmp_path):
    cflags = cli("native-flags", "--cflags", cwd=tmp_path).stdout.split()
    includes = [f[2:] for f in cflags if f.startswith("-I")]
    assert "-std=c++17" in cflags and "-fPIC" in cflags
    assert any(os.path.isfile(os.path.join(d, "tvmext", "layer.h")) for d in includes)
    assert any(os.path.isfile(os.path.join(d, "tvm", "ffi", "function.h")) for d in includes)
    ldflags = cli("native-flags", "--ldflags", cwd=tmp_path).stdout.split()
    assert "-ltvm_ffi" in ldflags
    (lib_dir,) = [f[2:] for f in ldflags if f.startswith("-L")]
    assert os.path.isfile(os.path.join(lib_dir, "libtvm_ffi.so"))
    both = cli("native-flags", cwd=tmp_path).stdout.split()
    assert both == cflags + ldflags

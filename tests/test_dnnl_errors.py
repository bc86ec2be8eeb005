"""Error paths of the oneDNN target: a C++ compile failure, oneDNN missing, bad names."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import tvm
from onnx_models import save
from tvm import relax

import tvmext
from tvmext import environment
from tvmext.target.dnnl import codegen, library

pytestmark = pytest.mark.onednn


def _dense_module(rng):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((3, 5), "float32"))
    w = relax.const(rng.standard_normal((5, 7)).astype(np.float32))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.nn.relu(relax.op.matmul(x, w)))
        bb.emit_func_output(out)
    return bb.get()


def test_generated_cpp_that_fails_to_compile_shows_command_stderr_and_source(
    rng, monkeypatch, tmp_path
):
    generate = codegen.module_source
    monkeypatch.setenv("TVMEXT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(
        codegen, "module_source", lambda fs: generate(fs) + '\nstatic_assert(false, "broken");\n'
    )
    with pytest.raises(tvmext.NativeBuildError) as info:
        tvmext.compile(_dense_module(rng), "dnnl, llvm")
    message = str(info.value)
    assert re.search(r"compiling '.*dnnl_\w+\.cc' failed \(exit 1\)", message)
    assert re.search(r"command: \S*(g\+\+|c\+\+)\S* .*-c .*dnnl_\w+\.cc -o ", message)
    assert "static assertion failed: broken" in message  # the compiler's stderr
    kept = re.search(r"source kept at: (\S+\.cc)", message)
    assert kept is not None
    with open(kept.group(1)) as f:
        assert 'static_assert(false, "broken")' in f.read()


def test_fallback_to_tvm_is_opt_in_and_reported(rng, monkeypatch, tmp_path):
    generate = codegen.module_source
    monkeypatch.setenv("TVMEXT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(codegen, "module_source", lambda fs: generate(fs) + "#error broken\n")
    mod = _dense_module(rng)
    module = tvmext.compile(mod, "dnnl, llvm", fallback_to_tvm=True)
    (report,) = module.reports
    assert [o.placement for o in report.ops] == ["tvm", "tvm"]
    assert report.ops[0].detail.startswith(
        "dnnl code failed to compile; fell back to TVM: compiling '"
    )
    x = rng.standard_normal((3, 5)).astype(np.float32)
    w = mod["main"].body.blocks[0].bindings[0].value.args[1].value.numpy()
    np.testing.assert_allclose(module(x)[0], np.maximum(x @ w, 0), rtol=1e-5, atol=1e-6)


def test_failed_codegen_leaves_no_artifact_from_the_cli(monkeypatch, tmp_path):
    from onnx_cpu_models import mlp

    model = save(mlp(batch=2, d_in=4, d_hidden=8), tmp_path, "mlp.onnx")
    script = (
        "import sys; from tvmext.target.dnnl import codegen; g = codegen.module_source; "
        "codegen.module_source = lambda fs: g(fs) + '#error broken\\n'; "
        "from tvmext.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "compile", str(model), "--target", "dnnl, llvm",
         "-o", str(tmp_path / "mlp.so")],
        capture_output=True, text=True, check=False,
        env={"TVMEXT_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 1
    assert "compile: error: compiling '" in done.stderr and "dnnl_" in done.stderr
    assert not (tmp_path / "mlp.so").exists()
    assert not list(tmp_path.glob(".tvmext-*"))


def test_missing_onednn_says_how_to_install_it(rng, monkeypatch, tmp_path):
    library.find_onednn.cache_clear()
    monkeypatch.delenv(environment.ONEDNN_ROOT.name, raising=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path))
    try:
        with pytest.raises(
            tvmext.CompileError,
            match=r"needs oneDNN's headers and libdnnl\.so .*pip install "
            r"onednn-cpu-gomp==2023\.2\.0 onednn-devel-cpu-gomp==2023\.2\.0",
        ):
            tvmext.compile(_dense_module(rng), "dnnl, llvm")
    finally:
        library.find_onednn.cache_clear()


def test_onednn_root_variable_chooses_the_install(monkeypatch, tmp_path):
    library.find_onednn.cache_clear()
    try:
        monkeypatch.setenv(environment.ONEDNN_ROOT.name, str(tmp_path))
        with pytest.raises(tvmext.CompileError, match=rf"libdnnl\.so in {tmp_path}/include"):
            library.find_onednn()
        monkeypatch.setenv(environment.ONEDNN_ROOT.name, sys.prefix)
        library.find_onednn.cache_clear()
        found = library.find_onednn()
        assert found.lib_dir == f"{sys.prefix}/lib"
        assert re.fullmatch(r"\d+\.\d+\.\d+ (OMP|TBB|SYCL|SEQ|THREADPOOL)", found.version())
    finally:
        library.find_onednn.cache_clear()


def test_unknown_external_target_lists_the_known_ones(rng):
    with pytest.raises(tvmext.CompileError, match=r"unknown external target 'npu' .*known: .*dnnl"):
        tvmext.compile(_dense_module(rng), "npu, llvm")


def test_a_generated_function_called_wrongly_names_its_composite(rng, tmp_path):
    """Each oneDNN function of an artifact checks its arguments and names the pattern row
    and the symbol in its error (a TVM FFI error, not a crash)."""
    path = tvmext.compile(_dense_module(rng), "dnnl, llvm").export(tmp_path / "m.so")
    symbol = "fused_relax_matmul_relax_nn_relu_dnnl"
    function = tvm.runtime.load_module(path).get_function(symbol, query_imports=True)
    x = tvm.runtime.tensor(np.zeros((3, 5), "float32"))
    with pytest.raises(TypeError, match=rf"oneDNN dnnl.dense_post1 \({symbol}\): 1 arguments, "
                       r"expected 3"):  # fmt: skip
        function(x)
    out = tvm.runtime.tensor(np.zeros((3, 7), "float32"))
    with pytest.raises(TypeError, match=rf"oneDNN dnnl.dense_post1 \({symbol}\)"):
        function(x, "not a tensor", out)

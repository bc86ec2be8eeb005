"""Without a target, a compile uses the host's fastest correct configuration and says
which first; ``llvm`` stays plain TVM."""

from __future__ import annotations

import pathlib
import platform
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from onnx_models import mlp, save

import tvmext
from tvmext.target import host_default

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="oneDNN's target is x86-64"
)


@pytest.mark.onednn
def test_the_default_on_x86_64_with_onednn_and_a_compiler_is_dnnl():
    chosen = host_default.default_target()
    assert chosen.target == "dnnl, llvm"
    assert "oneDNN 3.2.0 OMP" in chosen.announcement()
    assert "target 'llvm' for plain TVM" in chosen.announcement()


def test_without_a_compiler_the_default_is_llvm_and_says_why(monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    host_default._host_default.cache_clear()
    try:
        chosen = host_default.default_target()
    finally:
        host_default._host_default.cache_clear()
    assert chosen.target == "llvm"
    assert "'/nonexistent/c++' is missing" in chosen.announcement()


def test_with_tuning_records_the_default_is_the_tuned_llvm():
    chosen = host_default.default_target(tuned=True)
    assert chosen.target == "llvm" and "tuning records given" in chosen.announcement()


@pytest.mark.onednn
def test_compile_without_a_target_offloads_to_onednn_and_says_so(tmp_path, capsys, rng):
    path = save(mlp(), tmp_path, "mlp.onnx")
    module = tvmext.compile(path, input_shapes="x:[4,32]")
    assert "no target given, using 'dnnl, llvm'" in capsys.readouterr().err
    (report,) = module.reports
    assert report.offloaded_fraction() > 0.9, str(report)
    x = rng.standard_normal((4, 32)).astype(np.float32)
    want = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
    np.testing.assert_allclose(module.run(x)[0], want, rtol=1e-5, atol=1e-6)
    assert tvmext.compile(path, "llvm", input_shapes="x:[4,32]").reports == ()


@pytest.mark.onednn
def test_cli_compile_without_a_target_says_which_first(tmp_path):
    path = save(mlp(), tmp_path, "mlp.onnx")
    tool = pathlib.Path(sys.executable).parent / "tvmext"
    done = subprocess.run(
        [str(tool), "compile", str(path), "--input-shapes", "x:[2,32]", "--report"],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("tvmext: no target given, using 'dnnl, llvm'"), done.stdout
    assert "for 'dnnl, llvm'" in lines[1]
    assert any("dnnl" in line for line in lines[2:]), done.stdout

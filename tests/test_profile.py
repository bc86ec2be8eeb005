"""Per-kernel profiles: ``Module.profile`` and ``tvmext run --profile``."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
from onnx_cpu_models import resnet_cnn
from onnx_models import mlp, save

import tvmext
from tvmext.runtime.profiling import BETWEEN_CALLS


@pytest.fixture(scope="module")
def mlp_module():
    return tvmext.compile(mlp(), "llvm", input_shapes={"x": (8, 32)})


def test_profile_times_every_kernel_of_the_model(mlp_module):
    profile = mlp_module.profile(repeat=5)
    names = [r.name for r in profile.rows]
    kernels = [n for n in names if not n.startswith("(")]
    assert {"fused_matmul_add_relu", "fused_matmul1_add1", "softmax"} <= set(kernels), names
    assert BETWEEN_CALLS in names
    assert [r.seconds for r in profile.rows] == sorted(
        (r.seconds for r in profile.rows), reverse=True
    )
    assert sum(r.share for r in profile.rows) == pytest.approx(1.0, abs=1e-6)
    assert all(r.calls >= 1 and r.seconds > 0 for r in profile.rows)
    assert profile.repeat == 5 and profile.total > 0
    text = str(profile)
    assert text.splitlines()[0].split() == ["time", "(ms)", "share", "calls", "kernel"]
    assert "total (mean of 5)" in text.splitlines()[-1]


def test_profile_rejects_a_repeat_below_one(mlp_module):
    with pytest.raises(ValueError, match="repeat must be at least 1, got 0"):
        mlp_module.profile(repeat=0)


def test_profile_leaves_the_module_running_as_before(mlp_module, rng):
    x = rng.standard_normal((8, 32)).astype("float32")
    before = mlp_module.run(x)[0]
    mlp_module.profile(x, repeat=2)
    assert (mlp_module.run(x)[0] == before).all()


@pytest.mark.onednn
def test_profile_names_external_onednn_calls():
    module = tvmext.compile(resnet_cnn(), "dnnl, llvm")
    names = [r.name for r in module.profile(repeat=3).rows]
    assert any(n.endswith("_dnnl") for n in names), names


@pytest.mark.native
def test_cli_run_profile_prints_the_table(tmp_path):
    path = save(mlp(), tmp_path, "mlp.onnx")
    tool = str(pathlib.Path(sys.executable).parent / "tvmext")
    done = subprocess.run(
        [tool, "compile", str(path), "--input-shapes", "x:[4,32]", "-o", "m.so"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [tool, "run", "m.so", "--profile", "--repeat", "3"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Profile (mean per run of 3):"
    assert "kernel" in lines[1] and "total (mean of 3)" in lines[-1]
    assert any("fused_" in line for line in lines)

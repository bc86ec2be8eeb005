"""The examples run, and the bundled model is what its script builds."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np

import tvmext

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

import make_acme_model  # noqa: E402


def test_bundled_model_matches_its_script():
    on_disk = (EXAMPLES / "models" / "acme_mlp.onnx").read_bytes()
    assert make_acme_model.build().SerializeToString() == on_disk


def test_acme_model_with_plugin_matches_numpy(rng):
    module = tvmext.compile(
        EXAMPLES / "models" / "acme_mlp.onnx", plugins=[str(EXAMPLES / "acme_plugin.py")]
    )
    model = make_acme_model.build()
    w = {t.name: np.frombuffer(t.raw_data, np.float32).reshape(t.dims) for t in
         model.graph.initializer}  # fmt: skip
    x = rng.standard_normal((7, 64)).astype("float32")
    hidden = x @ w["W1"] + w["b1"]
    expected = (np.logaddexp(0, hidden) - 0.5) @ w["W2"] + w["b2"]
    np.testing.assert_allclose(module(x)[0], expected, rtol=1e-4, atol=1e-5)


def test_relax_quickstart_runs():
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "relax_quickstart.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "max abs difference vs NumPy" in done.stdout

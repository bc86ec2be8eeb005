"""Real architectures (``transformers`` model definitions, ``torch.onnx`` export) through
``tvmext.compile`` on both CPU targets, with schedule verification on, against ONNX
Runtime and PyTorch.

The models are small configurations of the real code, so that every block kind is
there (depthwise and squeeze-excitation convolutions, asymmetric "same" pads,
ConvNeXt's LayerNorm block, attention with a padding mask, a causal decoder). They run
in one xdist group: each compile uses both cores' worth of work, and the group keeps
one worker on them while the other runs the rest of the suite.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from model_zoo import MODELS, export

import tvmext

pytestmark = [pytest.mark.xdist_group("model_zoo")]

RTOL = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    folder = str(tmp_path_factory.mktemp("zoo"))
    return {name: export(name, folder) for name in MODELS}


def _relative(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


@pytest.mark.library
@pytest.mark.parametrize("target", ["llvm", "dnnl, llvm"])
@pytest.mark.parametrize("name", list(MODELS))
def test_model_matches_onnxruntime_and_pytorch(exported, name, target):
    path, inputs, from_torch = exported[name]
    assert np.max(np.abs(from_torch)) > 0.1  # well-scaled: a vanished output proves nothing
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    from_ort = ort.InferenceSession(path, options).run(None, inputs)[0]

    module = tvmext.compile(path, target, verify_schedules=True)
    out = module.run(**inputs)[0]

    assert out.shape == from_ort.shape
    assert _relative(out, from_ort) < RTOL, f"{name} on {target!r} differs from ONNX Runtime"
    assert _relative(out, from_torch) < RTOL, f"{name} on {target!r} differs from PyTorch"


def test_bert_padding_mask_changes_the_padded_sequence(exported):
    path, inputs, _ = exported["bert"]
    module = tvmext.compile(path, "llvm")
    unmasked = dict(inputs, attention_mask=np.ones_like(inputs["attention_mask"]))
    masked_out, unmasked_out = module.run(**inputs)[0], module.run(**unmasked)[0]
    np.testing.assert_allclose(masked_out[0], unmasked_out[0], rtol=1e-5, atol=1e-6)
    assert _relative(masked_out[1], unmasked_out[1]) > 1e-2

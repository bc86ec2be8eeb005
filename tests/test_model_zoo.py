"""Real architectures (``transformers`` model definitions, ``torch.onnx`` export) through
``tvmext.compile`` on both CPU targets, against ONNX Runtime and PyTorch.

The models (``model_zoo.MODELS``: CNNs, vision transformers, detection and
segmentation heads, text encoders and decoders, speech encoders) are small
configurations of the real code, so that every block kind is there.

Every model runs on ``llvm``; the seven first models of the zoo (the ones it had before
it grew) with schedule verification on, the others without it (verification compiles
and runs every kernel twice). On ``"dnnl, llvm"`` (the default target) the default run
takes those seven and one model per kind of block oneDNN took over since
(``ON_ONEDNN``): each oneDNN compile builds its generated C++ with g++, about 15 s a
model with a cold cache, and the zoo must fit the suite's time.
The others on ``"dnnl, llvm"`` are marked ``full``: ``bash dev.sh test -m full``
runs them (about 20 minutes).

The suite runs each file on one worker (``--dist loadfile``): the zoo is exported once,
and one worker compiles it while the other runs the rest of the suite.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from model_zoo import MODELS, export

import tvmext

RTOL = 1e-4
TARGETS = ("llvm", "dnnl, llvm")
# The zoo's first models: compiled with verify_schedules=True on llvm.
VERIFIED = ("resnet", "mobilenet_v2", "efficientnet", "convnext", "vit", "bert", "gpt2")
# The default run compiles these for "dnnl, llvm" (the default target): the first
# models, and one of each family for what oneDNN runs since (windowed attention with a
# broadcast mask, 1-D convolutions, transposed convolutions, resampling, BatchNorm after
# dense layers, grouped-query attention with RMSNorm).
ON_ONEDNN = (*VERIFIED, "swin", "wav2vec2", "dpt", "segformer", "levit", "llama")
# (model, target): why tvmext gets it wrong. strict: a fix makes the test fail until
# the entry goes.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


def _cases() -> list:
    cases = []
    for name in MODELS:
        for target in TARGETS:
            bug = KNOWN_BUGS.get((name, target))
            marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
            if target != "llvm" and name not in ON_ONEDNN:
                marks.append(pytest.mark.full)
            cases.append(pytest.param(name, target, marks=marks, id=f"{name}-{target}"))
    return cases


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    folder = str(tmp_path_factory.mktemp("zoo"))
    return {name: export(name, folder) for name in MODELS}


def _relative(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


@pytest.mark.onednn
@pytest.mark.parametrize(("name", "target"), _cases())
def test_model_matches_onnxruntime_and_pytorch(exported, name, target):
    path, inputs, from_torch = exported[name]
    assert np.max(np.abs(from_torch)) > 0.1  # well-scaled: a vanished output proves nothing
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    from_ort = ort.InferenceSession(path, options).run(None, inputs)[0]
    assert _relative(from_ort, from_torch) < RTOL, f"{name}: the export differs from PyTorch"

    verify = target == "llvm" and name in VERIFIED
    module = tvmext.compile(path, target, verify_schedules=verify)
    out = module.run(**inputs)[0]

    assert out.shape == from_ort.shape
    assert _relative(out, from_ort) < RTOL, f"{name} on {target!r} differs from ONNX Runtime"
    assert _relative(out, from_torch) < RTOL, f"{name} on {target!r} differs from PyTorch"


def test_zoo_covers_every_family():
    from model_zoo import FAMILIES

    assert len(MODELS) >= 30
    assert {m.family for m in MODELS.values()} == set(FAMILIES)


def test_bert_padding_mask_changes_the_padded_sequence(exported):
    path, inputs, _ = exported["bert"]
    module = tvmext.compile(path, "llvm")
    unmasked = dict(inputs, attention_mask=np.ones_like(inputs["attention_mask"]))
    masked_out, unmasked_out = module.run(**inputs)[0], module.run(**unmasked)[0]
    np.testing.assert_allclose(masked_out[0], unmasked_out[0], rtol=1e-5, atol=1e-6)
    assert _relative(masked_out[1], unmasked_out[1]) > 1e-2

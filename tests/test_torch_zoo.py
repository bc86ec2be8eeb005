"""The zoo through ``torch.export`` directly (no ONNX): ``tvmext.compile(module,
example_inputs=...)`` on both CPU targets against PyTorch eager, and a text model with
its batch and sequence as ``torch.export.Dim`` at three sizes.

The default run takes three of them (``DEFAULT``); ``-m full`` runs the whole zoo on
both targets.
"""

from __future__ import annotations

import pytest
import torch
from conftest import relative_error
from model_zoo import MODELS, resized_inputs, torch_model

import tvmext

RTOL = 1e-4
TARGETS = ("llvm", "dnnl, llvm")
# The default run: a CNN on the default target and a decoder on both (with the BERT
# test below, an encoder); each compile of a transformers model takes 5 to 30 s.
DEFAULT = {("resnet", "dnnl, llvm"), ("llama", "llvm"), ("llama", "dnnl, llvm")}


def _cases() -> list:
    return [
        pytest.param(
            name,
            target,
            marks=[] if (name, target) in DEFAULT else [pytest.mark.full],
            id=f"{name}-{target}",
        )
        for name in MODELS
        for target in TARGETS
    ]


@pytest.mark.parametrize(("name", "target"), _cases())
def test_zoo_model_from_torch_export(name: str, target: str) -> None:
    model, inputs = torch_model(name)
    args = tuple(torch.from_numpy(v) for v in inputs.values())
    with torch.no_grad():
        want = model(*args).numpy()
    compiled = tvmext.compile(model, target, example_inputs=args)
    got = compiled(*inputs.values())
    assert got.shape == want.shape
    assert relative_error(got, want) < RTOL


@pytest.mark.native
def test_text_model_with_dynamic_batch_and_sequence() -> None:
    model, inputs = torch_model("bert")
    batch, seq = torch.export.Dim("batch", min=1, max=8), torch.export.Dim("seq", min=2, max=64)
    dims = {"args": tuple({0: batch, 1: seq} for _ in inputs)}  # forward(*args)
    example = resized_inputs("bert", 2, 16)
    args = tuple(torch.from_numpy(v) for v in example.values())
    compiled = tvmext.compile(model, "dnnl, llvm", example_inputs=args, dynamic_shapes=dims)
    assert compiled.inputs[0].shape == ("batch", "seq")
    assert compiled.shape_bounds == {"batch": (1, 8), "seq": (2, 64)}
    for b, s in ((1, 5), (3, 32), (8, 64)):
        sized = resized_inputs("bert", b, s)
        with torch.no_grad():
            want = model(*(torch.from_numpy(v) for v in sized.values())).numpy()
        assert relative_error(compiled(*sized.values()), want) < RTOL

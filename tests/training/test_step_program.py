"""One compiled training step against PyTorch: losses, optimizers, GHM-C state."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch
import tvm
from models import swish_mlp, torch_twin
from tvm import relax
from tvm.relax.frontend import nn

import tvmext
from tvmext import ModelError, ShapeError, TvmextError, training
from tvmext.ops import ghmc_loss
from tvmext.pass_registry import PASSES, register_pass
from tvmext.training.compiled_step import apply_step

BATCH = 8


def _torch_loss(name: str, logits: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    if name == "ce":
        return torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
    target = torch.tensor(np.eye(5, dtype=np.float32)[labels])
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)


@pytest.mark.parametrize(
    ("loss", "optimizer", "torch_optimizer"),
    [
        ("ce", training.SGD(), lambda p: torch.optim.SGD(p, lr=0.1)),
        (
            "ce",
            training.SGD(momentum=0.9, weight_decay=1e-3, nesterov=True),
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True),
        ),
        (
            "bce",
            training.Adam(weight_decay=1e-3),
            lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=1e-3),
        ),
    ],
)
def test_steps_match_pytorch(rng, loss, optimizer, torch_optimizer):
    spec = training.SoftmaxCrossEntropy() if loss == "ce" else training.SigmoidBCE()
    program = training.StepProgram(swish_mlp(), spec, optimizer, batch_size=BATCH)
    step = program.compile()
    state = program.initial_state(seed=3)
    model = torch_twin(state.params_numpy())
    opt = torch_optimizer(model.parameters())
    for _ in range(4):
        x = rng.standard_normal((BATCH, 16)).astype(np.float32)
        labels = rng.integers(0, 5, BATCH)
        ours = step.step(state, x, training.one_hot(labels, 5), 0.1)
        opt.zero_grad()
        theirs = _torch_loss(loss, model(torch.tensor(x)), labels)
        theirs.backward()
        opt.step()
        assert ours == pytest.approx(theirs.item(), rel=1e-5)
    got = state.params_numpy()
    np.testing.assert_allclose(got["fc1.weight"], model[0].weight.detach().numpy(), atol=5e-5)
    np.testing.assert_allclose(got["fc2.bias"], model[2].bias.detach().numpy(), atol=5e-5)
    assert state.step == 4
    logits = step.predict(state, x[:3])  # predict takes any batch size
    np.testing.assert_allclose(logits, model(torch.tensor(x[:3])).detach().numpy(), atol=1e-4)


def test_ghmc_state_threads_through_steps(rng):
    loss = training.GHMC(bins=10, momentum=0.75)
    program = training.StepProgram(swish_mlp(), loss, training.SGD(), batch_size=BATCH)
    step = program.compile()
    state = program.initial_state(seed=0)
    counts = np.zeros(10, np.float32)
    for _ in range(3):
        x = rng.standard_normal((BATCH, 16)).astype(np.float32)
        target = training.one_hot(rng.integers(0, 5, BATCH), 5)
        logits = step.predict(state, x)
        ones = np.ones_like(target)
        want, counts = ghmc_loss.reference_fn(
            logits, target, ones, counts, bins=10, momentum=0.75, loss_weight=1.0
        )
        got = step.step(state, x, target, 0.05)
        assert got == pytest.approx(float(want), rel=1e-5)
        np.testing.assert_allclose(state.loss[0].numpy(), counts, rtol=1e-6)


def test_checkpoint_round_trip(tmp_path, rng):
    program = training.StepProgram(
        swish_mlp(), training.SoftmaxCrossEntropy(), training.Adam(), batch_size=BATCH
    )
    step = program.compile()
    state = program.initial_state(seed=1)
    x, target = rng.random((BATCH, 16), np.float32), training.one_hot(np.arange(BATCH) % 5, 5)
    step.step(state, x, target, 0.01)
    path = state.save(tmp_path / "ckpt.npz")
    after_save = step.step(state, x, target, 0.01)
    restored = program.initial_state(seed=99)
    restored.load(path)
    assert restored.step == 1
    assert step.step(restored, x, target, 0.01) == after_save
    for a, b in zip(restored.params, state.params, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    other = training.StepProgram(
        swish_mlp(), training.SoftmaxCrossEntropy(), training.SGD(momentum=0.9), batch_size=BATCH
    ).initial_state()
    with pytest.raises(
        TvmextError, match="holds 9 optimizer state arrays, this training step has 4"
    ):
        other.load(path)


def test_bad_inputs_are_named():
    mlp = swish_mlp()
    ce, sgd = training.SoftmaxCrossEntropy(), training.SGD()
    with pytest.raises(ModelError, match="no Relax function 'main'"):
        training.StepProgram(mlp, ce, sgd, batch_size=4, func="main")
    with pytest.raises(ShapeError, match="batch_size must be >= 1"):
        training.StepProgram(mlp, ce, sgd, batch_size=0)
    with pytest.raises(ModelError, match="one data input followed by the weights"):
        training.StepProgram(mlp, ce, sgd, batch_size=4, num_input=2)
    bb = relax.BlockBuilder()
    x, w = (
        relax.Var("x", relax.TensorType((4, 16), "float32")),
        relax.Var("w", relax.TensorType((16,), "float32")),
    )
    with bb.function("forward", [x, w]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.sum(relax.op.multiply(x, w), axis=[1]))
        bb.emit_func_output(out)
    with pytest.raises(ShapeError, match=r"must return logits \(batch, classes\)"):
        training.StepProgram(bb.get(), ce, sgd, batch_size=4)
    with pytest.raises(TvmextError, match=r"nesterov=True\) needs momentum > 0"):
        training.SGD(nesterov=True)
    with pytest.raises(TvmextError, match="eps=0 must be > 0"):
        training.Adam(eps=0)
    program = training.StepProgram(mlp, ce, sgd, batch_size=4)
    with pytest.raises(ShapeError, match=r"'fc1.weight' has shape \[2, 2\], expected \[32, 16\]"):
        program.initial_state({**program.initial_state().params_numpy(), "fc1.weight": np.eye(2)})
    with pytest.raises(ShapeError, match="missing"):
        program.initial_state({"fc1.weight": np.zeros((32, 16))})
    with pytest.raises(ShapeError, match=r"class ids in \[0, 5\)"):
        training.one_hot(np.array([0, 7]), 5)
    with pytest.raises(TvmextError, match=r"momentum=1\.5"):
        training.SGD(momentum=1.5)
    step = program.compile()
    with pytest.raises(ShapeError, match="built for batch_size=4"):
        step.step(program.initial_state(), np.zeros((3, 16), np.float32), np.zeros((3, 5)), 0.1)


@pytest.mark.native
def test_native_layer_trains_and_exports(rng, tmp_path):
    native = pathlib.Path(__file__).parent.parent / "native" / "leaky_relu.cc"
    leaky = tvmext.native_op(
        "test_training.leaky_relu",
        sources=[native],
        forward="leaky_fwd",
        backward="leaky_bwd",
        infer=lambda x, **_: x,
        attrs={"alpha": 0.1},
        replace=True,
    )

    class Net(nn.Module):
        def __init__(self) -> None:
            self.fc1 = nn.Linear(16, 32)
            self.fc2 = nn.Linear(32, 5)

        def forward(self, x: nn.Tensor) -> nn.Tensor:
            h = nn.op.wrap_nested(leaky(self.fc1(x)._expr, alpha=0.1), name="leaky")
            return self.fc2(h)

    mod, _ = Net().export_tvm({"forward": {"x": nn.spec.Tensor(("n", 16), "float32")}})
    program = training.StepProgram(
        mod, training.SoftmaxCrossEntropy(), training.SGD(momentum=0.9), batch_size=BATCH
    )
    step = program.compile()
    state = program.initial_state(seed=2)
    params = state.params_numpy()
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 32), torch.nn.LeakyReLU(0.1), torch.nn.Linear(32, 5)
    )
    with torch.no_grad():
        for i, name in ((0, "fc1"), (2, "fc2")):
            model[i].weight.copy_(torch.tensor(params[f"{name}.weight"]))
            model[i].bias.copy_(torch.tensor(params[f"{name}.bias"]))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = rng.standard_normal((BATCH, 16)).astype(np.float32)
    labels = rng.integers(0, 5, BATCH)
    for _ in range(3):
        ours = step.step(state, x, training.one_hot(labels, 5), 0.1)
        opt.zero_grad()
        theirs = _torch_loss("ce", model(torch.tensor(x)), labels)
        theirs.backward()
        opt.step()
        assert ours == pytest.approx(theirs.item(), rel=1e-5)
    # The exported step carries the native layer's object: it runs in a fresh VM.
    vm = relax.VirtualMachine(tvm.runtime.load_module(step.export(tmp_path / "step.so")), tvm.cpu())
    reloaded = program.initial_state(state.params_numpy())
    reloaded.optimizer = [tvm.runtime.tensor(t.numpy()) for t in state.optimizer]
    args = [tvm.runtime.tensor(a) for a in (x, training.one_hot(labels, 5), np.float32(0.1))]
    exported_loss = float(apply_step(vm["train_step"], reloaded, *args).numpy())
    assert exported_loss == pytest.approx(step.step(state, x, training.one_hot(labels, 5), 0.1))


@pytest.mark.onednn
def test_onednn_mode_trains_like_tvm(rng):
    program = training.StepProgram(
        swish_mlp(64), training.SoftmaxCrossEntropy(), training.SGD(momentum=0.9), batch_size=16
    )
    ours = program.compile()
    onednn = program.compile(training.ONEDNN)
    (report,) = onednn.reports
    # Matmuls go to oneDNN; a momentum update whose intermediate is also a step output
    # (the new velocity) must stay on TVM, with the reason.
    assert any(op.placement == "dnnl" for op in report.ops)
    assert any("also an output of the function" in op.detail for op in report.ops)
    a, b = program.initial_state(seed=0), program.initial_state(seed=0)
    x = rng.standard_normal((16, 16)).astype(np.float32)
    target = training.one_hot(rng.integers(0, 5, 16), 5)
    for _ in range(3):
        assert onednn.step(b, x, target, 0.1) == pytest.approx(
            ours.step(a, x, target, 0.1), rel=1e-5
        )


@pytest.mark.onednn
def test_onednn_mode_runs_the_targets_passes():
    """The training step goes through the compiler's pipeline: the passes registered for
    the dnnl target run on it (before partitioning), inference-only ones do not."""
    seen: list[str] = []

    def probe(tag: str) -> tvm.transform.Pass:
        @tvm.transform.module_pass(opt_level=0, name=f"test.{tag}")
        def run(mod, _ctx):
            if "train_step" in [gv.name_hint for gv in mod.get_global_vars()]:
                seen.append(tag)
            return mod

        return run

    register_pass("test_training.layout_probe", phase="layout", targets=("dnnl",), replace=True)(
        lambda: probe("layout")
    )
    register_pass(
        "test_training.inference_probe", phase="prepare", targets=("dnnl",),
        inference_only=True, replace=True,
    )(lambda: probe("inference"))  # fmt: skip
    try:
        program = training.StepProgram(
            swish_mlp(32), training.SoftmaxCrossEntropy(), training.SGD(), batch_size=16
        )
        program.compile(training.ONEDNN)
        assert seen == ["layout"]
        program.compile()  # an llvm mode: dnnl's passes stay out
        assert seen == ["layout"]
    finally:
        PASSES.remove("test_training.layout_probe")
        PASSES.remove("test_training.inference_probe")

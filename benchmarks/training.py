"""Training-step throughput: tvmext's compiled step against PyTorch CPU eager.

Run: .venv/bin/python benchmarks/training.py

The same MLP (64 -> H (swish) -> H (ReLU) -> 10, examples/digits_ghmc.py) and the
same loss and optimizer (SGD with momentum 0.9) in both, same initial weights, same
thread count. One step = forward, loss, backward and update on one batch. Prints
samples per second and the ratio tvmext / PyTorch; before timing it checks that one
step of each gives the same loss.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
from digits_ghmc import mlp_module
from ghmc import torch_ghmc
from timing import median_seconds, settle

from tvmext import training

THREADS = os.cpu_count() or 1
CASES = [(64, 128), (128, 256), (256, 512)]
BINS, MOMENTUM = 10, 0.75


def torch_mlp(params: dict[str, np.ndarray], hidden: int) -> torch.nn.Sequential:
    model = torch.nn.Sequential(
        torch.nn.Linear(64, hidden),
        torch.nn.SiLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    )
    with torch.no_grad():
        for i, name in ((0, "fc1"), (2, "fc2"), (4, "fc3")):
            model[i].weight.copy_(torch.tensor(params[f"{name}.weight"]))
            model[i].bias.copy_(torch.tensor(params[f"{name}.bias"]))
    return model


def bench(loss_name: str, batch: int, hidden: int) -> None:
    loss = (
        training.SoftmaxCrossEntropy()
        if loss_name == "softmax_ce"
        else training.GHMC(bins=BINS, momentum=MOMENTUM)
    )
    program = training.StepProgram(
        mlp_module(hidden), loss, training.SGD(momentum=0.9), batch_size=batch
    )
    steps = {mode.name: program.compile(mode) for mode in (training.OPTIMIZED, training.ONEDNN)}
    rng = np.random.default_rng(0)
    x = rng.random((batch, 64), np.float32)
    labels = rng.integers(0, 10, batch)
    target = training.one_hot(labels, 10)

    model = torch_mlp(program.initial_state(seed=0).params_numpy(), hidden)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt, yt, tt = torch.tensor(x), torch.tensor(labels), torch.tensor(target)
    acc = torch.zeros(BINS)
    ones = torch.ones_like(tt)

    def torch_step() -> float:
        nonlocal acc
        opt.zero_grad()
        logits = model(xt)
        if loss_name == "softmax_ce":
            value = torch.nn.functional.cross_entropy(logits, yt)
        else:
            value, acc = torch_ghmc(logits, tt, ones, acc, bins=BINS, momentum=MOMENTUM)
        value.backward()
        opt.step()
        return value.item()

    theirs_first = torch_step()
    settle()
    t_torch = median_seconds(torch_step, repeat=50, warmup=5)
    line = f"{loss_name:10} b{batch:<4} h{hidden:<4} PyTorch {t_torch * 1e6:7.0f} us"
    for name, step in steps.items():
        t_ours = time_step(program, step, x, target, theirs_first)
        line += (
            f"  {name} {t_ours * 1e6:7.0f} us ({batch / t_ours:7.0f}/s) {t_torch / t_ours:5.2f}x"
        )
    print(line)


def time_step(
    program: training.StepProgram,
    step: training.CompiledStep,
    x: np.ndarray,
    target: np.ndarray,
    expected_first_loss: float,
) -> float:
    """Median seconds of one compiled step, after checking its first loss."""
    state = program.initial_state(seed=0)
    first = step.step(state, x, target, 0.01)
    assert abs(first - expected_first_loss) <= 1e-4 * abs(expected_first_loss), (step, first)
    xb, tb = step.upload(x, target)
    settle()
    return median_seconds(lambda: step.run(state, xb, tb, 0.01).numpy(), repeat=50, warmup=5)


def main() -> None:
    torch.set_num_threads(THREADS)
    print(
        f"training step, SGD momentum 0.9, {THREADS} threads; "
        f"ratio = PyTorch time / tvmext time per mode"
    )
    for loss_name in ("softmax_ce", "ghmc"):
        for batch, hidden in CASES:
            bench(loss_name, batch, hidden)


if __name__ == "__main__":
    main()

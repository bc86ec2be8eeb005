"""Small models for the training tests, built with relax.frontend.nn."""

from __future__ import annotations

import numpy as np
import torch
from tvm.relax.frontend import nn

from tvmext.ops import swish


class SwishMLP(nn.Module):
    """16 -> hidden (swish, a tvmext custom op) -> 5."""

    def __init__(self, hidden: int) -> None:
        self.fc1 = nn.Linear(16, hidden)
        self.fc2 = nn.Linear(hidden, 5)

    def forward(self, x: nn.Tensor) -> nn.Tensor:
        return self.fc2(nn.op.wrap_nested(swish(self.fc1(x)._expr), name="swish"))


def swish_mlp(hidden: int = 32):
    mod, _ = SwishMLP(hidden).export_tvm({"forward": {"x": nn.spec.Tensor(("n", 16), "float32")}})
    return mod


def torch_twin(params: dict[str, np.ndarray]) -> torch.nn.Sequential:
    """The same MLP in PyTorch, with ``params`` copied in."""
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.SiLU(), torch.nn.Linear(32, 5))
    with torch.no_grad():
        for i, name in ((0, "fc1"), (2, "fc2")):
            model[i].weight.copy_(torch.tensor(params[f"{name}.weight"]))
            model[i].bias.copy_(torch.tensor(params[f"{name}.bias"]))
    return model


def blobs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Five separable Gaussian blobs in 16 dimensions: (x, labels)."""
    centers = rng.standard_normal((5, 16)).astype(np.float32) * 3
    labels = rng.integers(0, 5, n)
    x = centers[labels] + rng.standard_normal((n, 16)).astype(np.float32)
    return x.astype(np.float32), labels

"""GHM-C against sigmoid BCE and softmax cross-entropy on class-imbalanced digits.

scikit-learn's bundled digits (1,797 8x8 images, no download) are split 60/40 per
class; in the training part the rare classes keep only a fraction of their rows, the
test part stays balanced. An MLP with tvmext's ``swish`` custom op is trained with each
loss over several seeds; the table gives macro-F1 and the mean accuracy on the rare
classes.

Run: .venv/bin/python examples/digits_ghmc.py [--seeds 3] [--epochs 40]
"""

from __future__ import annotations

import argparse

import numpy as np
from tvm.relax.frontend import nn

from tvmext import training
from tvmext.ops import swish

RARE = (3, 5, 8)
KEEP = 0.08
HIDDEN = 128


def imbalanced_digits(
    seed: int, rare: tuple[int, ...] = RARE, keep: float = KEEP
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): features scaled to [0, 1]; in training, the
    ``rare`` classes keep a fraction ``keep`` of their rows (at least 3)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in range(10):
        rows = rng.permutation(np.flatnonzero(y == c))
        cut = int(0.6 * len(rows))
        kept = max(3, int(keep * cut)) if c in rare else cut
        train += list(rows[:kept])
        test += list(rows[cut:])
    train_rows = rng.permutation(train)
    return x[train_rows], y[train_rows], x[test], y[test]


class MLP(nn.Module):
    """64 -> HIDDEN (swish, a tvmext custom op) -> HIDDEN (ReLU) -> 10."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        self.fc1 = nn.Linear(64, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, 10)

    def forward(self, x: nn.Tensor) -> nn.Tensor:
        h = nn.op.wrap_nested(swish(self.fc1(x)._expr), name="swish")
        return self.fc3(nn.op.relu(self.fc2(h)))


def mlp_module(hidden: int = HIDDEN):
    """The MLP as a Relax module with a dynamic batch: ``forward(x, weights...)``."""
    mod, _ = MLP(hidden).export_tvm({"forward": {"x": nn.spec.Tensor(("n", 64), "float32")}})
    return mod


LOSSES = {
    "softmax_ce": training.SoftmaxCrossEntropy(),
    "sigmoid_bce": training.SigmoidBCE(),
    "ghmc": training.GHMC(bins=10, momentum=0.75),
}


def digits_program(loss_name: str, batch_size: int = 32) -> training.StepProgram:
    """The MLP's training step with loss ``loss_name`` and Adam."""
    return training.StepProgram(
        mlp_module(), LOSSES[loss_name], training.Adam(), batch_size=batch_size
    )


def run(program: training.StepProgram, seed: int, epochs: int) -> dict[str, float]:
    """Train ``program``'s model from ``seed`` (the data split and the initial weights;
    the program compiles once for all seeds); return macro-F1, accuracy and the rare
    classes' mean recall."""
    x, y, xt, yt = imbalanced_digits(seed)
    trainer = training.Trainer(program, lr=3e-3, seed=seed, progress=False)
    trainer.fit(x, y, epochs=epochs)
    pred = trainer.predict(xt).argmax(axis=1)
    recall = training.per_class_recall(pred, yt, 10)
    return {
        "macro_f1": training.macro_f1(pred, yt, 10),
        "accuracy": training.accuracy(pred, yt),
        "rare_recall": float(np.mean(recall[list(RARE)])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    print(f"{'loss':12} {'macro-F1':>16} {'accuracy':>16} {'rare recall':>16}")
    for name in LOSSES:
        program = digits_program(name)
        scores = [run(program, seed, args.epochs) for seed in range(args.seeds)]
        cells = []
        for key in ("macro_f1", "accuracy", "rare_recall"):
            values = np.array([s[key] for s in scores])
            cells.append(f"{values.mean():.3f} ± {values.std():.3f}")
        print(f"{name:12} " + " ".join(f"{c:>16}" for c in cells))


if __name__ == "__main__":
    main()

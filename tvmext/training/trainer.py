"""A training loop over a compiled step: epochs, batches, metrics, checkpoints.

The parameters stay on the device between steps; a mode switch (by hand with
:meth:`Trainer.switch`, or by a :class:`~tvmext.training.ModeSelector`) swaps the
compiled step under the same state, without restarting.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from tvmext.errors import ShapeError
from tvmext.training.compiled_step import CompiledStep
from tvmext.training.metrics import accuracy, macro_f1
from tvmext.training.modes import OPTIMIZED, Mode
from tvmext.training.step_program import StepProgram
from tvmext.training.train_state import TrainState


class StageSelector(Protocol):
    """What the trainer asks a mode selector (:class:`~tvmext.training.ModeSelector`)."""

    stage_batches: int

    def wants(self, epoch: int) -> bool: ...

    def run_stage(self, trainer: Trainer, batches: list[Any], lr: float) -> list[float]: ...


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """float32 one-hot rows of integer ``labels``; a label out of range is a ShapeError."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or (len(labels) and not 0 <= labels.min() <= labels.max() < num_classes):
        raise ShapeError(
            f"training: labels must be a vector of class ids in [0, {num_classes}), got "
            f"shape {list(labels.shape)}"
            + (f", range [{labels.min()}, {labels.max()}]" if labels.size else "")
        )
    return np.eye(num_classes, dtype=np.float32)[labels]


class Trainer:
    """Train ``program`` from ``state`` (default: fresh, seeded) in ``mode``.

    ``lr`` is a float or a function of the epoch. ``selector`` chooses the mode at its
    stages. ``checkpoint_dir`` receives ``last.npz`` after every epoch.
    """

    def __init__(
        self,
        program: StepProgram,
        *,
        mode: Mode = OPTIMIZED,
        lr: float | Callable[[int], float] = 1e-3,
        state: TrainState | None = None,
        seed: int = 0,
        selector: StageSelector | None = None,
        progress: bool = True,
        checkpoint_dir: str | None = None,
    ) -> None:
        self.program, self.seed, self.selector = program, seed, selector
        self.lr_at = lr if callable(lr) else (lambda _epoch: float(lr))
        self.state = state if state is not None else program.initial_state(seed=seed)
        self.progress, self.checkpoint_dir = progress, checkpoint_dir
        self.step = self.compiled(mode)
        self.history: list[dict[str, Any]] = []

    def compiled(self, mode: Mode) -> CompiledStep:
        """The step compiled in ``mode`` (compiled once per program and mode)."""
        return self.program.compile(mode)

    @property
    def mode(self) -> Mode:
        """The mode the next steps run in."""
        return self.step.mode

    def switch(self, mode: Mode) -> None:
        """Continue in ``mode`` from the current state."""
        self.step = self.compiled(mode)

    def batches(self, x: np.ndarray, y: np.ndarray, epoch: int) -> Iterator[tuple[Any, Any]]:
        """Uploaded (inputs, one-hot target) batches of ``epoch``: shuffled with a seed
        derived from the trainer's and the epoch, the last partial batch dropped."""
        order = np.random.default_rng((self.seed, epoch)).permutation(len(x))
        target = one_hot(y, self.program.num_classes)
        size = self.program.batch_size
        for start in range(0, len(x) - size + 1, size):
            rows = order[start : start + size]
            yield self.step.upload(x[rows], target[rows])

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[dict[str, Any]]:
        """Train until ``state.epoch == epochs``; return one record per epoch (mode, mean
        training loss, seconds, validation metrics)."""
        if len(x) != len(y):
            raise ShapeError(f"training: {len(x)} inputs but {len(y)} labels")
        if len(x) < self.program.batch_size:
            raise ShapeError(
                f"training: {len(x)} rows is less than one batch of {self.program.batch_size}"
            )
        while self.state.epoch < epochs:
            epoch = self.state.epoch
            lr = self.lr_at(epoch)
            batches = list(self.batches(x, y, epoch))
            start = time.perf_counter()
            losses: list[float] = []
            if self.selector is not None and self.selector.wants(epoch):
                losses += self.selector.run_stage(self, batches[: self.selector.stage_batches], lr)
                batches = batches[self.selector.stage_batches :]
            device_losses = []
            for xb, tb in tqdm(
                batches, desc=f"epoch {epoch} ({self.mode.name})", disable=not self.progress
            ):
                device_losses.append(self.step.run(self.state, xb, tb, lr))
            losses += [float(v.numpy()) for v in device_losses]
            record: dict[str, Any] = {
                "epoch": epoch,
                "mode": self.mode.name,
                "lr": lr,
                "loss": float(np.mean(losses)),
                "seconds": time.perf_counter() - start,
            }
            if validation is not None:
                record |= {f"val_{k}": v for k, v in self.evaluate(*validation).items()}
            self.history.append(record)
            self.state.epoch += 1
            if self.checkpoint_dir is not None:
                self.state.save(os.path.join(self.checkpoint_dir, "last.npz"))
        return self.history

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Logits of ``x`` with the current parameters."""
        return self.step.predict(self.state, x)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """The loss (the program's, evaluated in float32 NumPy), accuracy and macro-F1."""
        logits = self.predict(x)
        pred = logits.argmax(axis=1)
        c = self.program.num_classes
        return {
            "loss": self.program.loss.evaluate(logits, one_hot(y, c)),
            "accuracy": accuracy(pred, y),
            "macro_f1": macro_f1(pred, y, c),
        }

"""A training step compiled in one mode: run a batch, predict, export."""

from __future__ import annotations

import os
import time
from typing import Any, Protocol

import numpy as np
import tvm
from tvm import relax

from tvmext.atomic_file import atomic_output
from tvmext.compiler import artifact_link_options, codegen, compile_state, run_pipeline
from tvmext.errors import ShapeError
from tvmext.runtime.tvm_log import filtered_tvm_log
from tvmext.training.modes import Mode
from tvmext.training.train_state import TrainState


class StepModule(Protocol):
    """What a compiled step needs from its program (a
    :class:`~tvmext.training.StepProgram`): the Relax module with ``train_step`` and
    ``predict``, and the batch it was built for."""

    @property
    def module(self) -> Any: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def num_classes(self) -> int: ...


def apply_step(train_step: Any, state: TrainState, x: Any, target: Any, lr: Any) -> Any:
    """Call a compiled ``train_step`` and move its outputs into ``state``; return the loss."""
    n_p, n_o = len(state.params), len(state.optimizer)
    out = train_step(x, target, lr, *state.params, *state.optimizer, *state.loss)
    state.params = [out[1 + i] for i in range(n_p)]
    state.optimizer = [out[1 + n_p + i] for i in range(n_o)]
    state.loss = [out[1 + n_p + n_o + i] for i in range(len(state.loss))]
    state.step += 1
    return out[0]


class CompiledStep:
    """``program``'s step and ``predict`` compiled in ``mode``; ``compile_seconds`` is
    the time that took.

    The step goes through the compiler's pipeline (:func:`tvmext.compiler.pipeline`)
    as a training step: the mode's passes, the target's registered passes that are not
    inference-only, partitioning and lowering.
    """

    def __init__(self, program: StepModule, mode: Mode, device: Any = None) -> None:
        self.program, self.mode = program, mode
        self.device = device or tvm.cpu()
        start = time.perf_counter()
        # A pass that edits its input must not touch other modes: compile a clone.
        state = compile_state(
            program.module.clone(),
            mode.target,
            option_values={"schedule": mode.schedule},
            inference=False,
            extra_passes=mode.passes,
        )
        self.executable = codegen(run_pipeline(state))
        self.reports = [p.report for p in state.partitions]
        self.link_options = list(artifact_link_options(state))
        if self.link_options:
            self.executable.jit(options=self.link_options)  # the VM then uses this library
        self.vm = relax.VirtualMachine(self.executable, self.device)
        self.compile_seconds = time.perf_counter() - start
        self.train_step = self.vm["train_step"]
        self._predict = self.vm["predict"]
        self._lr: tuple[float, Any] | None = None

    def lr_tensor(self, lr: float) -> Any:
        """``lr`` as a device scalar (cached while it does not change)."""
        if self._lr is None or self._lr[0] != lr:
            self._lr = (lr, tvm.runtime.tensor(np.asarray(lr, np.float32), self.device))
        return self._lr[1]

    def _check_batch(self, x: np.ndarray, target: np.ndarray) -> None:
        p = self.program
        if x.shape[0] != p.batch_size or target.shape != (p.batch_size, p.num_classes):
            raise ShapeError(
                f"training step ({self.mode.name}): batch of {x.shape[0]} rows with target "
                f"{list(target.shape)}; the step was built for batch_size={p.batch_size} "
                f"and target [{p.batch_size}, {p.num_classes}]"
            )

    def upload(self, x: np.ndarray, target: np.ndarray) -> tuple[Any, Any]:
        """Move one batch to the device (validated)."""
        self._check_batch(x, target)
        return (
            tvm.runtime.tensor(np.ascontiguousarray(x, np.float32), self.device),
            tvm.runtime.tensor(np.ascontiguousarray(target, np.float32), self.device),
        )

    def run(self, state: TrainState, x: Any, target: Any, lr: float) -> Any:
        """One step on an uploaded batch: updates ``state`` in place and returns the loss
        as a device scalar (read it with ``float(loss.numpy())`` when needed)."""
        return apply_step(self.train_step, state, x, target, self.lr_tensor(lr))

    def step(self, state: TrainState, x: np.ndarray, target: np.ndarray, lr: float) -> float:
        """One step on a NumPy batch (one-hot ``target``); returns the loss."""
        return float(self.run(state, *self.upload(x, target), lr).numpy())

    def predict(self, state: TrainState, x: np.ndarray) -> np.ndarray:
        """Logits of ``x`` (any number of rows) with the current parameters."""
        arr = tvm.runtime.tensor(np.ascontiguousarray(x, np.float32), self.device)
        return self._predict(arr, *state.params).numpy()

    def export(self, path: str | os.PathLike[str]) -> str:
        """Write the compiled step as a shared library (``train_step`` and ``predict``)."""
        path = os.fspath(path)
        with atomic_output(path, executable=True) as tmp, filtered_tvm_log():
            self.executable.export_library(tmp, options=self.link_options)
        return path

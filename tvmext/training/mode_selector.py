"""Choose the training mode by measured convergence rate, and switch without restarting.

At each configured stage (an epoch), the selector snapshots the full training state,
trains the same batches from that snapshot in every mode, and times each run (warm-up
steps excluded; compile time reported separately). Each mode's parameters are then
scored on a fixed probe set by one float32 evaluator (the basic mode's ``predict`` and
the loss in NumPy), so modes differ only in how they trained. Under the ``rate`` policy
the score is the probe-loss decrease per second; under ``accuracy`` it is the probe
accuracy. The current mode is kept unless another beats it by more than ``margin``
(relative); a mode whose losses, parameters or probe loss are not finite is out, and
when the current mode is out training falls back to the basic mode. Training continues
from the winner's state after the stage, so the stage's batches are not trained twice.
Every decision is appended to ``decisions`` and, with ``record_path``, written as JSON.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np
import tvm
from tvm import relax

from tvmext.atomic_file import atomic_output
from tvmext.errors import TvmextError
from tvmext.runtime.tvm_log import filtered_tvm_log
from tvmext.training.compiled_step import apply_step
from tvmext.training.metrics import accuracy
from tvmext.training.modes import Mode
from tvmext.training.train_state import Snapshot, TrainState
from tvmext.training.trainer import Trainer, one_hot

POLICIES = ("rate", "accuracy")


def _timed_stage(
    step_fn: Any,
    state: TrainState,
    start_snap: Snapshot,
    batches: Sequence[tuple[Any, Any]],
    lr: Any,
    warmup: int,
) -> tuple[Snapshot, float, list[float]]:
    """From ``state`` (equal to ``start_snap``): warm up on the first batches, restore
    ``start_snap``, then time the stage."""
    for xb, tb in batches[:warmup]:
        apply_step(step_fn, state, xb, tb, lr)
    if warmup:
        state.restore(start_snap)
    start = time.perf_counter()
    losses = [apply_step(step_fn, state, xb, tb, lr) for xb, tb in batches]
    values = [float(v.numpy()) for v in losses]  # waits for the last step
    seconds = time.perf_counter() - start
    return state.snapshot(), seconds, values


def _stage_in_process(
    library: str,
    names: list[str],
    snap: Snapshot,
    batches: list[tuple[np.ndarray, np.ndarray]],
    lr: float,
    warmup: int,
) -> tuple[Snapshot, float, list[float]]:
    """Run one mode's stage in a worker process from its exported library."""
    with filtered_tvm_log():
        vm = relax.VirtualMachine(tvm.runtime.load_module(library), tvm.cpu())
    state = TrainState.from_numpy(
        names, snap.params, snap.optimizer, snap.loss, step=snap.step, epoch=snap.epoch
    )

    def up(a: np.ndarray) -> Any:
        return tvm.runtime.tensor(np.array(a, np.float32, order="C"))

    uploaded = [(up(x), up(t)) for x, t in batches]
    return _timed_stage(vm["train_step"], state, snap, uploaded, up(np.asarray(lr)), warmup)


def _finite(snap: Snapshot, losses: list[float]) -> bool:
    return all(math.isfinite(v) for v in losses) and all(np.isfinite(a).all() for a in snap.params)


class ModeSelector:
    """Pick among ``modes`` at the epochs in ``stages`` (see the module docstring).

    ``basic`` names the fallback mode (it must be one of ``modes``); ``probe`` is
    (inputs, labels); ``stage_batches`` batches are trained per mode per stage;
    ``parallel=True`` runs the modes in separate processes (their timings then share
    the machine's cores).
    """

    def __init__(
        self,
        modes: Sequence[Mode],
        *,
        probe: tuple[np.ndarray, np.ndarray],
        stages: Sequence[int] = (0,),
        stage_batches: int = 20,
        warmup_batches: int = 2,
        policy: str = "rate",
        margin: float = 0.05,
        basic: str = "basic",
        parallel: bool = False,
        record_path: str | None = None,
    ) -> None:
        names = [m.name for m in modes]
        if len(set(names)) != len(names) or len(names) < 2:
            raise TvmextError(f"ModeSelector: need two or more distinct modes, got {names}")
        if basic not in names:
            raise TvmextError(f"ModeSelector: basic mode {basic!r} is not among {names}")
        if policy not in POLICIES:
            raise TvmextError(f"ModeSelector: policy {policy!r}; expected one of {POLICIES}")
        if stage_batches < 1 or warmup_batches < 0 or margin < 0:
            raise TvmextError(
                "ModeSelector: stage_batches must be >= 1, warmup_batches and margin >= 0"
            )
        self.modes = {m.name: m for m in modes}
        self.probe, self.stages = probe, set(stages)
        self.stage_batches, self.warmup = stage_batches, warmup_batches
        self.policy, self.margin, self.basic = policy, margin, basic
        self.parallel, self.record_path = parallel, record_path
        self.decisions: list[dict[str, Any]] = []

    def wants(self, epoch: int) -> bool:
        """Whether a selection stage starts at ``epoch``."""
        return epoch in self.stages

    def _probe_scores(self, trainer: Trainer, params: list[np.ndarray]) -> tuple[float, float]:
        """(probe loss, probe accuracy) of ``params`` with the basic mode's fp32 predict."""
        evaluator = trainer.compiled(self.modes[self.basic])
        names = trainer.state.names
        state = TrainState.from_numpy(names, params, [], [], device=trainer.state.device)
        x, y = self.probe
        logits = evaluator.predict(state, x)
        target = one_hot(y, trainer.program.num_classes)
        return trainer.program.loss.evaluate(logits, target), accuracy(logits.argmax(1), y)

    def _run_modes(
        self, trainer: Trainer, snap: Snapshot, batches: list[tuple[Any, Any]], lr: float
    ) -> dict[str, tuple[Snapshot, float, list[float]]]:
        steps = {name: trainer.compiled(mode) for name, mode in self.modes.items()}
        if not self.parallel:
            results = {}
            for name, step in steps.items():
                trainer.state.restore(snap)
                results[name] = _timed_stage(
                    step.train_step, trainer.state, snap, batches, step.lr_tensor(lr), self.warmup
                )
            return results
        host = [(x.numpy(), t.numpy()) for x, t in batches]
        with tempfile.TemporaryDirectory(prefix="tvmext-modes-") as folder:
            libs = {n: s.export(os.path.join(folder, f"{n}.so")) for n, s in steps.items()}
            with ProcessPoolExecutor(len(steps), mp_context=get_context("spawn")) as pool:
                futures = {
                    n: pool.submit(
                        _stage_in_process, lib, trainer.state.names, snap, host, lr, self.warmup
                    )
                    for n, lib in libs.items()
                }
                return {n: f.result() for n, f in futures.items()}

    def run_stage(self, trainer: Trainer, batches: list[tuple[Any, Any]], lr: float) -> list[float]:
        """Train ``batches`` in every mode from the current state, switch ``trainer`` to
        the winner with the winner's state; return the winner's losses."""
        snap = trainer.state.snapshot()
        before_loss, before_acc = self._probe_scores(trainer, snap.params)
        results = self._run_modes(trainer, snap, batches, lr)
        report: dict[str, dict[str, Any]] = {}
        for name, (end, seconds, losses) in results.items():
            finite = _finite(end, losses)
            after_loss, after_acc = (
                self._probe_scores(trainer, end.params) if finite else (math.nan, math.nan)
            )
            finite = finite and math.isfinite(after_loss)
            convergence = before_loss - after_loss
            report[name] = {
                "seconds": seconds,
                "compile_seconds": trainer.compiled(self.modes[name]).compile_seconds,
                "losses": losses,
                "probe_loss_before": before_loss,
                "probe_loss_after": after_loss,
                "probe_accuracy_before": before_acc,
                "probe_accuracy_after": after_acc,
                "convergence": convergence,
                "rate": convergence / seconds if finite else None,
                "finite": finite,
            }
        current = trainer.mode.name
        winner, reason = self._decide(current, report)
        trainer.state.restore(results[winner][0])
        trainer.switch(self.modes[winner])
        decision = {
            "epoch": snap.epoch,
            "step": snap.step,
            "batches": len(batches),
            "policy": self.policy,
            "margin": self.margin,
            "previous": current,
            "winner": winner,
            "reason": reason,
            "modes": report,
        }
        self.decisions.append(decision)
        if self.record_path is not None:
            with atomic_output(self.record_path) as tmp, open(tmp, "w") as f:
                json.dump(self.decisions, f, indent=1, allow_nan=True)
        return results[winner][2]

    def _score(self, entry: dict[str, Any]) -> float:
        return entry["rate"] if self.policy == "rate" else entry["probe_accuracy_after"]

    def _decide(self, current: str, report: dict[str, dict[str, Any]]) -> tuple[str, str]:
        finite = [n for n, r in report.items() if r["finite"]]
        if not finite:
            return self.basic, "no mode stayed finite; falling back to the basic mode"
        if current not in finite:
            if self.basic in finite:
                return self.basic, f"{current!r} went non-finite; falling back to the basic mode"
            best = max(finite, key=lambda n: self._score(report[n]))
            return best, f"{current!r} and the basic mode went non-finite; best finite mode"
        best = max(finite, key=lambda n: self._score(report[n]))
        ours, theirs = self._score(report[current]), self._score(report[best])
        if best != current and theirs - ours > self.margin * abs(ours):
            return best, (
                f"{best!r} beats {current!r} on {self.policy}: {theirs:.4g} vs {ours:.4g} "
                f"(margin {self.margin:.0%})"
            )
        return (
            current,
            f"{current!r} kept: no mode beats its {self.policy} {ours:.4g} by the margin",
        )

"""Losses a training step can end in: softmax cross-entropy, sigmoid BCE and GHM-C.

A loss takes the model's logits (N, C) and one-hot float32 targets of the same shape.
It emits its Relax computation into the training step (and may carry state across
steps, as GHM-C's bin counts do), and evaluates itself in float32 NumPy: the one
evaluator used to score every training mode on the same probe set.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np
from tvm import relax


class Loss(abc.ABC):
    """Base class: ``emit`` builds the loss in Relax, ``evaluate`` in NumPy."""

    name: str = ""

    def initial_state(self) -> list[np.ndarray]:
        """Arrays carried from one step to the next (none by default)."""
        return []

    @abc.abstractmethod
    def emit(
        self,
        bb: relax.BlockBuilder,
        logits: relax.Expr,
        target: relax.Expr,
        state: list[relax.Var],
    ) -> tuple[relax.Expr, list[relax.Expr]]:
        """Emit the scalar loss and the new state into ``bb``'s current dataflow block."""

    @abc.abstractmethod
    def evaluate(self, logits: np.ndarray, target: np.ndarray) -> float:
        """The loss of ``logits`` against one-hot ``target`` in float32 NumPy, stateless."""


class SoftmaxCrossEntropy(Loss):
    """Mean over the batch of ``-sum(target * log_softmax(logits))``."""

    name = "softmax_cross_entropy"

    def emit(self, bb, logits, target, state):
        log_prob = bb.emit(relax.op.nn.log_softmax(logits, axis=-1))
        return bb.emit(relax.op.nn.cross_entropy_with_logits(log_prob, target)), []

    def evaluate(self, logits, target):
        x = logits.astype(np.float32)
        shifted = x - x.max(axis=-1, keepdims=True)
        log_prob = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        return float(-(target * log_prob).sum() / len(x))


class SigmoidBCE(Loss):
    """Mean over all (sample, class) elements of binary cross-entropy with logits."""

    name = "sigmoid_bce"

    def emit(self, bb, logits, target, state):
        op = relax.op
        per_element = op.add(
            op.subtract(op.maximum(logits, relax.const(0.0)), op.multiply(logits, target)),
            op.log(op.add(relax.const(1.0), op.exp(op.negative(op.abs(logits))))),
        )
        return bb.emit(op.mean(per_element)), []

    def evaluate(self, logits, target):
        x = logits.astype(np.float32)
        return float((np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x)))).mean())


@dataclass(frozen=True)
class GHMC(Loss):
    """GHM-C (``tvmext.ops.ghmc_loss``): sigmoid BCE weighted by inverse gradient density.

    With ``momentum > 0`` the moving average of bin counts is the loss's state, threaded
    through the steps. Every element is valid (label weight 1).
    """

    bins: int = 10
    momentum: float = 0.0
    loss_weight: float = 1.0
    name = "ghmc"

    def initial_state(self) -> list[np.ndarray]:
        return [np.zeros(self.bins, np.float32)]

    def emit(self, bb, logits, target, state):
        from tvmext.ops import ghmc_loss

        out = bb.emit(
            ghmc_loss(
                logits,
                target,
                relax.op.ones_like(target),
                state[0],
                bins=self.bins,
                momentum=self.momentum,
                loss_weight=self.loss_weight,
            )
        )
        return bb.emit(relax.TupleGetItem(out, 0)), [bb.emit(relax.TupleGetItem(out, 1))]

    def evaluate(self, logits, target):
        from tvmext.ops import ghmc_loss

        reference = ghmc_loss.reference_fn
        assert reference is not None  # declared in tvmext.ops.ghmc_loss
        x = logits.astype(np.float32)
        loss, _ = reference(  # stateless: fresh counts, no moving average
            x,
            target,
            np.ones_like(x),
            np.zeros(self.bins, np.float32),
            bins=self.bins,
            momentum=0.0,
            loss_weight=self.loss_weight,
        )
        return float(loss)

"""Optimizers emitted into the training step: SGD with momentum, and Adam.

Both follow PyTorch's update rules (``torch.optim.SGD`` and ``torch.optim.Adam``). The
learning rate is a runtime scalar input of the step, so a schedule changes it without
recompiling; the optimizer state is a list of runtime tensors next to the parameters.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np
from tvm import relax

from tvmext.errors import TvmextError


class Optimizer(abc.ABC):
    """Base class: the state it keeps and the update it emits."""

    @abc.abstractmethod
    def initial_state(self, params: list[np.ndarray]) -> list[np.ndarray]:
        """Zero state for ``params``."""

    @abc.abstractmethod
    def emit(
        self,
        bb: relax.BlockBuilder,
        params: list[relax.Expr],
        grads: list[relax.Expr],
        state: list[relax.Expr],
        lr: relax.Expr,
    ) -> tuple[list[relax.Expr], list[relax.Expr]]:
        """Emit the update; return the new parameters and the new state."""


def _check(name: str, value: float, low: float, high: float) -> None:
    if not low <= value < high:
        raise TvmextError(f"optimizer argument {name}={value!r} must be in [{low}, {high})")


@dataclass(frozen=True)
class SGD(Optimizer):
    """``v = momentum * v + (g + weight_decay * p)``; ``p -= lr * v`` (or the Nesterov form)."""

    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        _check("momentum", self.momentum, 0.0, 1.0)
        _check("weight_decay", self.weight_decay, 0.0, float("inf"))
        if self.nesterov and self.momentum == 0:
            raise TvmextError("SGD(nesterov=True) needs momentum > 0")

    def initial_state(self, params):
        return [np.zeros_like(p) for p in params] if self.momentum > 0 else []

    def emit(self, bb, params, grads, state, lr):
        op, const = relax.op, relax.const
        new_params, new_state = [], []
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if self.weight_decay:
                g = op.add(g, op.multiply(const(self.weight_decay), p))
            step = g
            if self.momentum > 0:
                v = bb.emit(op.add(op.multiply(const(self.momentum), state[i]), g))
                new_state.append(v)
                step = op.add(g, op.multiply(const(self.momentum), v)) if self.nesterov else v
            new_params.append(bb.emit(op.subtract(p, op.multiply(lr, step))))
        return new_params, new_state


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam with bias correction; state: the step count, then (m, v) per parameter."""

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _check("beta1", self.beta1, 0.0, 1.0)
        _check("beta2", self.beta2, 0.0, 1.0)
        _check("weight_decay", self.weight_decay, 0.0, float("inf"))
        if self.eps <= 0:
            raise TvmextError(f"optimizer argument eps={self.eps!r} must be > 0")

    def initial_state(self, params):
        moments = [np.zeros_like(p) for p in params for _ in range(2)]
        return [np.zeros((), np.float32), *moments]

    def emit(self, bb, params, grads, state, lr):
        op, const = relax.op, relax.const
        t = bb.emit(op.add(state[0], const(1.0)))
        correction1 = op.subtract(const(1.0), op.power(const(self.beta1), t))
        correction2 = op.subtract(const(1.0), op.power(const(self.beta2), t))
        step_size = bb.emit(op.divide(lr, correction1))
        root2 = bb.emit(op.sqrt(correction2))
        new_params, new_state = [], [t]
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if self.weight_decay:
                g = op.add(g, op.multiply(const(self.weight_decay), p))
            m_old, v_old = state[1 + 2 * i], state[2 + 2 * i]
            m = bb.emit(
                op.add(op.multiply(const(self.beta1), m_old), op.multiply(const(1 - self.beta1), g))
            )
            v = bb.emit(
                op.add(
                    op.multiply(const(self.beta2), v_old),
                    op.multiply(const(1 - self.beta2), op.multiply(g, g)),
                )
            )
            denom = op.add(op.divide(op.sqrt(v), root2), const(self.eps))
            new_params.append(bb.emit(op.subtract(p, op.multiply(step_size, op.divide(m, denom)))))
            new_state += [m, v]
        return new_params, new_state

"""Everything that persists between training steps, as runtime tensors.

Parameters, optimizer state and loss state live on the device as ``tvm.runtime``
tensors and are replaced by each step's outputs; nothing is copied back to NumPy
unless asked (a snapshot, a checkpoint, ``params()``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tvm

from tvmext.atomic_file import atomic_output
from tvmext.errors import TvmextError


@dataclass
class Snapshot:
    """A NumPy copy of a TrainState, to restore from (mode selection, checkpoints)."""

    params: list[np.ndarray]
    optimizer: list[np.ndarray]
    loss: list[np.ndarray]
    step: int
    epoch: int


@dataclass
class TrainState:
    """Parameters (in the model's order), optimizer state, loss state and counters."""

    names: list[str]
    params: list[Any]
    optimizer: list[Any]
    loss: list[Any]
    step: int = 0
    epoch: int = 0
    device: Any = field(default=None, repr=False)

    @classmethod
    def from_numpy(
        cls,
        names: Sequence[str],
        params: Sequence[np.ndarray],
        optimizer: Sequence[np.ndarray],
        loss: Sequence[np.ndarray],
        *,
        step: int = 0,
        epoch: int = 0,
        device: Any = None,
    ) -> TrainState:
        """Upload NumPy arrays to ``device`` (default CPU)."""
        dev = device or tvm.cpu()

        def up(arrays: Sequence[np.ndarray]) -> list[Any]:
            return [tvm.runtime.tensor(np.array(a, order="C"), dev) for a in arrays]

        return cls(list(names), up(params), up(optimizer), up(loss), step, epoch, dev)

    def snapshot(self) -> Snapshot:
        """Copy everything to NumPy."""
        return Snapshot(
            [t.numpy() for t in self.params],
            [t.numpy() for t in self.optimizer],
            [t.numpy() for t in self.loss],
            self.step,
            self.epoch,
        )

    def restore(self, snap: Snapshot) -> None:
        """Replace everything with ``snap``'s values (fresh tensors: ``snap`` stays valid)."""
        fresh = TrainState.from_numpy(
            self.names, snap.params, snap.optimizer, snap.loss, device=self.device
        )
        self.params, self.optimizer, self.loss = fresh.params, fresh.optimizer, fresh.loss
        self.step, self.epoch = snap.step, snap.epoch

    def params_numpy(self) -> dict[str, np.ndarray]:
        """The parameters by name, as NumPy arrays."""
        return {n: t.numpy() for n, t in zip(self.names, self.params, strict=True)}

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write a checkpoint (``.npz``: parameters by name, optimizer and loss state,
        counters) atomically; return the path."""
        path = os.fspath(path)
        snap = self.snapshot()
        arrays = {f"param/{n}": a for n, a in zip(self.names, snap.params, strict=True)}
        arrays |= {f"optimizer/{i}": a for i, a in enumerate(snap.optimizer)}
        arrays |= {f"loss/{i}": a for i, a in enumerate(snap.loss)}
        meta = {"names": self.names, "step": self.step, "epoch": self.epoch}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        with atomic_output(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
        return path

    def load(self, path: str | os.PathLike[str]) -> None:
        """Restore a checkpoint written by :meth:`save` for the same model and optimizer;
        a mismatch is an error naming what differs."""
        with np.load(os.fspath(path)) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta["names"] != self.names:
                raise TvmextError(
                    f"checkpoint {os.fspath(path)!r} holds parameters {meta['names']}, "
                    f"this model has {self.names}"
                )
            for what, prefix, count in (
                ("optimizer state", "optimizer/", len(self.optimizer)),
                ("loss state", "loss/", len(self.loss)),
            ):
                held = sum(1 for k in data.files if k.startswith(prefix))
                if held != count:
                    raise TvmextError(
                        f"checkpoint {os.fspath(path)!r} holds {held} {what} arrays, "
                        f"this training step has {count}"
                    )
            snap = Snapshot(
                [data[f"param/{n}"] for n in self.names],
                [data[f"optimizer/{i}"] for i in range(len(self.optimizer))],
                [data[f"loss/{i}"] for i in range(len(self.loss))],
                int(meta["step"]),
                int(meta["epoch"]),
            )
        current = self.snapshot()
        for kind, got, want in (
            ("parameter", snap.params, current.params),
            ("optimizer state", snap.optimizer, current.optimizer),
            ("loss state", snap.loss, current.loss),
        ):
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                if g.shape != w.shape or g.dtype != w.dtype:
                    raise TvmextError(
                        f"checkpoint {os.fspath(path)!r}: {kind} {i} is {g.dtype}{list(g.shape)}, "
                        f"expected {w.dtype}{list(w.shape)}"
                    )
        self.restore(snap)

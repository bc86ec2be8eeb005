"""Training modes: named compile configurations of the same training step.

The step's Relax module is identical in every mode; a mode decides how it is compiled:
the target, whether tvmext schedules the kernels (``schedule=False`` is TVM's plain
lowering), and extra Relax passes run before lowering (reduced precision, rewrites).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import tvm


@dataclass(frozen=True)
class Mode:
    """A named compile configuration. ``passes`` run on the step module before lowering."""

    name: str
    target: str = "llvm"
    schedule: bool = True
    passes: Sequence[tvm.transform.Pass] = field(default=(), hash=False, compare=False)


OPTIMIZED = Mode("optimized")
"""Scheduled kernels for the host CPU (the op's own schedules, tiled matmuls, dlight)."""

BASIC = Mode("basic", schedule=False)
"""TVM's plain lowering in float32: the reference every other mode is compared against."""

ONEDNN = Mode("onednn", target="dnnl, llvm")
"""The step's matrix products (forward and gradient) on oneDNN, the rest as OPTIMIZED."""

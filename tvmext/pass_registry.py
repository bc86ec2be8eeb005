"""Target-specific Relax passes, registered per phase and target kind.

A pass entry is a factory returning a ``tvm.transform.Pass``; the compile pipeline
runs the entries of its ``optimize`` phase whose targets include the host target's
kind (``"*"`` matches every kind), in registration order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tvm

from .errors import OpDefinitionError
from .registry import Registry, caller_location

PHASES = ("optimize",)


@dataclass(frozen=True)
class PassEntry:
    """A registered pass: its factory, phase and the target kinds it is for."""

    name: str
    factory: Callable[[], tvm.transform.Pass]
    phase: str
    targets: tuple[str, ...]

    def applies_to(self, kind: str) -> bool:
        """Whether this pass runs for target kind ``kind``."""
        return "*" in self.targets or kind in self.targets


PASSES: Registry[PassEntry] = Registry("pass")


def register_pass(
    name: str, *, phase: str = "optimize", targets: Sequence[str] = ("*",), replace: bool = False
) -> Callable[[Callable[[], tvm.transform.Pass]], Callable[[], tvm.transform.Pass]]:
    """Register a pass factory under ``name`` for ``phase`` and target kinds ``targets``."""
    if phase not in PHASES:
        raise OpDefinitionError(f"pass {name!r}: unknown phase {phase!r}; phases: {PHASES}")
    origin = caller_location(2)

    def register(factory: Callable[[], tvm.transform.Pass]) -> Callable[[], tvm.transform.Pass]:
        PASSES.add(name, PassEntry(name, factory, phase, tuple(targets)), origin, replace=replace)
        return factory

    return register


def passes_for(phase: str, kind: str) -> list[PassEntry]:
    """The registered passes of ``phase`` that apply to target kind ``kind``."""
    return [e.value for e in PASSES if e.value.phase == phase and e.value.applies_to(kind)]

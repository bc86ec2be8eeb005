"""External (BYOC) targets: hardware libraries that take over parts of a model.

A target package (``tvmext.target.<name>``) subclasses :class:`ExternalTarget` (most
subclass :class:`tvmext.target.pattern.PatternTarget`, which needs only a pattern table
and a codegen) and registers an instance; ``--target "<name>, llvm"`` then runs its
``partition`` (patterns -> composite functions -> code against the vendor's interface)
before the rest of the model is lowered by TVM for the host. Targets shipped with
tvmext load when a target string first names them.
"""

from __future__ import annotations

import abc
import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import tvm

from tvmext.errors import CompileError
from tvmext.registry import Registry, caller_location

if TYPE_CHECKING:
    from tvmext.target.report import PartitionReport


@dataclass(frozen=True)
class Partitioned:
    """What a target's ``partition`` returns: the module for the host to lower, the
    report of where each op went, and the linker options the artifact needs."""

    mod: tvm.IRModule
    report: PartitionReport
    link_options: tuple[str, ...] = field(default=())


# The compile's reduced precision (``"bf16"``), an attribute of the module a target
# partitions and of each function a pattern target hands its codegen; absent for fp32.
PRECISION_ATTR = "tvmext_precision"


class ExternalTarget(abc.ABC):
    """Base class of external targets: ``name`` and :meth:`partition`."""

    name: str = ""

    @abc.abstractmethod
    def partition(self, mod: tvm.IRModule, host: tvm.target.Target) -> Partitioned:
        """Offload what this target supports; return the module for the host to lower."""

    def precision_refusal(self, precision: str) -> str | None:
        """Why this target cannot compute in ``precision`` on this machine, or None.
        Only fp32 by default."""
        if precision == "fp32":
            return None
        return f"target {self.name!r} computes only in fp32"


TARGETS: Registry[ExternalTarget] = Registry(
    "target", key_pattern=re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
)


def register_target(target: ExternalTarget, *, replace: bool = False) -> ExternalTarget:
    """Make ``target`` usable as ``"<target.name>, llvm"``."""
    TARGETS.add(target.name, target, caller_location(2), replace=replace)
    return target


def _load_shipped(name: str) -> None:
    """Import ``tvmext.target.<name>`` if tvmext ships such a target."""
    try:
        importlib.import_module(f"tvmext.target.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"tvmext.target.{name}":
            raise


def load_shipped_targets() -> None:
    """Register every target tvmext ships (``tvmext.target.<name>`` subpackages)."""
    import pkgutil

    import tvmext.target

    for info in pkgutil.iter_modules(tvmext.target.__path__):
        if info.ispkg:
            _load_shipped(info.name)


def get_target(name: str) -> ExternalTarget:
    """The registered target ``name`` (loading tvmext's own targets on first use), or a
    CompileError listing the registered ones."""
    if name not in TARGETS and re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        _load_shipped(name)
    if name not in TARGETS:
        known = ", ".join(sorted(e.key for e in TARGETS)) or "none"
        raise CompileError(
            f"unknown external target {name!r} in the target string; registered: {known} "
            f"(load the plugin that defines it with --plugin)"
        )
    return TARGETS.get(name)


def link_options(partitions: Sequence[Partitioned]) -> tuple[str, ...]:
    """The linker options of several partitions, in order, without repeats."""
    return tuple(dict.fromkeys(opt for p in partitions for opt in p.link_options))

"""External (BYOC) targets: hardware libraries that take over parts of a model.

A target subclasses :class:`ExternalTarget` (most subclass
:class:`tvmext.target.pattern.PatternTarget`, which needs only a pattern table and a
codegen); ``--target "<name>, llvm"`` then runs its ``partition`` (patterns ->
composite functions -> code against the vendor's interface) before the rest of the
model is lowered by TVM for the host. An installed package declares its targets as
entry points of the group ``tvmext.targets`` (``name = "package.module:TARGET"``, an
instance), loaded when a target string first names them: tvmext's own oneDNN target is
found that way (see ``pyproject.toml``). A plugin may also ``register_target`` one.
"""

from __future__ import annotations

import abc
import importlib.metadata
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

    def int8_refusal(self) -> str | None:
        """Why this target's integer (int8) products would not be exact on this machine,
        or None (the default: a target without int8 kernels leaves them to TVM)."""
        return None


ENTRY_POINT_GROUP = "tvmext.targets"

TARGETS: Registry[ExternalTarget] = Registry(
    "target", key_pattern=re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
)


def register_target(target: ExternalTarget, *, replace: bool = False) -> ExternalTarget:
    """Make ``target`` usable as ``"<target.name>, llvm"``."""
    TARGETS.add(target.name, target, caller_location(2), replace=replace)
    return target


def _installed() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _load_installed(name: str) -> None:
    """Register the target an installed package declares as ``name``."""
    if name in TARGETS:
        return
    entry = _installed().get(name)  # scanning every distribution costs about 10 ms
    if entry is None:
        return
    try:
        loaded = entry.load()
    except Exception as err:
        raise CompileError(
            f"target {name!r} (entry point {entry.value!r}) failed to load: "
            f"{type(err).__name__}: {err}"
        ) from err
    if not isinstance(loaded, ExternalTarget) or loaded.name != name:
        raise CompileError(
            f"entry point {name} = {entry.value!r} of group {ENTRY_POINT_GROUP!r} is not an "
            f"ExternalTarget named {name!r}"
        )
    if name not in TARGETS:  # a target package may register itself as it loads
        register_target(loaded)


def load_installed_targets() -> None:
    """Register every installed target (tvmext's own among them)."""
    for name in _installed():
        _load_installed(name)


def get_target(name: str) -> ExternalTarget:
    """The registered target ``name`` (loading an installed one on first use), or a
    CompileError listing the known ones."""
    _load_installed(name)
    if name not in TARGETS:
        known = ", ".join(sorted({e.key for e in TARGETS} | set(_installed()))) or "none"
        raise CompileError(
            f"unknown external target {name!r} in the target string; known: {known} "
            f"(load the plugin that defines it with --plugin)"
        )
    return TARGETS.get(name)


def link_options(partitions: Sequence[Partitioned]) -> tuple[str, ...]:
    """The linker options of several partitions, in order, without repeats."""
    return tuple(dict.fromkeys(opt for p in partitions for opt in p.link_options))

"""External (BYOC) targets: hardware libraries that take over parts of a model.

A target package (``tvmext.target.<name>``) subclasses :class:`ExternalTarget` and
registers an instance; ``--target "<name>, llvm"`` then runs its ``partition``
(patterns -> composite functions -> code against the vendor's interface) before the
rest of the model is lowered by TVM for the host.
"""

from __future__ import annotations

import abc
import re

import tvm

from .errors import CompileError
from .registry import Registry, caller_location


class ExternalTarget(abc.ABC):
    """Base class of external targets: ``name`` and :meth:`partition`."""

    name: str = ""

    @abc.abstractmethod
    def partition(self, mod: tvm.IRModule, host: tvm.target.Target) -> tvm.IRModule:
        """Offload what this target supports; return the module for the host to lower."""


TARGETS: Registry[ExternalTarget] = Registry(
    "target", key_pattern=re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
)


def register_target(target: ExternalTarget, *, replace: bool = False) -> ExternalTarget:
    """Make ``target`` usable as ``"<target.name>, llvm"``."""
    TARGETS.add(target.name, target, caller_location(2), replace=replace)
    return target


def get_target(name: str) -> ExternalTarget:
    """The registered target ``name``, or a CompileError listing the registered ones."""
    if name not in TARGETS:
        known = ", ".join(sorted(e.key for e in TARGETS)) or "none"
        raise CompileError(
            f"unknown external target {name!r} in the target string; registered: {known} "
            f"(load the plugin that defines it with --plugin)"
        )
    return TARGETS.get(name)

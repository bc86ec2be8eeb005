"""Targets as users write them: tvmc-style strings, dicts or ``tvm.target.Target``.

TVM 0.27 rejects ``"llvm -mcpu=native"`` and compiles plain ``"llvm"`` for generic
x86-64 (SSE2). tvmext parses tvmc-style strings itself and targets the host CPU's
features unless ``-mcpu`` names another CPU. Composite targets list external
codegens first and the host last: ``"dnnl, llvm"``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

import tvm

from tvmext.errors import CompileError


@dataclass(frozen=True)
class TargetSpec:
    """A host target plus the external codegens (BYOC) to partition for."""

    host: tvm.target.Target
    externals: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """The host target's kind name (``"llvm"``, ``"cuda"``)."""
        return str(self.host.kind.name)


def host_cpu() -> str:
    """The host CPU name as LLVM knows it (``"skylake-avx512"``, ...)."""
    return str(tvm.target.codegen.llvm_get_system_cpu())


def _parse_one(text: str) -> dict[str, Any]:
    parts = shlex.split(text)
    if not parts:
        raise CompileError("empty target string; expected e.g. 'llvm' or 'llvm -mcpu=native'")
    config: dict[str, Any] = {"kind": parts[0]}
    for flag in parts[1:]:
        if not flag.startswith("-") or "=" not in flag:
            raise CompileError(f"target {text!r}: option {flag!r} is not of the form -key=value")
        key, value = flag.lstrip("-").split("=", 1)
        # Integer options (-num-cores=4, -opt-level=3) must reach Target as ints.
        config[key] = (
            value.split(",") if key == "mattr" else int(value) if value.isdigit() else value
        )
    return config


def parse_target(target: Any = "llvm") -> TargetSpec:
    """Parse ``target`` (tvmc string, dict, Target or TargetSpec) into a TargetSpec."""
    if isinstance(target, TargetSpec):
        return target
    if isinstance(target, tvm.target.Target):
        return TargetSpec(target)
    externals: list[str] = []
    if isinstance(target, str):
        # Commas separate targets, except inside option values such as -mattr=+avx2,+fma.
        pieces = [p.strip() for p in re.split(r",\s*(?=[A-Za-z_])", target) if p.strip()]
        if not pieces:
            raise CompileError("empty target; expected e.g. 'llvm' or 'dnnl, llvm'")
        *ext, last = pieces
        externals = ext
        config = _parse_one(last)
    elif isinstance(target, dict):
        config = dict(target)
    else:
        raise CompileError(
            f"target must be a string, dict or tvm.target.Target, got {type(target).__name__}"
        )
    if config.get("kind") == "llvm" and config.get("mcpu", "native") == "native":
        config["mcpu"] = host_cpu()
    try:
        host = tvm.target.Target(config)
    except Exception as err:
        raise CompileError(f"invalid target {target!r}: {err}") from err
    return TargetSpec(host, tuple(externals))

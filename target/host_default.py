"""The target a compile uses when none is given: the fastest correct one this host has.

On x86-64 with oneDNN installed and a C++ compiler to build its calls, that is
``"dnnl, llvm"`` (oneDNN's convolutions and matmuls, TVM for the rest), measured 3 to 10
times faster than plain ``"llvm"`` on real architectures (``benchmarks/real_models.py``);
anywhere else it is ``"llvm"`` for the host CPU. A compile without a target may also
fall back to TVM when oneDNN's generated code fails to build, so that the default never
fails where ``"llvm"`` would succeed. ``target="llvm"`` keeps plain TVM. A compile given
tuning records uses ``"llvm"``: ``tvmext tune`` tunes TVM's own kernels, which oneDNN
would otherwise take over.
"""

from __future__ import annotations

import functools
import platform
import shutil
from dataclasses import dataclass

from tvmext.errors import CompileError
from tvmext.opdef.native_build import cxx_compiler

_X86_64 = ("x86_64", "amd64")


@dataclass(frozen=True)
class DefaultTarget:
    """The chosen target string and why it was chosen."""

    target: str
    reason: str

    def announcement(self) -> str:
        """The line a compile without a target prints first."""
        plain = "" if self.target == "llvm" else "; target 'llvm' for plain TVM"
        return f"tvmext: no target given, using {self.target!r} ({self.reason}{plain})"


def default_target(*, tuned: bool = False) -> DefaultTarget:
    """The fastest correct configuration of this host, or with ``tuned`` (tuning records
    given) the target the records were tuned for (see the module docstring)."""
    if tuned:
        return DefaultTarget("llvm", "tuning records given; they tune TVM's own kernels")
    return _host_default()


@functools.cache
def _host_default() -> DefaultTarget:
    machine = platform.machine().lower()
    if machine not in _X86_64:
        return DefaultTarget("llvm", f"oneDNN's target supports x86-64, this host is {machine}")
    from tvmext.target.dnnl.library import find_onednn

    try:
        onednn = find_onednn()
    except CompileError:
        return DefaultTarget("llvm", "oneDNN is not installed in this environment")
    compiler = cxx_compiler()
    if shutil.which(compiler) is None:
        return DefaultTarget("llvm", f"oneDNN's calls need a C++ compiler; {compiler!r} is missing")
    return DefaultTarget("dnnl, llvm", f"oneDNN {onednn.version()} found on this x86-64 host")

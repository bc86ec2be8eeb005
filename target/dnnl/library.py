"""Where oneDNN is: headers and ``libdnnl.so``, by default from the
``onednn-cpu-gomp``/``onednn-devel-cpu-gomp`` wheels.

That build (oneDNN 3.2, GNU OpenMP threading) costs about 1 µs per primitive call and
needs nothing beside ``libdnnl.so`` but the system's libgomp; the ``onednn`` wheel
(oneDNN 3.13) runs its CPU engine through SYCL, costs 10 to 80 µs per call and needs
Intel's OpenCL CPU runtime (~550 MB) beside it (``benchmarks/dnnl_call_overhead.py``
measures both). Another install is chosen with ``$TVMEXT_ONEDNN_ROOT``, a prefix
holding ``include/dnnl.hpp`` and ``lib/libdnnl.so`` (for example
``pip install --prefix DIR onednn==2026.1.0 onednn-devel==2026.1.0``); the wheels of the
two builds write the same files, so they cannot share one environment.

Artifacts link ``libdnnl.so`` with an RPATH to its folder (old-style ``DT_RPATH``, which
also covers libdnnl's own dependencies there), so a loaded artifact finds it without
``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import sys
from dataclasses import dataclass

from tvmext import environment
from tvmext.errors import CompileError

_INSTALL = "pip install onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0"


@dataclass(frozen=True)
class OneDnn:
    """The include folder and library folder of an installed oneDNN."""

    include_dir: str
    lib_dir: str

    def link_options(self) -> tuple[str, ...]:
        """Linker options for an artifact that calls oneDNN. TVM puts options before the
        objects, so ``--no-as-needed`` keeps libdnnl, which only the objects reference."""
        return (
            f"-L{self.lib_dir}",
            "-Wl,--no-as-needed",
            "-ldnnl",
            "-Wl,--as-needed",
            "-Wl,--disable-new-dtags",
            f"-Wl,-rpath,{self.lib_dir}",
        )

    def library(self) -> str:
        """The path of ``libdnnl.so``."""
        return os.path.join(self.lib_dir, "libdnnl.so")

    def _header(self, name: str) -> str:
        path = os.path.join(self.include_dir, "oneapi", "dnnl", name)
        if not os.path.isfile(path):
            return ""
        with open(path) as f:
            return f.read()

    def header_digest(self) -> str:
        """A digest of the headers that say which build this is (version, threading
        runtime), so that objects compiled against one install are never reused with
        another at the same path."""
        text = self._header("dnnl_version.h") + self._header("dnnl_config.h")
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def version(self) -> str:
        """The headers' version and CPU threading runtime, e.g. ``"3.2.0 OMP"``."""
        version = self._header("dnnl_version.h")
        parts = [re.search(rf"#define DNNL_VERSION_{p} (\d+)", version) for p in _PARTS]
        runtime = re.search(r"#define DNNL_CPU_RUNTIME DNNL_RUNTIME_(\w+)",
                            self._header("dnnl_config.h"))  # fmt: skip
        numbers = ".".join(m.group(1) if m else "?" for m in parts)
        return f"{numbers} {runtime.group(1) if runtime else 'unknown runtime'}"

    def cpu_isa(self) -> int:
        """The instruction set oneDNN's kernels use on this CPU (``dnnl_cpu_isa_t``, capped
        by ``$ONEDNN_MAX_CPU_ISA``)."""
        library = ctypes.CDLL(self.library())
        return int(library.dnnl_get_effective_cpu_isa())


_PARTS = ("MAJOR", "MINOR", "PATCH")

# oneDNN's instruction sets (``dnnl_cpu_isa_t``), widest first; each value is a bit set
# that contains the values of the sets it includes.
CPU_ISAS = {
    "avx512_core_amx": 0xFEF,
    "avx512_core_fp16": 0x1EF,
    "avx512_core_bf16": 0xE7,
    "avx512_core_vnni": 0x67,
    "avx512_core": 0x27,
    "avx2_vnni_2": 0x1F,
    "avx2_vnni": 0xF,
    "avx2": 0x7,
    "avx": 0x3,
    "sse41": 0x1,
}


def isa_includes(isa: int, name: str) -> bool:
    """Whether the instruction set ``isa`` includes ``CPU_ISAS[name]``."""
    return isa & CPU_ISAS[name] == CPU_ISAS[name]


def has_exact_int8(isa: int) -> bool:
    """Whether oneDNN's int8 kernels compute exact integer products on ``isa``: with VNNI
    only (without it they add pairs of u8 x s8 products in int16 and saturate, so the
    runtime refuses int8 primitives there; ``require_exact_int8`` in runtime/ops.cc)."""
    return isa_includes(isa, "avx2_vnni") or isa_includes(isa, "avx512_core_vnni")


def isa_name(isa: int) -> str:
    """The widest named instruction set ``isa`` includes (``"avx2"``, ...)."""
    return next((name for name in CPU_ISAS if isa_includes(isa, name)), "no vector ISA")


@functools.cache
def find_onednn() -> OneDnn:
    """The oneDNN under ``$TVMEXT_ONEDNN_ROOT`` if set, else the one installed beside this
    Python; a CompileError says how to get it."""
    chosen = environment.ONEDNN_ROOT.get()
    prefixes = (chosen,) if chosen else (sys.prefix, sys.base_prefix)
    for prefix in dict.fromkeys(prefixes):
        include = os.path.join(prefix, "include")
        lib = os.path.join(prefix, "lib")
        if os.path.isfile(os.path.join(include, "dnnl.hpp")) and os.path.isfile(
            os.path.join(lib, "libdnnl.so")
        ):
            return OneDnn(include, lib)
    where = chosen or sys.prefix
    raise CompileError(
        f"the dnnl target needs oneDNN's headers and libdnnl.so in {where}/include "
        f"and {where}/lib; install them with: {_INSTALL}"
    )

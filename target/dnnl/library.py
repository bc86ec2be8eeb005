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
import sys
from dataclasses import dataclass

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

    def header_digest(self) -> str:
        """A digest of the headers that say which build this is (version, threading
        runtime), so that objects compiled against one install are never reused with
        another at the same path."""
        digest = hashlib.sha256()
        for name in ("dnnl_version.h", "dnnl_config.h"):
            path = os.path.join(self.include_dir, "oneapi", "dnnl", name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    digest.update(f.read())
        return digest.hexdigest()[:16]

    def version(self) -> str:
        """The library's version and CPU threading runtime, e.g. ``"3.2.0 OpenMP"``."""
        info = ctypes.CDLL(os.path.join(self.lib_dir, "libdnnl.so")).dnnl_version
        info.restype = ctypes.POINTER(_Version)
        v = info().contents
        runtime = _CPU_RUNTIMES.get(v.cpu_runtime, f"runtime {v.cpu_runtime}")
        return f"{v.major}.{v.minor}.{v.patch} {runtime}"


class _Version(ctypes.Structure):
    """``dnnl_version_t`` of dnnl_common_types.h."""

    _fields_ = [
        ("major", ctypes.c_int),
        ("minor", ctypes.c_int),
        ("patch", ctypes.c_int),
        ("hash", ctypes.c_char_p),
        ("cpu_runtime", ctypes.c_uint),
        ("gpu_runtime", ctypes.c_uint),
    ]


# DNNL_RUNTIME_* of dnnl_config.h
_CPU_RUNTIMES = {1: "sequential", 2: "OpenMP", 4: "TBB", 8: "threadpool", 512: "SYCL"}


ROOT_VARIABLE = "TVMEXT_ONEDNN_ROOT"


@functools.cache
def find_onednn() -> OneDnn:
    """The oneDNN under ``$TVMEXT_ONEDNN_ROOT`` if set, else the one installed beside this
    Python; a CompileError says how to get it."""
    chosen = os.environ.get(ROOT_VARIABLE)
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

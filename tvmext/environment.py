"""Every environment variable tvmext reads or sets, declared once: its name, default and
meaning, and who reads it. Python code reads them through :class:`Variable`; the oneDNN
runtime (C++) reads and sets its own with ``getenv``/``setenv`` under the names declared
here (a test checks that nothing else reads the environment). The documentation's list
is :func:`table`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    """One environment variable: ``default`` applies when it is unset or empty."""

    name: str
    default: str
    meaning: str
    read_by: str = "tvmext"

    def get(self) -> str | None:
        """Its value in this process; None when unset or empty."""
        return os.environ.get(self.name) or None

    def value(self) -> str:
        """Its value in this process, else the default."""
        return self.get() or self.default

    def is_set(self) -> bool:
        """Whether it is set (to anything but the empty string)."""
        return self.get() is not None

    def set_unless_set(self, value: str) -> None:
        """Set it for this process and its children, unless the user set it."""
        if not self.is_set():
            os.environ[self.name] = value


CACHE_DIR = Variable(
    "TVMEXT_CACHE_DIR",
    "~/.cache/tvmext",
    "Folder of built native objects (C++ layers, the oneDNN runtime and composites), "
    "shared by every compile; safe to delete.",
)
CXX = Variable(
    "CXX",
    "g++",
    "The C++ compiler for native layers, the oneDNN code and standalone applications.",
)
ONEDNN_ROOT = Variable(
    "TVMEXT_ONEDNN_ROOT",
    "(this Python's prefix)",
    "Prefix holding oneDNN's include/dnnl.hpp and lib/libdnnl.so for the dnnl target; "
    "unset: the oneDNN installed beside this Python.",
)
ONEDNN_DENSE = Variable(
    "TVMEXT_ONEDNN_DENSE",
    "auto",
    "How a dense layer (matmul by constant weights) runs on oneDNN: matmul, convolution "
    "(where the tensors allow one) or auto (a convolution where oneDNN's matmul is "
    "gemm-based and its convolution brgemm-based). Read when an artifact first runs one.",
    read_by="the oneDNN runtime (C++)",
)
DNNL_OP_CACHE_SIZE = Variable(
    "TVMEXT_DNNL_OP_CACHE_SIZE",
    "16",
    "Primitives kept per oneDNN partition with symbolic shapes (one per shape seen, least "
    "recently used dropped first).",
    read_by="the oneDNN runtime (C++)",
)
TVM_NUM_THREADS = Variable(
    "TVM_NUM_THREADS",
    "(physical cores)",
    "Threads of TVM's pool; when unset, tvmext sets it to the physical cores this process "
    "may run on (TVM's own default halves the logical CPUs, assuming hyper-threads) "
    "before it first builds code or loads an artifact.",
    read_by="TVM's runtime (set by tvmext)",
)
TVM_BIND_THREADS = Variable(
    "TVM_BIND_THREADS",
    "0",
    "Whether TVM pins its workers to cores; when unset, tvmext sets 0, so that TVM's "
    "workers and another runtime's threads (oneDNN's OpenMP team, PyTorch) share the "
    "cores without contending.",
    read_by="TVM's runtime (set by tvmext)",
)
TVM_THREAD_POOL_SPIN_COUNT = Variable(
    "TVM_THREAD_POOL_SPIN_COUNT",
    "0 in an artifact that calls oneDNN",
    "How long TVM's idle workers spin before sleeping; when unset, an artifact that "
    "calls oneDNN sets 0 (spinning workers took the cores oneDNN's threads needed).",
    read_by="TVM's runtime (set by the oneDNN runtime)",
)
OCL_ICD_FILENAMES = Variable(
    "OCL_ICD_FILENAMES",
    "the OpenCL CPU runtime beside libdnnl.so",
    "The OpenCL runtime a SYCL build of oneDNN finds the CPU through; when unset, an "
    "artifact linked with such a build points it at the one installed beside "
    "libdnnl.so.",
    read_by="the OpenCL loader (set by the oneDNN runtime)",
)

VARIABLES: tuple[Variable, ...] = (
    CACHE_DIR,
    CXX,
    ONEDNN_ROOT,
    ONEDNN_DENSE,
    DNNL_OP_CACHE_SIZE,
    TVM_NUM_THREADS,
    TVM_BIND_THREADS,
    TVM_THREAD_POOL_SPIN_COUNT,
    OCL_ICD_FILENAMES,
)


def cache_root() -> str:
    """``$TVMEXT_CACHE_DIR`` with ``~`` expanded."""
    return os.path.expanduser(CACHE_DIR.value())


def table() -> str:
    """Every variable as a Markdown table (the documentation's list)."""
    rows = ["| variable | default | read by | meaning |", "|---|---|---|---|"]
    rows += [f"| `{v.name}` | `{v.default}` | {v.read_by} | {v.meaning} |" for v in VARIABLES]
    return "\n".join(rows)

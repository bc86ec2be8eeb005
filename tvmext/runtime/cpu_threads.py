"""TVM's CPU thread pool: one thread per physical core this process may run on, not
pinned to cores.

TVM's runtime sizes its thread pool, unless ``TVM_NUM_THREADS`` says otherwise, at half
the logical CPUs on x86, assuming two hyper-threads per core. On a machine, VM or
container without SMT that leaves half the cores idle (on the 2-core development VM,
every TVM kernel ran on one thread). So when tvmext first builds code
(:func:`tvmext.lowering.pipeline.codegen`) or loads an artifact
(:func:`tvmext.load`), it sets ``TVM_NUM_THREADS`` to the physical cores of this
process's CPU affinity, read from sysfs, unless the user set it; TVM reads it when its
thread pool starts, at the first parallel kernel. ``import tvmext`` changes nothing.

It also sets ``TVM_BIND_THREADS=0`` unless the user set it: TVM pins each worker to one
core, and in a process where another runtime's threads also run (oneDNN's OpenMP team
in a ``"dnnl, llvm"`` artifact, PyTorch, OpenVINO) a pinned worker contends with them
for its core. Measured on BERT (4 layers, 2×128, 2 cores,
``benchmarks/real_models.py``): ``"dnnl, llvm"`` took 5.7 ms alone and 56 ms once a
plain ``"llvm"`` module and PyTorch had run in the same process with pinning, 5.8 ms
without; TVM's own kernels ran as fast either way.
"""

from __future__ import annotations

import os

from tvmext import environment


def physical_cores() -> int:
    """Distinct (package, core) pairs among the CPUs this process may run on."""
    cores = set()
    for cpu in os.sched_getaffinity(0):
        topology = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        try:
            with (
                open(f"{topology}/physical_package_id") as package,
                open(f"{topology}/core_id") as core,
            ):
                cores.add((package.read().strip(), core.read().strip()))
        except OSError:  # no sysfs topology: count the logical CPU as a core
            cores.add(("cpu", str(cpu)))
    return max(1, len(cores))


def configure_thread_pool() -> None:
    """Set ``TVM_NUM_THREADS`` to :func:`physical_cores` and ``TVM_BIND_THREADS`` to 0,
    each unless it is already set."""
    if not environment.TVM_NUM_THREADS.is_set():  # the sysfs scan only when it is needed
        environment.TVM_NUM_THREADS.set_unless_set(str(physical_cores()))
    environment.TVM_BIND_THREADS.set_unless_set("0")

"""Per-kernel profile of a compiled model, as ONNX Runtime's profiler prints one.

TVM 0.27's ``VirtualMachine`` has no profiler, but it calls an instrument before and
after every call instruction. Each kernel (a TVM PrimFunc, an external call such as
a oneDNN primitive, a VM builtin) is timed between those two callbacks, over
``repeat`` runs after a warm-up run; each row is the kernel's mean time per run (means,
not medians, so that the rows add up to the mean run). The time the VM spends
between calls (its own bookkeeping, plus the instrument's) is a row of its own.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BETWEEN_CALLS = "(VM between calls)"
_BUILTIN = "vm.builtin."


@dataclass(frozen=True)
class ProfileRow:
    """One kernel: mean seconds per run (all its calls), calls per run, share."""

    name: str
    seconds: float
    calls: int
    share: float


@dataclass(frozen=True)
class Profile:
    """Kernels sorted by time, slowest first; ``total`` is the mean profiled run."""

    rows: tuple[ProfileRow, ...]
    total: float
    repeat: int

    def __str__(self) -> str:
        lines = [f"{'time (ms)':>10}  {'share':>6}  {'calls':>5}  kernel"]
        lines += [
            f"{r.seconds * 1e3:10.3f}  {r.share:6.1%}  {r.calls:5d}  {r.name}" for r in self.rows
        ]
        lines.append(f"{self.total * 1e3:10.3f}  {1:6.1%}         total (mean of {self.repeat})")
        return "\n".join(lines)


class _Recorder:
    """The VM instrument: accumulates time per kernel, and between calls, for one run."""

    def __init__(self) -> None:
        self.times: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._start = 0
        self._last_end = 0

    def reset(self) -> None:
        self.times.clear()
        self.calls.clear()
        self._last_end = 0

    def __call__(self, _func: Any, symbol: str, before: bool, _ret: Any, *_args: Any) -> int:
        now = time.perf_counter_ns()
        if before:
            if self._last_end:
                self.times[BETWEEN_CALLS] += (now - self._last_end) * 1e-9
                self.calls[BETWEEN_CALLS] += 1
            self._start = now
        else:
            self.times[symbol] += (now - self._start) * 1e-9
            self.calls[symbol] += 1
            self._last_end = time.perf_counter_ns()
        return 0  # VMInstrumentReturnKind.NO_OP: run the call as usual


def profile_vm(vm: Any, run: Callable[[], Any], repeat: int = 10) -> Profile:
    """Profile ``run`` (which calls ``vm``'s ``main`` once) over ``repeat`` runs."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    recorder = _Recorder()
    vm.set_instrument(recorder)
    try:
        run()  # warm-up: first-call costs (allocation, external library set-up)
        sums: dict[str, float] = defaultdict(float)
        total = 0.0
        calls: dict[str, int] = {}
        for _ in range(repeat):
            recorder.reset()
            start = time.perf_counter()
            run()
            total += time.perf_counter() - start
            for name, seconds in recorder.times.items():
                sums[name] += seconds
            calls = dict(recorder.calls)
    finally:
        vm.set_instrument(None)
    means = {name: seconds / repeat for name, seconds in sums.items()}
    return _table(means, calls, total / repeat, repeat)


def _table(means: dict[str, float], calls: dict[str, int], total: float, repeat: int) -> Profile:
    kernels = {n: t for n, t in means.items() if not n.startswith(_BUILTIN)}
    builtins = sum(t for n, t in means.items() if n.startswith(_BUILTIN))
    rows: list[tuple[str, float, int]] = [(n, t, calls.get(n, 0)) for n, t in kernels.items()]
    if builtins:
        count = sum(c for n, c in calls.items() if n.startswith(_BUILTIN))
        rows.append(("(VM builtins: allocation, shape checks)", builtins, count))
    covered = sum(t for _, t, _ in rows)
    if total > covered:  # argument conversion and the call into the VM
        rows.append(("(outside the VM's calls)", total - covered, 1))
    denominator = max(total, covered)
    ordered = sorted(rows, key=lambda r: -r[1])
    return Profile(
        tuple(ProfileRow(n, t, c, t / denominator) for n, t, c in ordered), total, repeat
    )

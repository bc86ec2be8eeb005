"""Timing helpers shared by the benchmarks: medians over repeats after a warm-up."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_seconds(fn: Callable[[], Any], repeat: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


SETTLE_SECONDS = 0.5


def settle() -> None:
    """Wait until the thread pools of the runtime timed before (oneDNN's TBB, PyTorch's
    OpenMP, TVM's) have stopped spinning, so that they do not slow down the next one."""
    time.sleep(SETTLE_SECONDS)

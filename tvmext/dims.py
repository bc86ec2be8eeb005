"""Shape dimensions as users read them: ints where known, names where symbolic."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tvm import tirx


def dim(d: Any) -> int | str:
    """``d`` as an int if it is a constant, else its symbolic name (``"n"``)."""
    return int(d) if isinstance(d, tirx.IntImm) else str(d)


def dims(shape: Iterable[Any]) -> list[int | str]:
    """Every dimension of ``shape`` through :func:`dim`."""
    return [dim(d) for d in shape]

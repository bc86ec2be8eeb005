"""Who runs an op called on NumPy arrays.

Running an op eagerly compiles it, and compiling sits above the op layer; so the op
layer holds only this slot, and :mod:`tvmext.eager` fills it when it is imported
(``tvmext`` imports it before handing out ``tvmext.op``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tvmext.errors import OpCallError

EagerRunner = Callable[[Any, Sequence[Any], dict[str, Any]], Any]
_runner: EagerRunner | None = None


def install_eager_runner(runner: EagerRunner) -> None:
    """Make ``runner(op, args, attrs)`` run ops called on NumPy arrays."""
    global _runner
    _runner = runner


def run_eagerly(op: Any, args: Sequence[Any], attrs: dict[str, Any]) -> Any:
    """Run ``op`` on ``args`` with the installed runner."""
    if _runner is None:
        raise OpCallError(
            f"op {op.name!r} was called on arrays, but no eager runner is installed; "
            f"import tvmext (or tvmext.eager) first"
        )
    return _runner(op, args, attrs)

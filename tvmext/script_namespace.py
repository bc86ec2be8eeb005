"""``R.tvmext.<ns>.<name>(...)`` in TVMScript: parse printed modules back.

TVM prints a call of ``relax.tvmext.ns.name`` as ``R.tvmext.ns.name(x, attr=v)``.
The parser resolves ``R`` to ``tvm.script.parser.relax`` (and users write
``from tvm.script import relax as R``); this module installs a ``tvmext`` attribute
on both whose attribute chain ends at the op object, which builds
the call when the parser invokes it.
"""

from __future__ import annotations

from typing import Any

from .custom_op import _BY_TVM_NAME, PREFIX


class _Namespace:
    """One level of dotted op names under ``R.tvmext``."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    def __getattr__(self, part: str) -> Any:
        if part.startswith("__"):
            raise AttributeError(part)
        name = self._prefix + part
        custom = _BY_TVM_NAME.get(PREFIX + name)
        if custom is not None:
            return custom.call_relax
        if any(key.startswith(PREFIX + name + ".") for key in _BY_TVM_NAME):
            return _Namespace(name + ".")
        known = sorted(k[len(PREFIX) :] for k in _BY_TVM_NAME)
        raise AttributeError(
            f"R.tvmext.{name} is not a registered tvmext op; registered: "
            f"{', '.join(known) or 'none'} (import the plugin that defines it)"
        )


def install() -> None:
    """Make ``R.tvmext`` resolvable by the TVMScript parser (idempotent)."""
    import tvm.relax.script
    from tvm.script.parser import relax as script_relax

    namespace = _Namespace("")
    script_relax.tvmext = namespace
    tvm.relax.script.tvmext = namespace

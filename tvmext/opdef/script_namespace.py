"""``R.tvmext.<ns>.<name>(...)`` in TVMScript: parse printed modules back.

TVM prints a call of ``relax.tvmext.ns.name`` as ``R.tvmext.ns.name(x, attr=v)`` (and
a gradient companion ``relax.tvmext_grad.ns.name`` as ``R.tvmext_grad.ns.name``).
The parser resolves ``R`` to ``tvm.script.parser.relax`` (and users write
``from tvm.script import relax as R``). TVM has no hook for op namespaces in its
parser, so :func:`install` (called once, by the ``tvm.backends`` entry point or on
first use of ``tvmext``) sets ``tvmext`` and ``tvmext_grad`` attributes on both
modules, whose attribute chains end at the op object that builds the call.
"""

from __future__ import annotations

from typing import Any

from tvmext.opdef.tvm_registration import GRADIENT_PREFIX, PREFIX, find, tvm_names


class _Namespace:
    """One level of dotted op names under ``R.tvmext`` (or ``R.tvmext_grad``)."""

    def __init__(self, root: str, prefix: str = "") -> None:
        self._root, self._prefix = root, prefix

    def __getattr__(self, part: str) -> Any:
        if part.startswith("__"):
            raise AttributeError(part)
        name = self._prefix + part
        custom = find(self._root + name)
        if custom is not None:
            return custom.call_relax  # type: ignore[attr-defined]
        names = [k[len(self._root) :] for k in tvm_names() if k.startswith(self._root)]
        if any(n.startswith(name + ".") for n in names):
            return _Namespace(self._root, name + ".")
        script = "R." + self._root[len("relax.") :]
        raise AttributeError(
            f"{script}{name} is not a registered tvmext op; registered: "
            f"{', '.join(sorted(names)) or 'none'} (import the plugin that defines it)"
        )


def install() -> None:
    """Make ``R.tvmext`` resolvable by the TVMScript parser (idempotent)."""
    import tvm.relax.script
    from tvm.script.parser import relax as script_relax

    for root in (PREFIX, GRADIENT_PREFIX):
        attribute = root[len("relax.") : -1]
        setattr(script_relax, attribute, _Namespace(root))
        setattr(tvm.relax.script, attribute, _Namespace(root))
